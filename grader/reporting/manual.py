"""Manual grading of the written answers through a CSV file the TA fills in.

`write_manual_csv` writes one row per student and manual question (student, question,
max_points, score, comment; score and comment empty until graded, or the values already
merged). `merge_manual` reads the TA's file back, checks every row against the results (unknown
student, unknown or autograded question, duplicate row, a score that is not a number, negative
or above the maximum, a max_points column that disagrees with the rubric) and either merges
everything or raises one GraderError that lists every problem with its line number: nothing is
merged silently or partially. An empty score leaves the question ungraded (its comment is
still kept), so a TA can merge a half-graded file.
"""
from __future__ import annotations

import copy
import csv
import difflib
import io
import math
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.files import SpreadsheetSafeWriter, atomic_write, from_spreadsheet
from grader.reporting.report import write_report
from grader.reporting.summary import rebuild
from grader.results import Result

COLUMNS = ("student", "question", "max_points", "score", "comment")


@dataclass(frozen=True)
class ManualRow:
    line: int  # in the file, for error messages (the header is line 1)
    student: str
    question: str
    max_points: str
    score: str
    comment: str


def write_manual_csv(results: list[Result], path: Path, *, force: bool = False) -> Path:
    """One row per (student, manual question), sorted; scores and comments already merged are
    kept, so re-writing the file after a merge loses nothing. A TA's work is never overwritten:
    when `path` holds scores or comments that these results do not have (graded again without
    --manual), the file goes to manual.new.csv beside it instead; the path written is returned."""
    path = Path(path)
    if not force and path.exists() and _would_lose(path, results):
        path = path.with_name(path.stem + ".new" + path.suffix)
    buf = io.StringIO()
    writer = SpreadsheetSafeWriter(buf)
    writer.writerow(COLUMNS)
    for r in sorted(results, key=lambda r: r.submission):
        for q in r.questions:
            if q.manual:
                writer.writerow([r.submission, q.id, f"{q.max_points:g}",
                                 "" if q.points is None else f"{q.points:g}", q.comment])
    return atomic_write(path, buf.getvalue())


def read_manual_csv(path: Path) -> list[ManualRow]:
    """The rows of a manual.csv (spreadsheet exports welcome: a BOM, `;` separators, extra
    columns and blank lines are fine). Raises GraderError when the file or its header is unusable."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:  # newline="": a CR inside a cell stays one
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"cannot read {path}: {exc}") from exc
    try:  # only the separator is guessed (from the header); quoting is the spreadsheets' own
        delimiter = csv.Sniffer().sniff(text.splitlines()[0] if text.strip() else "a,b", delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise GraderError(f"{path} is empty; expected the columns {', '.join(COLUMNS)}")
    names = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise GraderError(f"{path}: missing column(s) {', '.join(missing)}; the header must have "
                          f"{', '.join(COLUMNS)} (found: {', '.join(header)})")
    where = {c: names.index(c) for c in COLUMNS}
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        # spaces a spreadsheet adds go; a tab or carriage return that is part of a name stays
        get = lambda c: from_spreadsheet(cells[where[c]].strip(" ")) if where[c] < len(cells) else ""  # noqa: E731
        rows.append(ManualRow(line, *(get(c) for c in COLUMNS)))
    return rows


def check_manual(rows: list[ManualRow], results: list[Result]) -> list[str]:
    """Every problem of the rows against the results, as one line each ([] when all is well)."""
    by_student = {r.submission: r for r in results}
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        at = f"line {row.line}"
        result = by_student.get(row.student)
        if result is None:
            close = difflib.get_close_matches(row.student, list(by_student), n=1)
            problems.append(f"{at}: unknown student {row.student!r}"
                            + (f" (did you mean {close[0]!r}?)" if close else " (not in this grading run)"))
            continue
        questions = {q.id: q for q in result.questions}
        question = questions.get(row.question)
        manual_ids = [q.id for q in result.questions if q.manual]
        if question is None:
            problems.append(f"{at}: unknown question {row.question!r} for {row.student} "
                            f"(written questions of {result.assignment}: {', '.join(manual_ids)})")
            continue
        if not question.manual:
            problems.append(f"{at}: {row.question} is autograded; manual.csv scores written questions only "
                            f"({', '.join(manual_ids)})")
            continue
        key = (row.student, row.question)
        if key in seen:
            problems.append(f"{at}: {row.student} {row.question} appears twice (also line {seen[key]})")
            continue
        seen[key] = row.line
        if row.max_points and _number(row.max_points) != question.max_points:
            problems.append(f"{at}: max_points {row.max_points!r} for {row.question} differs from the rubric's "
                            f"{question.max_points:g} (a manual.csv from another rubric?)")
        if not row.score:
            continue
        score = _number(row.score)
        if score is None:
            hint = " (use a dot as decimal separator)" if "," in row.score else ""
            problems.append(f"{at}: score {row.score!r} for {row.student} {row.question} is not a number{hint}")
        elif score < 0:
            problems.append(f"{at}: score {row.score} for {row.student} {row.question} is negative")
        elif score > question.max_points + 1e-9:
            problems.append(f"{at}: score {row.score} for {row.student} {row.question} is above the maximum "
                            f"{question.max_points:g}")
    return problems


def merge_manual(results: list[Result], csv_path: Path) -> list[Result]:
    """Copies of `results` with the TA's scores (QuestionResult.points) and comments merged.
    Raises GraderError listing every problem when anything is wrong; nothing is merged then."""
    rows = read_manual_csv(csv_path)
    problems = check_manual(rows, results)
    if problems:
        raise GraderError(f"{csv_path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}, nothing merged:\n  "
                          + "\n  ".join(problems))
    merged = [copy.deepcopy(r) for r in results]
    by_student = {r.submission: r for r in merged}
    for row in rows:
        question = next(q for q in by_student[row.student].questions if q.id == row.question)
        if row.score:
            question.points = float(_number(row.score))  # type: ignore[arg-type]
        question.comment = row.comment
    return merged


def merge_manual_folder(out_dir: Path, csv_path: Path) -> list[Result]:
    """Merge into the results already written under OUT/<student>/result.json (no re-grading):
    rewrites each result.json and report.html and returns the merged results (the caller
    rewrites the gradebook and index from them). Validates first; raises GraderError listing
    every problem, writing nothing."""
    files = sorted(Path(out_dir).glob("*/result.json"))
    if not files:
        raise GraderError(f"no results under {out_dir} (OUT/<student>/result.json): grade first")
    results = [Result.read_json(f) for f in files]
    merged = merge_manual(results, csv_path)
    for file, result in zip(files, merged):
        result.write_json(file)
        write_report(result, file.parent)
    return merged


def merge_manual_scores(out_dir: Path, csv_path: Path) -> list[Result]:
    """`merge_manual_folder`, then the gradebooks and the class summary rebuilt from the merged
    results."""
    merged = merge_manual_folder(out_dir, csv_path)
    rebuild(out_dir)
    return merged


def write_manual_sheet(results: list[Result], out_dir: Path) -> Path | None:
    """OUT/manual.csv for the TA when any result has a written question (see write_manual_csv
    for the name it takes when the old one holds scores not merged yet); None otherwise."""
    if not any(q.manual for r in results for q in r.questions):
        return None
    return write_manual_csv(results, Path(out_dir) / "manual.csv")


def _would_lose(path: Path, results: list[Result]) -> bool:
    try:
        rows = read_manual_csv(path)
    except GraderError:
        return True  # not ours to judge: keep it
    have = {(r.submission, q.id): (q.points, q.comment) for r in results for q in r.questions if q.manual}
    for row in rows:
        if not (row.score or row.comment):
            continue
        points, comment = have.get((row.student, row.question), (None, ""))
        if _number(row.score) != points or row.comment != comment:
            return True
    return False


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
