"""One submission graded into its output folder, whatever happens: the unit of work of the local
pool and of a cluster worker.

`grade_entry` never raises for a bad submission (a row with the reason instead); it writes the
report first and result.json last, atomically, so a re-run trusts only complete results.
`grading_hash` and `reusable` decide whether an earlier result may be kept.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from grader import __version__
from grader.batching.layouts import Entry
from grader.batching.pool import run_pool
from grader.errors import GraderError, MachineBusy
from grader.files import atomic_write
from grader.grading.engine import Grader
from grader.reporting.report import write_report
from grader.results import QuestionResult, Result
from grader.submission import load_submission

PACKAGE = Path(__file__).resolve().parents[1]  # the grader's own code, hashed into grading_hash
# a re-run grades these again
RETRY_ERRORS = ("internal error", "the grading worker", MachineBusy.PREFIX)


def reusable(grader: Grader, entry: Entry, out: Path, any_sandbox: bool = False) -> Result | None:
    """The earlier result in `out` when it was made from the same files with the same rubric,
    grader version and code, dataset and sandbox level (its report is re-rendered if it went
    missing). `any_sandbox`: on a cluster with no --sandbox each worker uses the strongest level
    its node offers, which the driver cannot know: the level the result names is kept."""
    try:
        previous = Result.read_json(out / "result.json")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    same = (bool(entry.content_hash) and previous.content_hash == entry.content_hash
            and previous.rubric_hash == grader.rubric.sha256 and previous.grader_version == __version__
            and previous.grading_hash == grading_hash(grader)
            and previous.assignment == grader.rubric.assignment and previous.submission == entry.name)
    if previous.error:
        same = same and not previous.error.startswith(RETRY_ERRORS)
    else:
        same = same and (any_sandbox or previous.sandbox == grader.sandbox.name) and (
            grader.dataset is None or previous.dataset == grader.dataset.description)
    if not same:
        return None
    if not (out / "report.html").is_file():
        write_report(previous, out)
    return previous


def grade_one(grader: Grader, folder: Path, out: Path | None) -> Result:
    """One submission folder, no layout handling (the student self-check, the Gradescope run).
    Graded in a forked worker (see grader/batching/folder.py): this process always has a result to return."""
    entry = Entry(folder.name, folder, "folder")
    try:
        entry.content_hash = load_submission(folder).content_hash
    except GraderError as exc:
        entry.error = str(exc)
    got: list[Result] = []

    def lost(_: int, reason: str) -> Result:
        result = ungradable(grader, entry, reason)
        if out is not None:
            write_result(result, out)
        return result

    run_pool(1, 1, lambda _: grade_entry(grader, entry, out), lambda _, result: got.append(result), lost)
    return got[0]


def grade_entry(grader: Grader, entry: Entry, out: Path | None) -> Result:
    """Never raises for a bad submission: a submission that cannot be graded becomes a result
    with `error` set and zero points, so a batch always finishes. Written to `out` as soon as
    it is done: report.html first, result.json last and atomically (a re-run trusts only a
    complete result.json)."""
    if entry.error:
        result = ungradable(grader, entry, entry.error)
    else:
        try:
            result = grader.grade(entry.path, out_dir=out)
            result.notes = entry.notes + result.notes + _provided_notes(grader, result)
        except GraderError as exc:
            result = ungradable(grader, entry, str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken submission must not stop a batch
            result = ungradable(grader, entry, f"internal error while grading: {type(exc).__name__}: {exc}")
        result.submission = entry.name
        result.content_hash = entry.content_hash
    result.grading_hash = grading_hash(grader)
    result.late = dict(entry.late)
    result.check_specs = check_specs(grader)
    if out is not None:
        write_result(result, out)
    return result


def write_result(result: Result, out: Path) -> None:
    write_report(result, out)
    result.write_json(out / "result.json")


def grading_hash(grader: Grader) -> str:
    """The grader's own code, the assignment's reference and course files, and the options that
    change outcomes (time limits, notebook execution, ...), hashed: a version number alone
    would let a re-run keep results that a fixed check, probe or reference would now score
    differently. Sandbox and dataset are compared on their own (by name and description)."""
    options = {k: v for k, v in dataclasses.asdict(grader.options).items()
               if k not in ("sandbox", "dataset", "data_dir", "download", "runner")}  # runner: same points
    code = _tree_hash((PACKAGE, "*.py"), (grader.course.reference(grader.rubric.assignment), "*"),
                      *((path, "") for path in grader.provided_files().values()))
    return hashlib.sha256(f"{code}\0{sorted(options.items())!r}".encode()).hexdigest()


def check_specs(grader: Grader) -> dict[str, str]:
    """Each check's rubric entry, hashed (Result.check_specs)."""
    return {c.id: hashlib.sha256(json.dumps(dataclasses.asdict(c), sort_keys=True, default=str).encode()).hexdigest()[:16]
            for c in grader.rubric.checks()}


@functools.cache
def _tree_hash(*trees: tuple[Path, str]) -> str:
    digest = hashlib.sha256()
    for root, pattern in trees:
        files = sorted(root.rglob(pattern)) if pattern else [root]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(root).as_posix() if pattern else path.name  # not where the checkout lives
                digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _provided_notes(grader: Grader, result: Result) -> list[str]:
    """Course files the student handed in changed: graded with the course's copy, said so."""
    notes = []
    for rel, trusted in grader.provided_files().items():
        if rel in result.files and trusted.is_file() and \
                result.files[rel] != hashlib.sha256(trusted.read_bytes()).hexdigest():
            notes.append(f"{rel} differs from the course's copy: the grader used the course's")
    return notes


def ungradable(grader: Grader, entry: Entry, reason: str) -> Result:
    questions = [QuestionResult(q.id, q.title, q.points, q.manual, None if q.manual else 0.0,
                                model_answer=q.model_answer) for q in grader.rubric.questions]
    return Result(submission=entry.name, assignment=grader.rubric.assignment, questions=questions,
                  content_hash=entry.content_hash, rubric_hash=grader.rubric.sha256, grader_version=__version__,
                  sandbox=grader.sandbox.name, sandbox_limitations=grader.sandbox.limitations,
                  notes=list(entry.notes), error=reason, late=dict(entry.late), check_specs=check_specs(grader))


def write_files(files: dict[str, bytes], out: Path) -> None:
    """Files a cluster worker made (figures, the executed notebook), written under `out`."""
    for rel, data in files.items():
        target = out / rel
        if out.resolve() not in target.resolve().parents:
            continue  # our own worker code never sends one; a path outside is dropped, not followed
        atomic_write(target, data)
