"""Reading the TA's time-related inputs with one-line errors that name the file and line: ISO 8601
times (a time zone is required), day counts, and the CSV files (extensions, submission times,
the late-day bank)."""
from __future__ import annotations

import csv
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from grader.errors import GraderError
from grader.files import from_spreadsheet


class LateInputError(GraderError):
    """A policy, extensions, submission-times or bank file the grader cannot use."""


def parse_time(value: object, where: str) -> datetime:
    """An aware datetime from ISO 8601 text (or a TOML datetime). A trailing 'Z' is read as UTC
    (datetime.fromisoformat accepts it only from Python 3.11 on); a time without a zone is
    refused: 23:59 means a different moment in every time zone."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        if re.search(r"[zZ]$", text):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise LateInputError(f"{where}: {str(value).strip()!r} is not an ISO 8601 time "
                                 "(e.g. 2026-03-01T23:59:00+01:00)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise LateInputError(f"{where}: {str(value).strip()!r} has no time zone (add one, e.g. +01:00 or Z)")
    return parsed


def parse_days(value: object, where: str, what: str = "a day count") -> float:
    """A non-negative number of days (extra days, a bank, a count of spent days)."""
    if isinstance(value, bool):
        raise LateInputError(f"{where}: {what} must be a number, not {value!r}")
    try:
        days = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise LateInputError(f"{where}: {what} must be a number, not {str(value).strip()!r}") from None
    if not math.isfinite(days) or days < 0:
        raise LateInputError(f"{where}: {what} must be zero or more, not {str(value).strip()}")
    return days


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def csv_rows(path: Path, required: tuple[str, ...], label: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(where, row) per data row of a CSV with a header; `where` is "FILE:LINE". Cells are read
    back through from_spreadsheet (our own CSVs quote formula-like cells)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LateInputError(f"{label} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LateInputError(f"{label} {path}: cannot be read ({exc})") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise LateInputError(f"{path}:1: the header needs the column{'s' * (len(missing) > 1)} "
                             f"{', '.join(missing)} (it has: {', '.join(header) or 'nothing'})")
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue
        row = {name: from_spreadsheet(cells[i].strip()) if i < len(cells) else "" for i, name in enumerate(header)}
        yield f"{path}:{reader.line_num}", row
