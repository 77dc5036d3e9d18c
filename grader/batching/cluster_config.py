"""Which Dask cluster to grade on: the command-line choice and the small config file for
batch systems. No Dask import here: reading a config must work where Dask is not installed."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.files import load_toml, tomllib

JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster",
            "htcondor": "HTCondorCluster", "oar": "OARCluster", "moab": "MoabCluster"}
KINDS = ("local", *JOBQUEUE)


@dataclass
class ClusterSpec:
    """Where to grade. `kind`: "scheduler" (connect to `address`), "local" (a LocalCluster of
    `workers` single-threaded processes) or a dask-jobqueue system ("slurm", "pbs", ...) built
    from `jobqueue` (keyword arguments of its cluster class) and scaled to `workers` jobs.
    `data_dir`: a folder every worker reads at the same path (a shared filesystem); when set,
    workers load the dataset from it instead of receiving a copy from the driver."""
    kind: str
    address: str | None = None
    workers: int | None = None
    data_dir: Path | None = None
    jobqueue: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "scheduler":
            return f"the Dask scheduler at {self.address}"
        return f"a {self.kind} Dask cluster of {self.workers} worker{'s' * (self.workers != 1)}"


def load_cluster_config(path: Path, kind: str | None = None, workers: int | None = None) -> ClusterSpec:
    """Read a cluster config (TOML; docs/ta-guide.md, "Grading on a cluster"):

        [cluster]
        kind = "slurm"          # local, slurm, pbs, sge, lsf, htcondor, oar, moab
        workers = 20            # worker jobs to start
        data_dir = "/shared/mlp-grader-data"   # optional
        [jobqueue]              # passed as is to dask_jobqueue.SLURMCluster(...)
        queue = "normal"
        ...

    `kind` and `workers` given on the command line win over the file."""
    try:
        data = load_toml(path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GraderError(f"cluster config {path}: {exc}") from exc
    unknown = set(data) - {"cluster", "jobqueue"}
    section = data.get("cluster", {})
    unknown |= {f"cluster.{k}" for k in set(section) - {"kind", "workers", "data_dir", "scheduler"}}
    if unknown:
        raise GraderError(f"cluster config {path}: unknown keys {', '.join(sorted(unknown))}")
    kind = kind or section.get("kind") or ("scheduler" if section.get("scheduler") else None)
    if kind not in (*KINDS, "scheduler"):
        raise GraderError(f"cluster config {path}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
    data_dir = section.get("data_dir")
    return ClusterSpec(kind, address=section.get("scheduler"), workers=workers or section.get("workers"),
                       data_dir=Path(data_dir) if data_dir else None, jobqueue=dict(data.get("jobqueue", {})))
