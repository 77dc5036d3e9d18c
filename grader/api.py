"""The library entry points: grade one submission or a folder of them and write the results.
The CLI (and later the Docker entry point and the student self-check) only call these."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .course import CourseDir, find_course
from .engine import GradeOptions, Grader
from .errors import GraderError
from .report import safe_name, write_gradebook, write_index, write_report
from .results import QuestionResult, Result
from .rubric import load_rubric
from .submission import discover, looks_like_submission

Progress = Callable[[int, int, str, float], None]  # done, total, submission name, elapsed seconds


@dataclass
class BatchSummary:
    results: list[Result] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.error]


def detect_assignment(path: Path, course: CourseDir) -> str:
    """The assignment whose identifying files the submission (or its first sub-folder) has."""
    candidates = [path] + (sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else [])
    for candidate in candidates:
        found = _assignment_of(candidate, course)
        if found:
            return found
    raise GraderError(f"cannot tell which assignment {path} is; pass --assignment "
                      f"({', '.join(course.assignments())})")


def _assignment_of(path: Path, course: CourseDir) -> str | None:
    for name in course.assignments():
        if looks_like_submission(path, load_rubric(course.rubric(name)).detect):
            return name
    return None


def grade_submission(path: Path, assignment: str | None = None, options: GradeOptions = GradeOptions(),
                     out_dir: Path | None = None) -> Result:
    course = find_course()
    assignment = assignment or detect_assignment(Path(path), course)
    with Grader(assignment, options, course) as grader:
        return _grade_one(grader, Path(path), out_dir)


def grade_folder(path: Path, out_dir: Path, assignment: str | None = None,
                 options: GradeOptions = GradeOptions(), progress: Progress | None = None,
                 on_warning: Callable[[str], None] | None = None) -> BatchSummary:
    """Grade `path` (one submission, or a folder with one sub-folder per student) into `out_dir`:
    OUT/<name>/result.json and report.html, OUT/gradebook.csv (one per assignment when the
    folder mixes assignments: gradebook-<assignment>.csv) and OUT/index.html."""
    started = time.monotonic()
    path, out_dir = Path(path), Path(out_dir)
    if not path.exists():
        raise GraderError(f"no such file or folder: {path}")
    course = find_course()
    groups = _group_by_assignment(path, course, assignment)
    total = sum(len(folders) for folders in groups.values())
    summary = BatchSummary(out_dir=out_dir)
    for name, folders in groups.items():
        with Grader(name, options, course) as grader:
            _ = grader.dataset  # load once up front: a missing dataset fails before any grading
            if grader.dataset_warning and on_warning:
                on_warning(f"{name}: {grader.dataset_warning}")
            for folder in folders:
                summary.results.append(_grade_one(grader, folder, out_dir / safe_name(folder.name)))
                if progress:
                    progress(len(summary.results), total, folder.name, time.monotonic() - started)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in groups:
        book = "gradebook.csv" if len(groups) == 1 else f"gradebook-{name}.csv"
        write_gradebook([r for r in summary.results if r.assignment == name], out_dir / book)
    write_index(summary.results, out_dir, f"{', '.join(groups)}: {len(summary.results)} submissions")
    summary.seconds = time.monotonic() - started
    return summary


def _group_by_assignment(path: Path, course: CourseDir, assignment: str | None) -> dict[str, list[Path]]:
    """Submissions per assignment. A folder whose files name no assignment (nothing handed in,
    files misnamed) is graded as the assignment most of the class handed in, so it gets a row."""
    if assignment:
        if assignment not in course.assignments():
            raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(course.assignments())}")
        markers = load_rubric(course.rubric(assignment)).detect
        return {assignment: discover(path, markers)}
    markers = tuple(m for name in course.assignments() for m in load_rubric(course.rubric(name)).detect)
    folders = discover(path, markers)
    detected = {folder: _assignment_of(folder, course) for folder in folders}
    known = [a for a in detected.values() if a]
    if not known:
        raise GraderError(f"cannot tell which assignment {path} is; pass --assignment "
                          f"({', '.join(course.assignments())})")
    majority = max(set(known), key=known.count)
    groups: dict[str, list[Path]] = {}
    for folder, name in detected.items():
        groups.setdefault(name or majority, []).append(folder)
    return groups


def _grade_one(grader: Grader, folder: Path, out: Path | None) -> Result:
    """Never raises for a bad submission: a submission that cannot be graded becomes a result
    with `error` set and zero points, so a batch always finishes."""
    try:
        result = grader.grade(folder, out_dir=out)
    except GraderError as exc:
        result = _ungradable(grader, folder, str(exc))
    except Exception as exc:  # noqa: BLE001 - one broken submission must not stop a batch
        result = _ungradable(grader, folder, f"internal error while grading: {type(exc).__name__}: {exc}")
    if out is not None:
        result.write_json(out / "result.json")
        write_report(result, out)
    return result


def _ungradable(grader: Grader, folder: Path, reason: str) -> Result:
    questions = [QuestionResult(q.id, q.title, q.points, q.manual, None if q.manual else 0.0,
                                model_answer=q.model_answer) for q in grader.rubric.questions]
    return Result(submission=folder.name, assignment=grader.rubric.assignment, questions=questions,
                  rubric_hash=grader.rubric.sha256, sandbox=grader.sandbox.name, error=reason)
