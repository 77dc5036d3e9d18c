"""`--extensions FILE`: a CSV with a header, one row per student:

    student,due,extra_days,multiplier
    alice,2026-03-03T23:59:00+01:00,,
    bob,,2,
    carol,,,1.5

`due` (a new due time) or `extra_days` (added on the course's clock, so 23:59 stays 23:59
across a daylight-saving change); `multiplier`: a standing accommodation that stretches the
grace period and each late day for this student (1.5: a late day is 36 hours)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from grader.latework.inputs import LateInputError, csv_rows, parse_days, parse_time
from grader.latework.policy import LatePolicy


@dataclass(frozen=True)
class Extension:
    due: datetime  # the student's own due time, in the policy's zone
    multiplier: float = 1.0
    why: str = ""  # "extension to 2026-03-03 23:59", "2 extra days"


def read_extensions(path: Path, policy: LatePolicy, students: set[str]) -> dict[str, Extension]:
    found: dict[str, Extension] = {}
    for where, row in csv_rows(path, ("student",), "--extensions"):
        student = row.get("student", "")
        if student not in students:
            raise LateInputError(f"{where}: unknown student {student!r} (not in this batch)")
        if student in found:
            raise LateInputError(f"{where}: {student!r} has a row already")
        new_due, extra = row.get("due", ""), row.get("extra_days", "")
        if new_due and extra:
            raise LateInputError(f"{where}: give a new due time or extra days, not both")
        multiplier = parse_days(row["multiplier"], where, "multiplier") if row.get("multiplier") else 1.0
        if multiplier <= 0:
            raise LateInputError(f"{where}: multiplier must be more than zero, not {row['multiplier']}")
        if new_due:
            due = parse_time(new_due, where).astimezone(policy.zone)
            why = f"extension to {due:%Y-%m-%d %H:%M %Z}"
        elif extra:
            days = parse_days(extra, where, "extra_days")
            due = policy.due + timedelta(days=days)  # on the zone's clock: wall time kept across DST
            why = f"{days:g} extra day{'s' * (days != 1)}"
        elif multiplier != 1.0:
            due, why = policy.due, ""
        else:
            raise LateInputError(f"{where}: no due, extra_days or multiplier for {student!r}")
        policy.check_due(due, where)
        if multiplier != 1.0:
            why = ", ".join(filter(None, [why, f"late days ×{multiplier:g}"]))
        found[student] = Extension(due, multiplier, why)
    return found
