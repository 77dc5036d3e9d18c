"""Submissions on disk: finding them, fingerprinting them, and making the working copy a probe
runs in (the student's files, with the course-provided files replaced by trusted copies)."""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError

IGNORED_NAMES = {"__pycache__", ".ipynb_checkpoints", ".git", ".DS_Store", "__MACOSX"}
MAX_FILE_BYTES = 20 * 1024**2
MAX_TOTAL_BYTES = 100 * 1024**2


@dataclass
class Submission:
    name: str
    path: Path
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    ignored: list[str] = field(default_factory=list)  # files not copied, with the reason

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for rel, sha in sorted(self.files.items()):
            digest.update(f"{rel}\0{sha}\n".encode())
        return digest.hexdigest()


def load_submission(path: Path) -> Submission:
    path = Path(path)
    if not path.exists():
        raise GraderError(f"submission not found: {path}")
    if not path.is_dir():
        raise GraderError(f"a submission is a folder of files; {path} is not a folder")
    sub = Submission(name=path.name, path=path)
    total = 0
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if any(part in IGNORED_NAMES for part in rel.parts) or not file.is_file() or file.is_symlink():
            if file.is_symlink():
                sub.ignored.append(f"{rel} (symbolic link)")
            continue
        size = file.stat().st_size
        if size > MAX_FILE_BYTES or total + size > MAX_TOTAL_BYTES:
            sub.ignored.append(f"{rel} (too large: {size} bytes)")
            continue
        total += size
        sub.files[rel.as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return sub


def discover(path: Path, markers: tuple[str, ...]) -> list[Path]:
    """`path` itself when it looks like one submission, else each sub-folder of it."""
    path = Path(path)
    if not path.is_dir():
        raise GraderError(f"not a folder: {path}")
    if looks_like_submission(path, markers):
        return [path]
    subs = sorted(p for p in path.iterdir() if p.is_dir() and p.name not in IGNORED_NAMES
                  and not p.name.startswith("."))
    if not subs:
        raise GraderError(f"{path} holds no submission folders and none of {', '.join(markers)}")
    return subs


def looks_like_submission(path: Path, markers: tuple[str, ...]) -> bool:
    return any((path / m).exists() for m in markers)


def make_working_copy(sub: Submission, dest: Path, provided: dict[str, Path]) -> Path:
    """Copy the student's files into `dest`; course files always come from `provided`."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in sub.files:
        if rel in provided:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sub.path / rel, target)
    for rel, trusted in provided.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trusted, target)
    return dest
