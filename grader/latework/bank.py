"""The late-day bank: a CSV the TA keeps between assignments (`student,assignment,days`), one
row per student and assignment that spent days. Grading an assignment replaces that
assignment's rows, never adds to them: running the same grading again spends nothing twice."""
from __future__ import annotations

from pathlib import Path

from grader.files import SpreadsheetSafeWriter, replacing
from grader.latework.inputs import LateInputError, csv_rows, parse_days

HEADER = ("student", "assignment", "days")


def read_bank(path: Path) -> dict[tuple[str, str], int]:
    """(student, assignment) -> days spent; a missing file is an empty bank (the first assignment)."""
    if not Path(path).exists():
        return {}
    spent: dict[tuple[str, str], int] = {}
    for where, row in csv_rows(path, HEADER, "--late-day-bank"):
        days = parse_days(row["days"], where, "days")
        if days != int(days):
            raise LateInputError(f"{where}: days must be a whole number, not {row['days']}")
        key = (row["student"], row["assignment"])
        if key in spent:
            raise LateInputError(f"{where}: {row['student']!r} has a row for {row['assignment']!r} already")
        spent[key] = int(days)
    return spent


def spent_elsewhere(spent: dict[tuple[str, str], int], student: str, assignment: str) -> int:
    return sum(days for (who, what), days in spent.items() if who == student and what != assignment)


def write_bank(path: Path, spent: dict[tuple[str, str], int], assignment: str, used: dict[str, int]) -> None:
    """The bank with `assignment`'s rows replaced by `used` (student -> days, zero rows left out)."""
    rows = {key: days for key, days in spent.items() if key[1] != assignment}
    rows.update({(student, assignment): days for student, days in used.items() if days})
    with replacing(Path(path)) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(HEADER)
        for (student, what), days in sorted(rows.items()):
            writer.writerow([student, what, days])
