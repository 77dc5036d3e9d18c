"""The reference solution's probe outputs, kept on disk between runs.

They depend only on the reference's files, the trusted course files, the rubric's task
(function, parameters, input arrays), the probe code, the dataset and the grader version; a
second `grade` of the same assignment used to recompute all of them (a profile of one
one-off grading: the reference's probes were a third of the grader's own time). Every one of
those goes into the key, so an edit to any of them is a miss, never a stale value.

The cache is only used at sandbox levels that keep student code from writing outside its own
folders (`confines_writes`): at the `process` level a submission could plant outputs here
that later runs would take for the reference's.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from grader import __version__
from grader.grading.probe import PROBES_DIR
from grader.kinds.tasks import Task, TaskOutput

FORMAT = 1  # bump when what is stored changes shape


def default_folder() -> Path:
    """$MLP_GRADER_CACHE, else reference-outputs/ in the data folder (MLP_GRADER_DATA moves it).
    Its own variable so that a container can keep it in a volume of its own (the image's data
    folder holds the baked datasets, which a volume over it would hide)."""
    from grader.data import DEFAULT_DATA_DIR

    return Path(os.environ.get("MLP_GRADER_CACHE") or DEFAULT_DATA_DIR / "reference-outputs")


class ReferenceCache:
    def __init__(self, folder: Path, context: str) -> None:
        """`context`: a digest of everything the outputs depend on besides the task itself."""
        self.folder = Path(folder)
        self.context = context

    @staticmethod
    def context_digest(*, reference_hash: str, provided: dict[str, Path], rubric_hash: str,
                       dataset_hash: str) -> str:
        digest = hashlib.sha256(f"{FORMAT}\0{__version__}\0{reference_hash}\0{rubric_hash}\0{dataset_hash}".encode())
        for rel, path in sorted(provided.items()):
            digest.update(rel.encode() + b"\0" + hashlib.sha256(Path(path).read_bytes()).digest())
        for source in sorted(PROBES_DIR.glob("*.py")):  # the code that runs the reference's tasks
            digest.update(source.name.encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
        return digest.hexdigest()

    def _path(self, task: Task) -> Path:
        digest = hashlib.sha256(self.context.encode())
        spec = {"id": task.id, "fn": task.fn, "params": task.params, "needs_data": task.needs_data}
        digest.update(json.dumps(spec, sort_keys=True, default=str).encode())
        for name in sorted(task.arrays):
            arr = np.ascontiguousarray(task.arrays[name])
            digest.update(f"{name}\0{arr.dtype.str}\0{arr.shape}".encode() + b"\0" + arr.tobytes())
        return self.folder / digest.hexdigest()[:40]

    def load(self, task: Task) -> TaskOutput | None:
        path = self._path(task)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            with np.load(path / "arrays.npz", allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):
            return None  # missing or damaged: recomputed and stored again
        try:  # marks it used: what no run uses any more can be found by age and removed
            os.utime(path)
        except OSError:
            pass
        return TaskOutput(task.id, "ok", arrays=arrays, log=meta.get("log", ""), seconds=meta.get("seconds", 0.0))

    def store(self, task: Task, output: TaskOutput) -> None:
        """Only successful outputs; written to a temporary folder and renamed into place, so a
        parallel reader sees all of an entry or none of it."""
        if not output.ok:
            return
        target = self._path(task)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.folder))
            np.savez(tmp / "arrays.npz", **output.arrays)
            (tmp / "meta.json").write_text(json.dumps({"task": task.id, "log": output.log[-2000:],
                                                       "seconds": output.seconds}), encoding="utf-8")
            try:
                os.rename(tmp, target)
            except OSError:  # another worker stored it first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # a read-only or full cache folder costs speed, not grades
