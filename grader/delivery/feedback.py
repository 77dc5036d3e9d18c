"""Feedback pages for students: one self-contained HTML page per student, from the results
already graded (OUT/<student>/result.json and OUT/manual.csv; nothing is regraded).

What a page may show is decided here, on the data, before anything is rendered: `student_view`
turns a Result into a StudentPage holding only what the student may see at the stage asked
for, and the template is given that page and nothing else, so it cannot print what it never
received. Per check, the rubric's visibility decides from which stage it is shown
(`visible`: always, `after_due_date`: from after-due on, `after_published`: once published,
`hidden`: never) and its details how much (`full`: the whole message with the expected and
measured values; `outcome`: title, points, pass/fail and the part of the message its kind calls
safe). Never on a page: other students, the TA's flags and notes, the notebook's execution
details, tracebacks and paths of the grading machine, and the model answers unless asked for
(published stage only).

Three destinations (see docs/ta-guide.md, "Returning feedback"): DIR/<student>.html with
DIR/index.csv (student, file, total) for a mail merge; for a batch graded from a Canvas export,
DIR/canvas-feedback.zip with each page named as the export named the student's files, for
Canvas's "Re-Upload Submissions"; Gradescope's results.json uses `student_text` per test.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.files import SpreadsheetSafeWriter
from grader.reporting.gradebooks import read_canvas_names, read_identities
from grader.results import SCHEMA_VERSION, CheckResult, Result

STAGES = ("before-due", "after-due", "published")
SHOWN_FROM = {"visible": 0, "after_due_date": 1, "after_published": 2}  # index into STAGES; hidden: never
CANVAS_ZIP = "canvas-feedback.zip"
PNG = b"\x89PNG\r\n\x1a\n"
STATUS_WORDS = {"passed": "passed", "partial": "partly right", "failed": "failed", "error": "raised an error",
                "timeout": "ran out of time", "skipped": "not run"}


def shown_at(visibility: str, stage: str) -> bool:
    """Whether a check of this visibility is on a student's page at `stage`."""
    return visibility in SHOWN_FROM and SHOWN_FROM[visibility] <= STAGES.index(stage)


def student_text(check: CheckResult) -> str:
    """What a student reads about a check that is shown: its whole message when its details are
    full, else the part its kind calls safe; the rubric's hint follows a check not passed."""
    text = check.message if check.detail_level == "full" else check.safe_message
    if check.student_message and check.status != "passed":
        text = f"{text}\nHint: {check.student_message}" if text else f"Hint: {check.student_message}"
    return text


@dataclass
class ShownCheck:
    title: str
    points: float
    max_points: float
    status: str
    outcome: str  # the status in words
    text: str  # student_text, without the hint
    hint: str  # the rubric's student_message, on a check not passed
    expected: object = None  # full details only
    got: object = None
    tolerance: object = None


@dataclass
class ShownQuestion:
    id: str
    title: str
    max_points: float
    manual: bool
    points: float | None  # None: not shown at this stage (or not graded yet)
    points_max: float = 0.0  # what `points` is out of: the checks shown (the question's points once published)
    checks: list[ShownCheck] = field(default_factory=list)
    pending_checks: int = 0  # checks shown at a later stage
    pending_points: float = 0.0
    unseen_checks: int = 0  # `hidden` checks: never shown, their points count in the total
    unseen_points: float = 0.0
    unseen_max: float = 0.0
    answer: str = ""  # manual: the student's own written answer
    answer_state: str = ""
    comment: str = ""  # published: the TA's comment
    model_answer: str = ""  # published and asked for only


@dataclass
class StudentPage:
    """Everything one student's page shows at one stage, and nothing else."""
    student: str
    assignment: str
    stage: str
    questions: list[ShownQuestion]
    shown_points: float  # the checks (and, published, the written answers) shown
    shown_max: float
    total: float | None  # published: the total (hidden checks and deductions included)
    max_points: float
    pending_check_points: float  # still to be decided by checks shown at a later stage
    pending_manual_points: float  # still to be decided by hand (or shown once published)
    unseen_max: float  # published: points of the `hidden` checks (in the total, never itemised)
    deductions: list[tuple[str, float]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # caption, data: URI
    not_graded: bool = False  # the submission could not be graded automatically
    late_rule: str = ""  # published, under a late policy: the rule applied to the total, in one sentence

    @property
    def page_total(self) -> float:
        """The number index.csv lists: the total once published, before that the points shown."""
        return self.total if self.total is not None else self.shown_points


@dataclass
class FeedbackRun:
    """What `write_feedback` wrote."""
    folder: Path
    pages: dict[str, str]  # page file in folder (OUT's folder of the student + .html) -> student
    canvas_zip: Path | None = None
    not_in_canvas: list[str] = field(default_factory=list)  # graded, but the Canvas export does not name them
    manual_merged: bool = False  # OUT/manual.csv was read


def student_view(result: Result, stage: str = "published", model_answers: bool = False) -> StudentPage:
    """The part of `result` its student may see at `stage` (see the module docstring)."""
    if stage not in STAGES:
        raise GraderError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    published = stage == "published"
    questions, shown, shown_max, pending_checks, pending_manual, unseen = [], 0.0, 0.0, 0.0, 0.0, 0.0
    for q in result.questions:
        sq = ShownQuestion(q.id, q.title, q.max_points, q.manual, None)
        if q.manual:
            sq.answer, sq.answer_state = q.answer, q.answer_state
            if published and q.points is not None:
                sq.points, sq.comment = q.points, q.comment
                shown, shown_max = shown + q.points, shown_max + q.max_points
            else:
                pending_manual += q.max_points
            if published and model_answers:
                sq.model_answer = q.model_answer
        for c in q.checks:
            if shown_at(c.visibility, stage):
                sq.checks.append(_shown_check(c))
                shown, shown_max = shown + c.points, shown_max + c.max_points
            elif c.visibility == "hidden" and published:
                sq.unseen_checks += 1
                sq.unseen_points += c.points
                sq.unseen_max += c.max_points
            else:  # shown later; or `hidden`, whose points stay undecided until grades are published
                sq.pending_checks += 1
                sq.pending_points += c.max_points
        if not q.manual and published:  # every check but `hidden` ones is shown: the question's own points
            sq.points, sq.points_max = q.points, q.max_points
        elif sq.checks:
            sq.points, sq.points_max = sum(c.points for c in sq.checks), sum(c.max_points for c in sq.checks)
        elif q.manual and sq.points is not None:
            sq.points_max = q.max_points
        pending_checks += sq.pending_points
        unseen += sq.unseen_max
        questions.append(sq)
    return StudentPage(
        student=result.submission, assignment=result.assignment, stage=stage, questions=questions,
        shown_points=round(shown, 4), shown_max=shown_max,
        total=round(result.total_points, 4) if published else None, max_points=result.max_points,
        pending_check_points=pending_checks, pending_manual_points=pending_manual, unseen_max=unseen,
        deductions=[(str(a.get("reason", "")), float(a.get("points", 0.0))) for a in result.adjustments]
        if published else [],
        not_graded=bool(result.error),
        late_rule=str(result.late.get("rule", "")) if published and result.late else "")


def _shown_check(c: CheckResult) -> ShownCheck:
    full = c.detail_level == "full"
    text = c.message if full else c.safe_message
    return ShownCheck(c.title, c.points, c.max_points, c.status, STATUS_WORDS.get(c.status, c.status), text,
                      c.student_message if c.status != "passed" else "",
                      *((c.details.get("expected"), c.details.get("got"), c.details.get("tolerance")) if full else ()))


def render_page(page: StudentPage) -> str:
    from grader.reporting.render import ENV  # here: Gradescope's run imports student_text only

    return ENV.get_template("feedback.html.j2").render(page=page)


# ---------------------------------------------------------------- reading OUT

def read_results(out_dir: Path) -> dict[str, Result]:
    """OUT/<folder>/result.json by folder, every file checked: a folder that is no grading
    output, an unreadable file or one of an older schema is a one-line GraderError."""
    out_dir = Path(out_dir)
    files = sorted(out_dir.glob("*/result.json")) if out_dir.is_dir() else []
    if not files:
        raise GraderError(f"{out_dir} is not a grading output (no {out_dir.name}/<student>/result.json): "
                          "run `mlp-grader grade SUBMISSIONS --out OUT` first")
    results = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            version = data.get("schema_version", 1) if isinstance(data, dict) else None
        except (OSError, ValueError) as exc:
            raise GraderError(f"{path}: not a readable result.json ({exc})") from None
        if version is None:
            raise GraderError(f"{path}: not a result.json (a JSON object is expected)")
        if version < SCHEMA_VERSION:
            raise GraderError(f"{path}: result.json of schema version {version}, older than the version "
                              f"{SCHEMA_VERSION} feedback pages need (what students may see of each check); "
                              "grade again with this grader (`mlp-grader grade` regrades it)")
        if version > SCHEMA_VERSION:
            raise GraderError(f"{path}: result.json of schema version {version}, newer than this grader's "
                              f"{SCHEMA_VERSION}: update mlp-grader")
        try:
            results[path.parent.name] = Result.from_dict(data)
        except (TypeError, ValueError, KeyError) as exc:
            raise GraderError(f"{path}: not a valid result.json ({exc})") from None
    return results


def with_manual_scores(results: dict[str, Result], out_dir: Path) -> tuple[dict[str, Result], bool]:
    """The TA's scores and comments of OUT/manual.csv merged in memory (checked as `merge`
    checks them: any problem is an error, nothing is half-merged); as they are without it."""
    from grader.reporting.manual import merge_manual

    sheet = Path(out_dir) / "manual.csv"
    if not sheet.is_file():
        return results, False
    merged = merge_manual(list(results.values()), sheet)
    return dict(zip(results, merged)), True


def embedded_figures(result: Result, folder: Path, page: StudentPage) -> list[tuple[str, str]]:
    """The figures of the checks shown in full on `page` (a figure is named after its check:
    "<check id>: training curves"), as data: URIs; a file that is not a PNG inside the
    student's own folder is left out."""
    full = {c.id for q in result.questions for c in q.checks
            if shown_at(c.visibility, page.stage) and c.detail_level == "full"}
    titles = {c.id: c.title for c in result.checks()}
    figures = []
    root = folder.resolve()
    for name, rel in result.figures.items():
        check_id, _, what = name.partition(": ")
        path = folder / rel
        if check_id not in full or path.is_symlink() or root not in path.resolve().parents or not path.is_file():
            continue
        data = path.read_bytes()
        if data.startswith(PNG):
            figures.append((f"{titles[check_id]}: {what}", "data:image/png;base64," + base64.b64encode(data).decode()))
    return figures


# ---------------------------------------------------------------- writing DIR

def write_feedback(out_dir: Path, to: Path, stage: str = "published", model_answers: bool = False) -> FeedbackRun:
    """A page per student of OUT in `to`, with index.csv and, for a Canvas batch, the re-upload
    zip. Everything is written in a scratch folder beside `to` that replaces it in one step:
    the pages appear all at once or not at all."""
    if stage not in STAGES:
        raise GraderError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    if model_answers and stage != "published":
        raise GraderError("model answers are shown at the published stage only (--stage published)")
    out_dir, to = Path(out_dir), Path(to)
    results, merged = with_manual_scores(read_results(out_dir), out_dir)
    _check_target(out_dir, to)
    pages: dict[str, StudentPage] = {}  # by OUT's folder, unique in the batch (two students may share a name)
    html: dict[str, str] = {}
    for folder_name, result in sorted(results.items()):
        page = student_view(result, stage, model_answers)
        page.figures = embedded_figures(result, out_dir / folder_name, page)
        pages[folder_name], html[folder_name] = page, render_page(page)
    to.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{to.name}.", dir=to.parent))
    try:
        for folder_name, text in html.items():
            (scratch / f"{folder_name}.html").write_text(text, encoding="utf-8")
        _write_index(scratch / "index.csv", pages)
        canvas_zip, not_in_canvas = _write_canvas_zip(scratch / CANVAS_ZIP, out_dir, pages, html)
        _replace_folder(scratch, to)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FeedbackRun(to, {f"{folder_name}.html": page.student for folder_name, page in pages.items()},
                       to / CANVAS_ZIP if canvas_zip else None, not_in_canvas, merged)


def _check_target(out_dir: Path, to: Path) -> None:
    """`to` is replaced as a whole: never the grading output, a folder that holds it or one of
    its folders, nor an existing folder with anything but an earlier run's pages in it."""
    out, target = out_dir.resolve(), to.resolve()
    if target == out or target in out.parents or out in target.parents:
        raise GraderError(f"--to {to} overlaps the grading output {out_dir}: choose a folder outside it")
    if target.exists() and not target.is_dir():
        raise GraderError(f"--to {to} is a file, not a folder")
    if target.is_dir():
        strangers = [p.name for p in target.iterdir() if not (p.is_file() and p.suffix in (".html", ".csv", ".zip"))]
        if strangers or (any(target.iterdir()) and not (target / "index.csv").is_file()):
            found = ", ".join(strangers[:3]) or "no index.csv"
            raise GraderError(f"--to {to} exists and holds more than feedback pages ({found}): "
                              "choose a new folder or empty it")


def _write_index(path: Path, pages: dict[str, StudentPage]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(["student", "file", "total"])
        for folder_name, page in sorted(pages.items(), key=lambda kv: (kv[1].student, kv[0])):
            writer.writerow([page.student, f"{folder_name}.html", f"{page.page_total:g}"])


def _write_canvas_zip(path: Path, out_dir: Path, pages: dict[str, StudentPage],
                      html: dict[str, str]) -> tuple[bool, list[str]]:
    """Canvas's re-upload zip when the batch came from a Canvas export: each page named with
    the export's prefix of that student's files; students the export does not name are
    returned, not guessed."""
    prefixes = read_canvas_names(out_dir)
    if not prefixes:  # graded before the prefixes were recorded: the user id alone
        prefixes = {student: f"{student}_{uid}" for student, uid in read_identities(out_dir).items()}
    if not prefixes:
        return False, []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for folder_name, page in sorted(pages.items()):
            if page.student in prefixes:
                zf.writestr(f"{prefixes[page.student]}_feedback.html", html[folder_name])
    path.write_bytes(buffer.getvalue())
    return True, sorted(page.student for page in pages.values() if page.student not in prefixes)


def _replace_folder(new: Path, target: Path) -> None:
    """`new` becomes `target` by renames only: an earlier `target` is moved aside first and
    removed once the new one is in place (put back if that fails)."""
    new.chmod(0o755)
    if not target.exists():
        os.rename(new, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
