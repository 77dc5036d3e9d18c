"""The library's public surface: everything the command line, the Docker entry point, the
Gradescope run and the student self-check do, as functions. The CLI only parses, calls these
and prints.

Each function imports the subsystem it drives when it is called: `check_submission` on a
student's machine must not import (nor need the packages of) batch grading, notebooks, reports
or Gradescope. The names in `__all__` are the stable API; the subpackages behind them
(grading, notebooks, batching, reporting, delivery) are free to change.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from grader.batching.cluster_config import KINDS as CLUSTER_KINDS, ClusterSpec, load_cluster_config
from grader.course import detect_assignment, find_course
from grader.errors import DataUnavailable, GraderError, RubricError
from grader.grading.engine import GradeOptions
from grader.results import CheckResult, QuestionResult, Result, format_points

if TYPE_CHECKING:
    from grader.batching.folder import BatchSummary, Progress
    from grader.reporting.diff import RunDiff
    from grader.delivery.feedback import FeedbackRun
    from grader.delivery.release import Kit
    from grader.delivery.template import TemplateStatus
    from grader.sandbox.levels import DoctorRow

__all__ = [
    # results and options
    "CheckResult", "ClusterSpec", "CLUSTER_KINDS", "GradeOptions", "QuestionResult", "Result", "format_points",
    # errors
    "DataUnavailable", "GraderError", "RubricError",
    # grading
    "check_exit_status", "check_json", "check_payload", "check_report", "check_submission", "default_jobs", "detect_assignment",
    "grade_folder", "grade_submission", "load_cluster_config", "serve_checks",
    # after grading
    "check_manual_sheet", "diff_runs", "merge_manual_scores", "rebuild_summary", "write_feedback",
    "write_manual_sheet",
    # course material and delivery
    "assign", "build_autograder", "build_kit", "fetch_dataset", "run_autograder",
    # the sandbox
    "choose_sandbox", "sandbox_doctor",
]

def grade_submission(path: Path, assignment: str | None = None, options: GradeOptions = GradeOptions(),
                     out_dir: Path | None = None) -> Result:
    """Grade one submission folder and return its Result (never raises for a bad submission:
    the Result's `error` says why it could not be graded).

    `assignment`: detected from the files when None. `options`: sandbox level, dataset, time
    scale, notebook execution (GradeOptions). `out_dir`: where report.html, result.json and the
    figures go (nothing is written when None)."""
    from grader.batching.jobs import grade_one
    from grader.grading.engine import Grader

    course = find_course()
    assignment = assignment or detect_assignment(Path(path), course)
    with Grader(assignment, options, course) as grader:
        return grade_one(grader, Path(path), out_dir)


def grade_folder(path: Path, out_dir: Path, assignment: str | None = None,
                 options: GradeOptions = GradeOptions(), progress: Progress | None = None,
                 on_warning: Callable[[str], None] | None = None, *, jobs: int | None = None,
                 force: bool = False, on_plan: Callable[[int, int, int], None] | None = None,
                 similarity: bool | None = None, boilerplate: tuple[Path, ...] = (),
                 cluster: ClusterSpec | None = None, policy: Path | None = None,
                 extensions: Path | None = None, submitted_at: Path | None = None, at: str | None = None,
                 late_day_bank: Path | None = None) -> BatchSummary:
    """Grade `path` into `out_dir`: OUT/<name>/result.json and report.html, OUT/gradebook.csv
    (gradebook-<assignment>.csv per assignment when the folder mixes them) and OUT/index.html.

    `path`: one submission, or a folder of them in any layout grader/batching/layouts.py reads
    (a folder or a .zip per student, a Canvas export).
    `assignment`: every submission graded as this one; None detects it per submission.
    `options`: see GradeOptions.
    `progress(done, total, name, elapsed_seconds)`: called after each submission.
    `on_warning(text)`: a line for the user (items that are not submissions, the dataset used).
    `jobs`: worker processes (default: the cores this process may use).
    `force`: regrade everything; otherwise a result.json that matches the submission's files,
    the rubric, the grader's code and options, the dataset and the sandbox is kept.
    `on_plan(to_grade, reused, workers)`: called once before grading starts.
    `similarity`: flag pairs of students with similar own code (default: on for more than one
    submission); `boilerplate`: folders of starter code left out of that comparison.
    `cluster`: grade on a Dask cluster instead of local workers (see load_cluster_config).
    Late work (docs/ta-guide.md, "Late work and extensions"): `policy`, a TOML course file whose
    [late] table overrides the rubric's; `extensions`, a CSV (student, due or extra_days,
    multiplier); `submitted_at`, a CSV (student, time); `at`, an ISO 8601 time: git clones are
    graded as of their last commit not after it; `late_day_bank`, the CSV of late days spent,
    read and written back. Any problem in them raises one GraderError naming the file and line
    before anything is graded or written.
    A result that is recomputed is first copied to OUT/history/<run>/ (OUT/history/index.json).

    Returns a grader.batching.folder.BatchSummary (results, reused count, timings)."""
    from grader.batching.folder import FolderRun, grade_folder as grade
    from grader.batching.late import LateOptions

    late = LateOptions(*(None if p is None else Path(p) for p in (policy, extensions, submitted_at)), at,
                       None if late_day_bank is None else Path(late_day_bank))
    return grade(FolderRun(path, out_dir, assignment, options, progress, on_warning, jobs, force, on_plan,
                           similarity, tuple(boilerplate), cluster, late))


def default_jobs() -> int:
    """The cores this process may use: the default number of grading workers."""
    from grader.batching.pool import default_jobs as jobs

    return jobs()


def check_submission(path: Path, assignment: str | None = None,
                     options: GradeOptions = GradeOptions(public_only=True, skip_data=True, execute="none")
                     ) -> Result:
    """The student self-check: the public checks of one folder (hidden checks are skipped, the
    dataset is not loaded unless `options.skip_data` is False). Imports only the engine and the
    probes, so the student kit needs none of the TA's packages."""
    from grader.delivery.selfcheck import check_submission as check

    return check(path, assignment, options)


def check_report(result: Result, seconds: float, data_hint: str = "", folder: Path | None = None,
                 questions: tuple[str, ...] = ()) -> str:
    """The self-check's table as text: each public check's outcome with the measured and the
    expected value, a hint per failure, the public total and what is graded later."""
    from grader.delivery.selfcheck import render

    return render(result, seconds, data_hint, folder, questions)


def check_payload(result: Result, seconds: float, questions: tuple[str, ...] = ()) -> dict:
    """The self-check as JSON-ready data (`mlp-grader check --json`): what a notebook's check
    cell shows, read from a separate process so that it never sees the kernel's objects."""
    from grader.delivery.selfcheck import payload

    return payload(result, seconds, questions)


def check_json(path: Path, assignment: str | None, options: GradeOptions) -> dict:
    """`check_payload` of one self-check, or {"error": message} for input it cannot check."""
    from grader.delivery.selfcheck import check_json as run

    return run(path, assignment, options)


def serve_checks(requests, replies, options: GradeOptions) -> None:
    """Self-checks on request, one JSON line in and one out, until `requests` closes: what a
    notebook's check cells talk to (grader/delivery/checkcell.py)."""
    from grader.delivery.selfcheck import serve

    serve(requests, replies, options)


def check_exit_status(result: Result) -> int:
    """0 when every public check that ran passed, 1 otherwise (usable in a student's own CI)."""
    from grader.delivery.selfcheck import exit_status

    return exit_status(result)


def rebuild_summary(out_dir: Path) -> list[Result]:
    """Rewrite the gradebooks and index.html of OUT from its result.json files alone (after an
    interrupted batch, or results edited by hand); returns the results it read."""
    from grader.reporting.summary import rebuild

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise GraderError(f"{out_dir} is not a folder of graded results" if out_dir.exists()
                          else f"no such folder: {out_dir}")
    results = rebuild(out_dir)
    if not results:
        raise GraderError(f"no result.json files under {out_dir}")
    return results


def diff_runs(old: Path, new: Path, out_dir: Path | None = None) -> RunDiff:
    """What changed between two gradings (two OUT folders, or OUT and OUT/history/<run>): per
    changed student the totals, the changed checks and why; writes diff.html and diff.csv into
    `out_dir` (default: NEW) and returns the RunDiff (its `describe()`: the lines the CLI prints)."""
    from grader.reporting.diff import diff_runs as compare, write_diff

    for folder in (old, new):
        if not Path(folder).is_dir():
            raise GraderError(f"{folder} is not a folder of graded results" if Path(folder).exists()
                              else f"no such folder: {folder}")
    found = compare(Path(old), Path(new))
    write_diff(found, Path(out_dir) if out_dir is not None else Path(new))
    return found


def check_manual_sheet(csv_path: Path) -> None:
    """Read a TA's manual.csv once, so an unusable file fails before any grading starts."""
    from grader.reporting.manual import read_manual_csv

    read_manual_csv(csv_path)


def merge_manual_scores(out_dir: Path, csv_path: Path) -> list[Result]:
    """Merge the TA's scores and comments for the written questions (a filled-in manual.csv)
    into OUT's results, without regrading, and rebuild the gradebooks and the summary.
    Validates first: any problem raises one GraderError that lists them all, and nothing is
    written."""
    from grader.reporting.manual import merge_manual_scores as merge

    return merge(out_dir, csv_path)


def write_manual_sheet(results: list[Result], out_dir: Path) -> Path | None:
    """OUT/manual.csv, a row per student and written question for the TA to fill in (None when
    no question is graded by hand). A sheet holding scores not merged yet is never overwritten:
    the new one then gets another name, which is returned."""
    from grader.reporting.manual import write_manual_sheet as write

    return write(results, out_dir)


def write_feedback(out_dir: Path, to: Path, stage: str = "published", model_answers: bool = False) -> FeedbackRun:
    """A self-contained feedback page per student of OUT (no regrading) in the folder `to`:
    what the rubric's visibility lets a student see at `stage` (before-due, after-due,
    published), the TA's scores and comments of OUT/manual.csv, the model answers only when
    published and asked for; index.csv (student, file, total) and, for a batch graded from a
    Canvas export, canvas-feedback.zip for Canvas's "Re-Upload Submissions". All pages appear at
    once or none does."""
    from grader.delivery.feedback import write_feedback as write

    return write(out_dir, to, stage, model_answers)


def assign(assignment: str | None = None, check: bool = False) -> list[TemplateStatus]:
    """Generate student_template/<assignment> from reference/<assignment> by stripping the
    marked solution regions (every assignment when None); with `check`, write nothing and list
    how the committed template differs."""
    from grader.delivery.template import assign as generate

    return generate(find_course(), assignment, check)


def build_kit(assignment: str, out: Path) -> Kit:
    """The student kit in the new folder `out`: the template, the course files and an
    installable self-check with the public checks only."""
    from grader.delivery.release import build_kit as build

    return build(assignment, out)


def build_autograder(assignment: str, out: Path, dataset: str | None = None, data_dir: Path | None = None,
                     sandbox: str | None = None, timeout_scale: float = 1.0, bake_data: bool = True) -> Path:
    """OUT/autograder-<assignment>.zip for Gradescope. `dataset`: the one to grade on (default:
    the rubric's real one); `bake_data`: put the dataset file from `data_dir` into the zip
    (otherwise setup.sh downloads it); `sandbox`: the level on Gradescope (default: the
    strongest there)."""
    from grader.delivery.gradescope import build_autograder as build

    return build(assignment, out, dataset, data_dir, sandbox, timeout_scale, bake_data=bake_data)


def run_autograder(root: Path | None = None) -> dict:
    """What the zip's run_autograder calls on Gradescope: grade ROOT/submission and write
    ROOT/results/results.json (ROOT: $MLP_GRADER_AUTOGRADER_ROOT or /autograder). Returns the
    results.json payload; whatever goes wrong ends in a results.json that says so."""
    from grader.delivery.gradescope import run_autograder as run

    return run(root)


def fetch_dataset(name: str, data_dir: Path | None = None) -> str:
    """Download `name` into the data folder when it is not there yet (MNIST from OpenML,
    CIFAR-100 from its official archive) and load it once to check it; returns its description."""
    from grader.data import DEFAULT_DATA_DIR, LOADERS

    if name not in LOADERS:
        raise GraderError(f"unknown dataset {name!r}; choose from {', '.join(LOADERS)}")
    return LOADERS[name](Path(data_dir) if data_dir else DEFAULT_DATA_DIR, True).description


def choose_sandbox(name: str | None = None):
    """The named sandbox level, or the strongest one that works here (never `none`); raises
    GraderError when the named one is unknown or does not work here."""
    from grader.sandbox import choose_sandbox as choose

    return choose(name)


def sandbox_doctor() -> list[DoctorRow]:
    """One row per sandbox level, strongest first: does it work here, what it stops, and how
    to make it work when it does not."""
    from grader.sandbox import doctor

    return doctor()
