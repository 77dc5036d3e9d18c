"""The parent's side of a probe: prepare a job folder, run the runner in the sandbox, read back
plain data. Nothing here imports student code; everything returned is validated arrays.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .sandbox import GiB, Limits, build_site_view, probe_environment, python_executable, run_sandboxed

PROBES_DIR = Path(__file__).resolve().parent / "probes"
MAX_PAYLOAD = 64 * 1024**2
STARTUP_SECONDS = 30.0  # interpreter, NumPy and matplotlib start before the first task


EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)(?::.*)?)$", re.M)
FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.M)
HINTS = (
    ("name 'xrange' is not defined", "xrange is Python 2; use range in Python 3"),
    ("has no attribute 'float'", "np.float was removed in NumPy 1.24; use float or np.float64"),
    ("has no attribute 'int'.", "np.int was removed in NumPy 1.24; use int or np.int64"),
    ("MemoryError", "the code tried to use more memory than the grader allows"),
)


@dataclass(frozen=True)
class Task:
    id: str
    fn: str
    params: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    timeout: float = 20.0
    memory: int = 2 * GiB
    needs_data: bool = False
    gate: bool = False  # when this task fails, the runner stops: later tasks cannot succeed


@dataclass
class TaskOutput:
    id: str
    status: str  # ok | error | timeout
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    detail: str = ""
    error: str = ""  # traceback tail
    log: str = ""  # what the student's code printed (tail)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    not_run: bool = False  # never started: an earlier task it depends on failed

    def reason(self) -> str:
        """One line for a student: the exception raised and where in their code, with a hint
        for the classic Python 2 / old NumPy leftovers; or why the process stopped."""
        if self.not_run or not self.error.strip():
            return self.detail or self.status
        exceptions = EXCEPTION_LINE.findall(self.error)
        text = exceptions[-1] if exceptions else self.error.strip().splitlines()[-1].strip()
        frames = [f for f in FRAME.findall(self.error) if "/probe/" not in f[0] and "<frozen" not in f[0]]
        if frames:
            text += f" ({Path(frames[-1][0]).name}, line {frames[-1][1]})"
        hints = [hint for needle, hint in HINTS if needle in self.error]
        return text + ("; " + hints[0] if hints else "")


def run_probe(workdir: Path, probe: str, tasks: list[Task], sandbox, *, data_dir: Path | None = None,
              preload: tuple[str, ...] = ("numpy", "matplotlib.pyplot"), scratch: Path | None = None
              ) -> dict[str, TaskOutput]:
    """Run `tasks` against the code in `workdir` (a working copy the probe may modify)."""
    with tempfile.TemporaryDirectory(prefix="mlp-grader-job-", dir=scratch) as tmp:
        jobdir = Path(tmp)
        job = _prepare_job(jobdir, workdir, probe, tasks, data_dir, preload)
        home = jobdir / "home"
        _seed_matplotlib_cache(home / ".matplotlib")
        limits = Limits(wall_seconds=STARTUP_SECONDS + sum(t.timeout + 1 for t in tasks),
                        memory_bytes=max(t.memory for t in tasks))
        readable = [jobdir] + ([data_dir] if data_dir else [])
        proc = run_sandboxed(sandbox, [python_executable(), "-I", "-S", "-B",
                                       str(jobdir / "probe" / "runner.py"), str(jobdir)],
                             jobdir=jobdir, readable=readable, writable=[workdir], limits=limits,
                             env=probe_environment(home), cwd=workdir)
        outputs = _parse(proc.stdout)
        runner_error = proc.stderr.decode("utf-8", "replace")[-2000:]
        for task in tasks:
            if task.id not in outputs:
                status = "timeout" if proc.returncode == -9 else "error"
                outputs[task.id] = TaskOutput(task.id, status, detail="the probe stopped before this task ran",
                                              error=runner_error)
        return outputs


def _prepare_job(jobdir: Path, workdir: Path, probe: str, tasks: list[Task], data_dir: Path | None,
                 preload: tuple[str, ...]) -> dict[str, Any]:
    (jobdir / "probe").mkdir()
    (jobdir / "inputs").mkdir()
    (jobdir / "out").mkdir()
    (jobdir / "home").mkdir()
    for name in ("runner.py", f"{probe}.py"):
        shutil.copy2(PROBES_DIR / name, jobdir / "probe" / name)
    site_dirs = build_site_view(jobdir / "site")
    task_specs = []
    for task in tasks:
        inputs = ""
        if task.arrays:
            inputs = str(jobdir / "inputs" / f"{task.id}.npz")
            np.savez(inputs, **task.arrays)
        task_specs.append({"id": task.id, "fn": task.fn, "params": task.params, "inputs": inputs,
                           "timeout": task.timeout, "cpu": max(1, int(task.timeout) + 1),
                           "memory": task.memory, "gate": task.gate})
    job = {"probe": probe, "tasks": task_specs, "site_dirs": site_dirs, "preload": list(preload),
           "workdir": str(workdir), "data_dir": str(data_dir) if data_dir else None,
           "max_payload": MAX_PAYLOAD, "max_file": MAX_PAYLOAD}
    (jobdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    return job


def _parse(stream: bytes) -> dict[str, TaskOutput]:
    outputs: dict[str, TaskOutput] = {}
    buf = io.BytesIO(stream)
    while True:
        line = buf.readline()
        if not line:
            break
        try:
            header = json.loads(line)
            payload = buf.read(int(header["payload"]))
        except (ValueError, KeyError):
            break  # a torn message ends the stream; missing tasks are reported as not run
        out = TaskOutput(header["task"], header["status"], detail=header.get("detail", ""),
                         error=header.get("error", ""), log=header.get("log", ""),
                         seconds=float(header.get("seconds", 0.0)))
        if out.ok:
            try:
                out.arrays = load_payload(payload)
            except ValueError as exc:
                out.status, out.detail, out.error = "error", f"returned data the grader cannot accept: {exc}", ""
        outputs[out.id] = out
    return outputs


def load_payload(payload: bytes) -> dict[str, np.ndarray]:
    """Plain numeric arrays only: no pickle, no objects."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too large")
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} has dtype {arr.dtype}, not numbers")
    return arrays


def _seed_matplotlib_cache(target: Path) -> None:
    """Copy the font cache so each probe skips matplotlib's multi-second font scan."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
    except ImportError:
        return
    cache = Path(matplotlib.get_cachedir())
    for entry in cache.glob("fontlist-*.json"):
        shutil.copy2(entry, target / entry.name)
