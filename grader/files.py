"""Reading and writing the grader's own files: atomic writes, TOML, names safe for a folder.

Every subsystem writes files that another process may read at the same moment (a re-run trusts
a complete result.json; forked workers memory-map the dataset export while another one writes
it; Gradescope reads results.json when the run ends), so each write goes through `replacing`.
"""
from __future__ import annotations

import csv
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

__all__ = ["SpreadsheetSafeWriter", "atomic_write", "from_spreadsheet", "load_toml", "replacing", "safe_name",
           "spreadsheet_safe", "tomllib"]


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


# A cell a spreadsheet would read as a formula: it starts with one of these, possibly after
# quotes we added ourselves (so that prefixing stays reversible: "'=x" is written "''=x").
FORMULA_START = re.compile(r"^'*[=+\-@\t\r]")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def spreadsheet_safe(cell: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs (CSV injection: a student folder named
    `=HYPERLINK(...)`): a leading quote before a cell that would start a formula. Numbers stay
    numbers (-2.5 is a score, not a formula)."""
    text = "" if cell is None else str(cell)
    if FORMULA_START.match(text) and not NUMBER.match(text):
        return "'" + text
    return text


def from_spreadsheet(cell: str) -> str:
    """Undo spreadsheet_safe when reading one of our CSVs back (the manual scores sheet)."""
    return cell[1:] if cell.startswith("'") and FORMULA_START.match(cell[1:]) else cell


class SpreadsheetSafeWriter:
    """csv.writer whose every cell goes through spreadsheet_safe: every CSV the grader writes
    (gradebooks, Canvas's import, the manual scores sheet) is written with it."""

    def __init__(self, fh, **fmt) -> None:
        self._writer = csv.writer(fh, **fmt)

    def writerow(self, row) -> None:
        self._writer.writerow([spreadsheet_safe(cell) for cell in row])
