"""Grading on a Dask cluster: an existing scheduler, a LocalCluster on this machine, or a batch
system (Slurm, PBS, SGE, LSF) through dask-jobqueue.

Dask does the scheduling, notices lost workers and re-runs their tasks; this module only says
what one task is (one submission, sent as bytes: a worker needs nothing from the driver's
filesystem) and what each worker keeps between tasks (a `Grader` per assignment, with the
dataset and the reference outputs prepared once, held by a worker plugin). The driver in
grader/batching/folder.py keeps what it does for the local pool: resume, writes as results arrive,
progress, summary.

`distributed` is an optional dependency (`pip install 'mlp-grader[dask]'`): this module is
imported only when a cluster is asked for.
"""
from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

try:
    import dask
    from distributed import Client, WorkerPlugin, as_completed, get_worker
    from distributed.scheduler import KilledWorker
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("grading on a cluster needs Dask: pip install 'mlp-grader[dask]'") from exc

from grader import __version__
from grader.batching.cluster_config import JOBQUEUE, ClusterSpec
from grader.batching.jobs import grade_entry, grading_hash
from grader.batching.layouts import Entry
from grader.data import Dataset
from grader.errors import GraderError
from grader.grading.engine import GradeOptions, Grader
from grader.results import Result
from grader.submission import load_submission

PLUGIN = "mlp-grader"
# A submission whose worker died is graded once more (Dask's retry), then becomes a row: the
# scheduler's allowed-failures. Set here for the clusters we start; an existing scheduler keeps
# its own setting (start it with DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1).
ALLOWED_FAILURES = 1
# Dask's statistical profiler samples the task thread every 10 ms for a dashboard nobody reads
# here: off, as one less thing competing for the worker's CPU (docs/benchmarks.md: not proven).
CLUSTER_CONFIG = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                  "distributed.scheduler.worker-saturation": 1.0,  # no second task queued on a worker
                  "distributed.worker.profile.enabled": False}
RESULT_FILES = ("result.json", "report.html")  # the driver writes these itself, last


@contextlib.contextmanager
def connect(spec: ClusterSpec) -> Iterator[Client]:
    """A Client of the cluster `spec` names; clusters started here are stopped on the way out."""
    if spec.kind == "scheduler":
        with Client(spec.address, timeout="30s") as client:
            yield client
        return
    # The scheduler runs in this process for the clusters started here: its retry policy is ours.
    with dask.config.set(CLUSTER_CONFIG):
        if spec.kind == "local":
            from distributed import LocalCluster

            # single-threaded workers: the probes pin BLAS to one thread and parallelism comes
            # from submissions; loopback only, no dashboard (no port a test did not ask for)
            cluster = LocalCluster(n_workers=spec.workers or 1, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None, memory_limit=0)
        else:
            try:
                import dask_jobqueue
            except ImportError as exc:
                raise GraderError(f"--cluster {spec.kind} needs dask-jobqueue: "
                                  "pip install 'mlp-grader[dask]'") from exc
            options = {"cores": 1, "processes": 1, **spec.jobqueue}
            try:
                cluster = getattr(dask_jobqueue, JOBQUEUE[spec.kind])(**options)
            except (TypeError, ValueError) as exc:
                raise GraderError(f"[jobqueue] options for {spec.kind}: {exc}") from exc
            cluster.scale(jobs=spec.workers or 1)
        with cluster, Client(cluster) as client:
            yield client


def worker_count(client: Client) -> int:
    return len(client.nthreads())


# ------------------------------------------------------------------ what a worker holds


@dataclass
class WorkerSetup:
    """What a worker needs to build the driver's Grader for one assignment."""
    assignment: str
    options: GradeOptions
    grading_hash: str  # the driver's: a worker running other grader code must not grade
    dataset: Dataset | None = None  # shipped once per worker, unless data_dir is shared
    dataset_warning: str = ""


class GradingPlugin(WorkerPlugin):
    """Held by every worker (Dask sends it to workers that join later too): builds each
    assignment's Grader on first use, prepares it once (dataset export, reference outputs)
    and keeps it for the worker's life."""

    def __init__(self, setups: dict[str, WorkerSetup]):
        self.setups = setups
        self._graders: dict[str, Grader] = {}
        self._lock = threading.Lock()

    def setup(self, worker: Any) -> None:
        self._graders, self._lock = {}, threading.Lock()

    def teardown(self, worker: Any) -> None:
        for grader in self._graders.values():
            grader.close()
        self._graders.clear()

    def grader(self, assignment: str) -> tuple[Grader, float]:
        """The worker's Grader for `assignment`, and the seconds spent preparing it on this call
        (0 once it is prepared)."""
        with self._lock:  # a multi-threaded worker prepares each assignment once
            started = time.monotonic()
            if assignment not in self._graders:
                setup = self.setups[assignment]
                grader = Grader(assignment, setup.options)
                if setup.dataset is not None:
                    grader.use_dataset(setup.dataset, setup.dataset_warning)
                mine = grading_hash(grader)
                if mine != setup.grading_hash:
                    grader.close()
                    raise GraderError(f"the worker on {socket.gethostname()} runs other grader code or course "
                                      f"files than the driver (mlp-grader {__version__}, grading hash "
                                      f"{mine[:12]} vs {setup.grading_hash[:12]}): install the same version")
                grader.prepare()
                self._graders[assignment] = grader
                return grader, time.monotonic() - started
            return self._graders[assignment], 0.0

    def __getstate__(self) -> dict:
        return {"setups": self.setups}

    def __setstate__(self, state: dict) -> None:
        self.setups, self._graders, self._lock = state["setups"], {}, threading.Lock()


@dataclass
class Graded:
    """A worker's answer: the result, the files the grading wrote beside it (figures, the
    executed notebook) as bytes, where it ran, and the seconds the worker spent preparing the
    assignment's grader before it (dataset, reference outputs: on its first task only)."""
    result: Result
    files: dict[str, bytes]
    worker: str
    prepare_seconds: float = 0.0


def grade_task(plugin: str, assignment: str, name: str, files: dict[str, bytes], notes: list[str],
               content_hash: str) -> Graded:
    """One submission, on a worker: its files written to a private folder, graded with the
    worker's prepared Grader into a private output folder that travels back as bytes."""
    worker = get_worker()
    grader, prepared = worker.plugins[plugin].grader(assignment)
    with tempfile.TemporaryDirectory(prefix="mlp-grader-task-") as tmp:
        folder = (Path(tmp) / "submission").resolve()
        folder.mkdir()
        for rel, data in files.items():
            target = folder / rel
            if folder not in target.resolve().parents:  # the driver read these paths from disk; still: no escape
                raise GraderError(f"refusing a file path outside the submission: {rel}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        out = Path(tmp) / "out"
        entry = Entry(name, folder, "folder", notes=list(notes), content_hash=content_hash)
        result = grade_entry(grader, entry, out)
        written = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                   if p.is_file() and p.relative_to(out).as_posix() not in RESULT_FILES}
    return Graded(result, written, worker.address, prepared)


def submission_payload(entry: Entry) -> tuple[dict[str, bytes], list[str]]:
    """The files a worker needs, as bytes, and the notes the local grader would add for the
    files it leaves out (so the result reads the same wherever it was graded)."""
    sub = load_submission(entry.path)
    files = {rel: (entry.path / rel).read_bytes() for rel in sub.files}
    return files, list(entry.notes) + [f"ignored: {item}" for item in sub.ignored]


# ------------------------------------------------------------------ the driver's side


def grade_on_cluster(client: Client, todo: list[tuple[Grader, Entry]], data_dir: Path | None,
                     grading_hashes: dict[str, str], arrived: Callable[[int, Graded], None],
                     lost: Callable[[int, str], None]) -> None:
    """Send `todo` out, one task per submission, and call `arrived(i, graded)` as each one
    comes back (completion order), or `lost(i, reason)` when its worker died twice or the task
    failed. The dataset goes to each worker once, inside the plugin, unless `data_dir` is a
    folder the workers share."""
    setups = worker_setups([grader for grader, _ in todo], data_dir, grading_hashes)
    batch = uuid.uuid4().hex[:8]
    # one plugin per batch: drivers sharing a scheduler do not replace each other's graders
    plugin = f"{PLUGIN}-{batch}"
    _register(client, GradingPlugin(setups), plugin)
    # At most one task per worker thread is out at a time: submissions (up to 100 MB each) wait
    # in the driver, not in the scheduler's memory, and a worker never holds a queued submission
    # that its death would count against (Dask's retry budget is per task, per lost worker).
    waiting = deque(range(len(todo)))
    running: dict[Any, int] = {}
    finished = as_completed()

    def send() -> None:
        while waiting and len(running) < max(1, _threads(client)):
            i = waiting.popleft()
            grader, entry = todo[i]
            try:
                files, notes = submission_payload(entry)
            except (OSError, GraderError) as exc:  # the folder changed under us: a row, not a crash
                lost(i, f"internal error while grading: could not read the submission: {exc}")
                continue
            # unique keys: several drivers may share one scheduler; pure=False: never deduplicated
            future = client.submit(grade_task, plugin, grader.rubric.assignment, entry.name, files, notes,
                                   entry.content_hash, key=f"grade-{entry.out_name}-{batch}-{i}", pure=False)
            running[future] = i
            finished.add(future)

    try:
        send()
        for future in finished:
            i = running.pop(future)
            try:
                graded = future.result()
            except KilledWorker as exc:
                lost(i, f"the grading worker died while grading this submission, twice ({exc})")
            except Exception as exc:  # noqa: BLE001 - one task's failure is one row, never the batch
                lost(i, f"internal error while grading: {type(exc).__name__}: {exc}"[:1500])
            else:
                arrived(i, graded)
            future.release()
            send()
    finally:
        with contextlib.suppress(Exception):  # the cluster may be gone already (Ctrl-C, scheduler lost)
            _unregister(client, plugin)


def worker_setups(graders: list[Grader], data_dir: Path | None,
                  grading_hashes: dict[str, str]) -> dict[str, WorkerSetup]:
    """Per assignment, what its workers get: the driver's options, and its loaded dataset unless
    the workers share `data_dir`."""
    setups = {}
    for grader in graders:
        name = grader.rubric.assignment
        if name in setups:
            continue
        options, dataset = grader.options, grader.dataset
        if dataset is not None and data_dir is not None:
            # the name the driver resolved, never "auto": a worker without the data must fail, not fall back
            options, dataset = replace(options, dataset=dataset.name, data_dir=data_dir), None
        setups[name] = WorkerSetup(name, options, grading_hashes[name], dataset, grader.dataset_warning)
    return setups


def _threads(client: Client) -> int:
    """Worker threads the scheduler knows of now (workers join and leave: Slurm jobs start late)."""
    return sum(client.nthreads().values())


def _register(client: Client, plugin: GradingPlugin, name: str) -> None:
    register = getattr(client, "register_plugin", None) or client.register_worker_plugin
    register(plugin, name=name)


def _unregister(client: Client, name: str) -> None:
    client.unregister_worker_plugin(name)


def scheduler_environment() -> dict[str, str]:
    """Environment for a `dask scheduler` or `dask worker` started for grading (tests, the
    docs/ta-guide.md): CLUSTER_CONFIG as Dask's environment variables."""
    return {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
            "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
            "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
