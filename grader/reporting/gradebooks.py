"""The class's gradebooks: OUT/gradebook.csv (a row per student, a column per question) and, for
batches that came from a Canvas submissions export, a gradebook Canvas's grade import accepts
(Grades → Import).

Canvas matches rows on its numeric user ID, which the export puts in every file name
(`smithjohn_12345_67890_mlp.py`: user 12345), so the batch records each student's ID in
OUT/canvas.json and the gradebook is rebuilt from it with the results. The columns are Canvas's
own export header (Student, ID, SIS User ID, SIS Login ID, Section) and one column for the
assignment's total; Canvas ignores the empty SIS columns and the "Points Possible" row.
"""
from __future__ import annotations

import json
from pathlib import Path

from grader.files import SpreadsheetSafeWriter
from grader.results import Result

IDENTITIES = "canvas.json"
CANVAS_NAMES = "canvas-names.json"
HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_gradebook(results: list[Result], path: Path) -> Path:
    """One row per student, a column per question, the totals, and a points-possible row. With a
    late policy: the raw points, late days, bank days, the penalty and the rule applied, and
    `total` is the final points (the penalty applies to the total only)."""
    questions = question_columns(results)
    late = any(r.late for r in results)
    late_header = ["raw", "late days", "bank days used", "bank days left", "late penalty"] if late else []
    header = ["student", *[q for q, _ in questions], "autograded", *late_header, "total", "status",
              *(["late rule"] if late else [])]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(header)
        if results:
            possible = results[0]
            writer.writerow(["Points Possible", *[f"{m:g}" for _, m in questions], f"{possible.autograded_max:g}",
                             *([f"{possible.max_points:g}", "", "", "", ""] if late else []),
                             f"{possible.max_points:g}", "", *([""] if late else [])])
        for r in sorted(results, key=lambda r: r.submission):
            by_id = {q.id: q for q in r.questions}
            cells = []
            for qid, _ in questions:
                q = by_id.get(qid)
                cells.append("" if q is None or q.points is None else f"{q.points:g}")
            status = "error: " + r.error if r.error else "graded"
            late_cells = [f"{r.raw_points:g}", *late_day_cells(r), f"{r.late_penalty:g}"] if late else []
            writer.writerow([r.submission, *cells, f"{r.autograded_points:g}", *late_cells, f"{r.total_points:g}",
                             status, *([r.late.get("rule", "")] if late else [])])
    return path


def late_day_cells(result: Result) -> list[str]:
    """Late days, bank days used, bank days left ("" where the policy has no bank or no time was known)."""
    late = result.late
    days = "" if not late or (late.get("unknown") and not late.get("days")) else str(late.get("days", 0))
    left = late.get("bank_left")
    return [days, str(late.get("bank_used", 0)) if left is not None else "", "" if left is None else str(left)]


def question_columns(results: list[Result]) -> list[tuple[str, float]]:
    for r in results:
        if r.questions:
            return [(q.id, q.max_points) for q in r.questions]
    return []


def write_identities(ids: dict[str, str], folder: Path) -> Path | None:
    """student name -> Canvas user id; nothing is written for a batch without Canvas files."""
    return _write_names(ids, Path(folder) / IDENTITIES)


def read_identities(folder: Path) -> dict[str, str]:
    return _read_names(Path(folder) / IDENTITIES)


def write_canvas_names(prefixes: dict[str, str], folder: Path) -> Path | None:
    """student name -> the Canvas export's name prefix of their files (`smithjohn_12345_67890`):
    the feedback pages' re-upload zip names each page with it. Nothing without Canvas files."""
    return _write_names(prefixes, Path(folder) / CANVAS_NAMES)


def read_canvas_names(folder: Path) -> dict[str, str]:
    return _read_names(Path(folder) / CANVAS_NAMES)


def _write_names(names: dict[str, str], path: Path) -> Path | None:
    """A student -> name mapping as JSON; an empty one removes the file (an earlier batch's)."""
    if not names:
        path.unlink(missing_ok=True)
        return None
    path.write_text(json.dumps(dict(sorted(names.items())), indent=1), encoding="utf-8")
    return path


def _read_names(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def gradebook_name(assignment: str, assignments: list[str]) -> str:
    return "canvas-gradebook.csv" if len(assignments) == 1 else f"canvas-gradebook-{assignment}.csv"


def write_canvas_gradebook(results: list[Result], ids: dict[str, str], path: Path, column: str) -> Path:
    """One row per student with a Canvas ID; the total (autograded plus merged hand grading).
    A submission that could not be graded gets an empty cell, so importing never records a 0
    for the grader's failure; students without a Canvas ID are left out."""
    rows = sorted((r for r in results if r.submission in ids), key=lambda r: r.submission)
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow([*HEADER, column])
        if rows:
            writer.writerow(["Points Possible", "", "", "", "", f"{rows[0].max_points:g}"])
        for r in rows:
            writer.writerow([r.submission, ids[r.submission], "", "", "", "" if r.error else f"{r.total_points:g}"])
    return Path(path)
