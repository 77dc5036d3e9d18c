"""The parent's side of a probe: prepare a job folder, run the runner in the sandbox, read back
plain data. Nothing here imports student code; everything returned is validated arrays.

What comes back is untrusted: a student's code controls every number of its own tasks (it runs
in the same process as the probe function) and may try to write into the runner's output. So
the stream must be exactly one well-formed message per task, in task order (anything else: no
result of the run is kept), the payloads are `.npz` archives of plain numeric arrays read without
pickle and with every size checked before anything is allocated, and nothing in a message can
set points or a pass: scoring reads named arrays only (grader/kinds/, grader/assignments/).
"""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from grader.grading.preload import modules_to_preload
from grader.kinds.tasks import Task, TaskOutput
from grader.errors import MachineBusy
from grader.probes import runner as runner_module
from grader.probes.runner import MACHINE_BUSY, SPAWN_STARTUP
from grader.sandbox import (Limits, build_site_view, probe_environment, python_executable, run_sandboxed,
                            seed_matplotlib_cache)

PROBES_DIR = Path(__file__).resolve().parent.parent / "probes"
MAX_PAYLOAD = 64 * 1024**2  # one task's result archive (and any single file a task writes)
MAX_ARRAYS = 256  # arrays in one result
MAX_HEADER = 64 * 1024  # one message header line
MAX_STDOUT = 256 * 1024**2  # everything the runner may send for one probe
DISK_BYTES = 256 * 1024**2  # what a probe may write: working copy, home and output folders
MAX_FILES = 10_000  # files and folders it may create there
STARTUP_SECONDS = 30.0  # interpreter, NumPy and matplotlib start before the first task
STATUSES = ("ok", "error", "timeout")
TAMPERED = ("the probe's output was not the grader's own messages in order (tampered with by the code "
            "under test?): no result of this run is used")


RUNNER_MODES = ("fork", "spawn")


def runner_mode(requested: str | None = None) -> str:
    """How the runner starts a task: `fork` (a copy of the runner, which has NumPy loaded) where
    the platform has fork, else `spawn` (a fresh interpreter per task); `requested` forces one."""
    if requested not in (None, "", *RUNNER_MODES):
        raise ValueError(f"unknown runner mode {requested!r}; choose from {', '.join(RUNNER_MODES)}")
    if not hasattr(os, "fork"):
        return "spawn"
    return requested or "fork"


def run_probe(workdir: Path, probe: str, tasks: list[Task], sandbox, *, data_dir: Path | None = None,
              preload: tuple[str, ...] | None = None, scratch: Path | None = None,
              runner: str | None = None,
              on_output: Callable[[TaskOutput], None] | None = None) -> dict[str, TaskOutput]:
    """Run `tasks` against the code in `workdir` (a working copy the probe may modify).
    `runner`: "fork", "spawn" or None (fork where it exists). `preload`: the modules the runner
    imports before forking the tasks; None: the heavy ones the code imports (grader/grading/preload.py).
    `on_output`: called with each task's output as soon as it arrives, while later tasks run. It
    is provisional: the returned outputs are the verdict (a stream found tampered with later
    discards every output)."""
    mode = runner_mode(runner)
    if preload is None:  # a spawned task imports what it needs itself: nothing to read
        preload = () if mode == "spawn" else modules_to_preload(workdir)
    with tempfile.TemporaryDirectory(prefix="mlp-grader-job-", dir=scratch) as tmp:
        jobdir = Path(tmp)
        _prepare_job(jobdir, workdir, probe, tasks, data_dir, preload, sandbox, mode)
        home = jobdir / "home"
        per_task = 1 + (SPAWN_STARTUP if mode == "spawn" else 0.0)
        limits = Limits(wall_seconds=STARTUP_SECONDS + sum(t.timeout + per_task for t in tasks),
                        memory_bytes=max(t.memory for t in tasks))
        readable = [jobdir] + ([data_dir] if data_dir else [])
        data_before = _fingerprint(data_dir)
        messages = Messages([t.id for t in tasks])

        def arrived(stream: bytearray) -> None:
            for out in messages.read(stream):
                on_output(out)

        try:
            proc = run_sandboxed(sandbox, [python_executable(), "-I", "-S", "-B",
                                           str(jobdir / "probe" / "runner.py"), str(jobdir)],
                                 jobdir=jobdir, readable=readable, writable=[workdir], limits=limits,
                                 env=probe_environment(home), cwd=workdir, max_stdout=MAX_STDOUT,
                                 disk_bytes=DISK_BYTES, on_stdout=arrived if on_output else None)
        except BlockingIOError:
            raise MachineBusy("the probe's start") from None
        if data_dir is not None and _fingerprint(data_dir) != data_before:
            _discard(data_dir)  # changed by this probe (process level): re-exported for the next one
        outputs, tampered = messages.finish(proc.stdout)
        if not tampered and any(out.detail == MACHINE_BUSY for out in outputs.values()):
            raise MachineBusy("a task's start")
        runner_error = proc.stderr.decode("utf-8", "replace")[-2000:]
        if tampered:
            return {t.id: TaskOutput(t.id, "error", detail=TAMPERED) for t in tasks}
        for task in tasks:
            if task.id not in outputs:
                status = "timeout" if proc.timed_out else "error"
                detail = "the probe stopped before this task ran"
                if proc.overflow:
                    detail = f"the probe sent more than {MAX_STDOUT // 1024**2} MB of results and was stopped"
                outputs[task.id] = TaskOutput(task.id, status, detail=detail, error=runner_error)
        return outputs


def _prepare_job(jobdir: Path, workdir: Path, probe: str, tasks: list[Task], data_dir: Path | None,
                 preload: tuple[str, ...], sandbox: Any = None, runner: str = "fork") -> dict[str, Any]:
    for name in ("probe", "inputs", "out", "home", "src", "seed"):
        (jobdir / name).mkdir()  # src: mount point of the real working copy when it is private
    seed_matplotlib_cache(jobdir / "seed" / ".matplotlib")  # the runner copies it into $HOME
    for source in PROBES_DIR.glob("*.py"):  # the runner, every probe and their helpers: public code
        shutil.copy2(source, jobdir / "probe" / source.name)
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
           "workdir_source": str(jobdir / "src"), "home_seed": str(jobdir / "seed"),
           "rlimits": sandbox.rlimits, "runner": runner, "patience": runner_module.PATIENCE,
           "max_payload": MAX_PAYLOAD, "max_file": MAX_PAYLOAD, "disk_bytes": DISK_BYTES, "max_files": MAX_FILES}
    (jobdir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    return job


class Messages:
    """The runner's messages, read as they arrive: one message per task in task order, and the
    runner may stop early (a failed gate, a timeout, a crash). Anything else (another task's id,
    a repeated one, a malformed header, bytes after the last task) means something else wrote
    into the stream: tampered, and no output of the run is used."""

    def __init__(self, task_ids: list[str]):
        self.task_ids = task_ids
        self.outputs: dict[str, TaskOutput] = {}
        self.tampered = False
        self._pos = 0
        self._header: tuple[int, dict[str, Any]] | None = None  # read, its payload still arriving

    def read(self, stream: bytes | bytearray) -> list[TaskOutput]:
        """The messages that `stream` (everything received so far) completes."""
        new = []
        while not self.tampered and len(self.outputs) < len(self.task_ids):
            out = self._next(stream)
            if out is None:
                break
            self.outputs[out.id] = out
            new.append(out)
        return new

    def finish(self, stream: bytes | bytearray) -> tuple[dict[str, TaskOutput], bool]:
        """(outputs, tampered) once the runner is gone: a message cut off at the end is a stop."""
        self.read(stream)
        no_line_end = stream.find(b"\n", self._pos, self._pos + MAX_HEADER + 1) < 0
        if len(self.outputs) < len(self.task_ids) and no_line_end and len(stream) - self._pos > MAX_HEADER:
            self.tampered = True  # cut off, unless it is too long to be ours
        if len(self.outputs) == len(self.task_ids) and len(stream) > self._pos:
            self.tampered = True
        return ({}, True) if self.tampered else (self.outputs, False)

    def _next(self, stream: bytes | bytearray) -> TaskOutput | None:
        """The next complete message, advancing past it; None while it is incomplete."""
        if self._header is None:  # read once, not again for every piece of its payload
            end = stream.find(b"\n", self._pos, self._pos + MAX_HEADER + 1)
            if end < 0:
                return None
            header = _header(bytes(stream[self._pos:end + 1]))
            if header is None or header["task"] != self.task_ids[len(self.outputs)]:
                self.tampered = True
                return None
            self._header = (end, header)
        end, header = self._header
        if len(stream) - (end + 1) < header["payload"]:
            return None
        self._header = None
        expected = header["task"]
        payload = bytes(stream[end + 1:end + 1 + header["payload"]])
        self._pos = end + 1 + header["payload"]
        out = TaskOutput(expected, header["status"], detail=header["detail"], error=header["error"],
                         log=header["log"], seconds=header["seconds"])
        if out.ok:
            try:
                out.arrays = load_payload(payload)
            except ValueError as exc:
                out.status, out.detail, out.error = "error", f"returned data the grader cannot accept: {exc}", ""
        return out


def _parse(stream: bytes, task_ids: list[str]) -> tuple[dict[str, TaskOutput], bool]:
    """The runner's messages in a finished stream: (outputs, tampered); see Messages."""
    return Messages(task_ids).finish(stream)


def _header(line: bytes) -> dict[str, Any] | None:
    try:
        header = json.loads(line)
    except ValueError:
        return None
    if not isinstance(header, dict) or header.get("status") not in STATUSES:
        return None
    size, seconds = header.get("payload"), header.get("seconds", 0.0)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_PAYLOAD:
        return None
    if not isinstance(header.get("task"), str) or not isinstance(seconds, (int, float)):
        return None
    texts = {k: header.get(k, "") for k in ("detail", "error", "log")}
    if not all(isinstance(v, str) for v in texts.values()):
        return None
    return {"task": header["task"], "status": header["status"], "payload": size,
            "seconds": float(seconds), **{k: v[-4000:] for k, v in texts.items()}}


def load_payload(payload: bytes) -> dict[str, np.ndarray]:
    """An `.npz` of plain numeric arrays: read without pickle, and with every size checked
    before anything is decompressed or allocated (a zip bomb or a header that claims a huge
    array is refused, not attempted). Raises ValueError with the reason."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"the result is {len(payload)} bytes; the grader accepts at most {MAX_PAYLOAD}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ValueError(f"not an .npz archive ({exc})") from None
    if len(members) > MAX_ARRAYS:
        raise ValueError(f"{len(members)} arrays; the grader accepts at most {MAX_ARRAYS}")
    if sum(m.file_size for m in members) > MAX_PAYLOAD:
        raise ValueError("the arrays are larger than the grader accepts")
    arrays: dict[str, np.ndarray] = {}
    for member in members:
        name = member.filename.removesuffix(".npy")
        if member.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{name} is compressed; only uncompressed archives are accepted")
        if not member.filename.endswith(".npy") or name in arrays:
            raise ValueError(f"unexpected member {member.filename!r}")
        try:
            with archive.open(member) as fh:
                arrays[name] = _read_npy(fh, member.file_size, name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ValueError(f"{name} cannot be read ({exc})") from None
    return arrays


def _read_npy(fh, size: int, name: str) -> np.ndarray:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
        raise ValueError(f"{name} has dtype {dtype}, not numbers")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count < 0 or count * dtype.itemsize != size - fh.tell():
        raise ValueError(f"{name}: its header does not match its size")
    data = fh.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f"{name} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _fingerprint(folder: Path | None) -> list[tuple]:
    """What changes when a file in `folder` is written, replaced, added or removed (the change
    time cannot be set back by the writer)."""
    if folder is None or not Path(folder).is_dir():
        return []
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        st = entry.stat(follow_symlinks=False)
        out.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode))
    return out


def _discard(folder: Path) -> None:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
