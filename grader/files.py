"""Reading and writing the grader's own files: atomic writes, TOML, names safe for a folder.

Every subsystem writes files that another process may read at the same moment (a re-run trusts
a complete result.json; forked workers memory-map the dataset export while another one writes
it; Gradescope reads results.json when the run ends), so each write goes through `replacing`.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["atomic_write", "load_toml", "replacing", "safe_name", "tomllib"]


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write; it becomes `path` in one step when the block ends
    without an error, and is removed otherwise: a reader never sees half a file. The temporary
    name is per process and thread, so concurrent writers of one file never share it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically (see `replacing`)."""
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def load_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; raises OSError, UnicodeDecodeError or tomllib.TOMLDecodeError."""
    return tomllib.loads(Path(path).read_bytes().decode("utf-8"))


def safe_name(name: str) -> str:
    """A folder name for a submission that cannot climb out of the output folder."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"
