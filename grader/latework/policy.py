"""The `[late]` table: in the rubric, overridden key by key by a course file (`--policy FILE`,
a TOML file with the same `[late]` table) so one course file can serve every assignment.

    [late]
    due = 2026-03-01T23:59:00+01:00   # ISO 8601 with a time zone (TOML datetime or string)
    timezone = "Europe/Zurich"        # optional: days are counted on this zone's clock
    grace_minutes = 10
    penalty_per_day = 0.10            # fraction of the points earned, per started day
    max_late_days = 3                 # later than that: zero
    late_day_bank = 2                 # optional: days a student may spend without penalty
    unknown_late_days = 1             # optional: a Canvas LATE marker without a time counts as this
    closes = 2026-03-05T23:59:00+01:00  # optional: the submission window's end (a check on due times)
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader.files import load_toml, tomllib
from grader.latework.inputs import LateInputError, parse_days, parse_time

KEYS = ("due", "timezone", "grace_minutes", "penalty_per_day", "max_late_days", "late_day_bank",
        "unknown_late_days", "closes")


@dataclass(frozen=True)
class LatePolicy:
    due: datetime  # in `zone`
    zone: tzinfo
    grace_minutes: float = 0.0
    penalty_per_day: float = 0.0
    max_late_days: int | None = None
    late_day_bank: int = 0
    unknown_late_days: int | None = None
    closes: datetime | None = None
    source: str = ""  # where it was read: "rubrics/pset4.toml [late]", "+ course.toml"

    def digest(self) -> str:
        """The rules as a hash: a result records it, so a diff can say "late policy changed"."""
        fields = {k: str(getattr(self, k)) for k in KEYS if k != "timezone"} | {"zone": str(self.zone)}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def check_due(self, due: datetime, where: str) -> None:
        if self.closes is not None and due > self.closes:
            raise LateInputError(f"{where}: due {due.isoformat()} is after the submission window closes "
                                 f"({self.closes.isoformat()})")


def load_policy(rubric_table: dict[str, Any], rubric_path: Path, course_file: Path | None) -> LatePolicy | None:
    """The assignment's policy, or None when neither the rubric nor the course file has one."""
    tables: list[tuple[dict[str, Any], Path]] = [(rubric_table, rubric_path)] if rubric_table else []
    if course_file is not None:
        tables.append((_course_table(course_file), course_file))
    if not tables:
        return None
    merged: dict[str, tuple[Any, Path]] = {}
    for table, path in tables:
        for key, value in table.items():
            if key not in KEYS:
                raise LateInputError(f"{_where(path, key)}: unknown key {key!r} in [late] "
                                     f"(known: {', '.join(KEYS)})")
            merged[key] = (value, path)
    if "due" not in merged:
        raise LateInputError(f"{tables[-1][1]}: the [late] table needs a due time (due = 2026-03-01T23:59:00+01:00)")
    zone = _zone(merged)
    due = parse_time(merged["due"][0], _where(merged["due"][1], "due")).astimezone(zone)

    def number(key: str, default, integer: bool = False):
        if key not in merged:
            return default
        value = parse_days(merged[key][0], _where(merged[key][1], key), key)
        if integer and value != int(value):
            raise LateInputError(f"{_where(merged[key][1], key)}: {key} must be a whole number of days, not {value:g}")
        return int(value) if integer else value

    penalty = number("penalty_per_day", 0.0)
    if penalty > 1:
        raise LateInputError(f"{_where(merged['penalty_per_day'][1], 'penalty_per_day')}: penalty_per_day is a "
                             f"fraction of the points (0.1 = 10 %), not {penalty:g}")
    closes = (parse_time(merged["closes"][0], _where(merged["closes"][1], "closes")).astimezone(zone)
              if "closes" in merged else None)
    policy = LatePolicy(due, zone, number("grace_minutes", 0.0), penalty, number("max_late_days", None, True),
                        number("late_day_bank", 0, True), number("unknown_late_days", None, True), closes,
                        " + ".join(dict.fromkeys(str(path) for _, path in tables)))
    policy.check_due(due, _where(merged["due"][1], "due"))
    return policy


def _course_table(path: Path) -> dict[str, Any]:
    try:
        raw = load_toml(path)
    except FileNotFoundError:
        raise LateInputError(f"--policy {path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LateInputError(f"--policy {path}: not a readable TOML file ({exc})") from None
    table = raw.get("late")
    if not isinstance(table, dict):
        raise LateInputError(f"--policy {path}: no [late] table")
    return table


def _zone(merged: dict[str, tuple[Any, Path]]) -> tzinfo:
    if "timezone" in merged:
        name, path = merged["timezone"]
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise LateInputError(f"{_where(path, 'timezone')}: unknown time zone {name!r} "
                                 "(an IANA name such as Europe/Zurich)") from None
    value, path = merged["due"]
    return parse_time(value, _where(path, "due")).tzinfo  # type: ignore[return-value]


def _where(path: Path, key: str) -> str:
    """FILE:LINE of `key = ...` inside the [late] table (tomllib keeps no line numbers)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return str(path)
    inside = False
    for number, line in enumerate(lines, 1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            inside = header.group(1).strip() == "late"
        elif inside and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return f"{path}:{number}"
    return f"{path} [late]"
