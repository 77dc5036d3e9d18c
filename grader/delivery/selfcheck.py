"""What a student sees from `mlp-grader check`: the public checks as a table with the measured
and the expected value, a hint per failure, the public total, and what is graded later."""
from __future__ import annotations

from pathlib import Path

from grader.course import detect_assignment, find_course
from grader.errors import GraderError
from grader.grading.engine import GradeOptions, Grader
from grader.results import Result

STATUS_WORD = {"passed": "PASS", "partial": "PARTIAL", "failed": "FAIL", "error": "ERROR", "timeout": "TIMEOUT"}


def check_submission(path: Path, assignment: str | None = None,
                     options: GradeOptions = GradeOptions(public_only=True, skip_data=True, execute="none")) -> Result:
    """The public checks of one folder, for its author. Only the engine and the probes: nothing
    of batch grading, notebooks, reports or Gradescope is imported, so the student kit needs
    none of their packages. A folder that cannot be checked gives a Result with `error` set."""
    folder = Path(path).resolve()  # `.` has no name; the header shows where it looked
    course = find_course()
    assignment = assignment or detect_assignment(folder, course)
    with Grader(assignment, options, course) as grader:
        try:
            return grader.grade(folder)
        except GraderError as exc:
            return Result(submission=str(folder), assignment=assignment, questions=[], error=str(exc),
                          sandbox=grader.sandbox.name)


def render(result: Result, seconds: float, data_hint: str = "", folder: Path | None = None) -> str:
    rows = [c for c in result.checks() if c.status != "skipped"]
    width = max((len(c.id) for c in rows), default=10)
    where = Path(folder).resolve() if folder is not None else result.submission
    lines = [f"{result.assignment}: {len(rows)} public checks on {where} (sandbox: {result.sandbox})", ""]
    lines += [f"note: {note}" for note in result.notes]
    for c in rows:
        lines.append(f"{STATUS_WORD.get(c.status, c.status.upper()):8s}{c.points:>5g}/{c.max_points:<4g} "
                     f"{c.id:{width}s}  {c.message}")
        measured, expected = c.details.get("got"), c.details.get("expected")
        if c.status != "passed" and (measured is not None or expected is not None):
            tolerance = c.details.get("tolerance")
            extra = f" (tolerance {tolerance:g})" if isinstance(tolerance, (int, float)) else ""
            lines.append(f"{'':{19 + width}s}measured: {_short(measured)}   expected: {_short(expected)}{extra}")
    earned = sum(c.points for c in rows)
    possible = sum(c.max_points for c in rows)
    lines += ["", f"public checks: {earned:g}/{possible:g} points ({seconds:.1f} s)"]
    skipped = [c for c in result.checks() if c.status == "skipped"]
    if skipped:
        lines.append(f"not run here: {len(skipped)} checks (hidden checks, graded later"
                     f"{'; training checks: run with --full' if any('--full' in c.message for c in skipped) else ''}).")
    if data_hint:
        lines.append(data_hint)
    manual = [q for q in result.questions if q.manual]
    if manual:
        lines.append(f"written answers ({sum(q.max_points for q in manual):g} points) are graded by hand later.")
    return "\n".join(lines)


def exit_status(result: Result) -> int:
    """0 when every public check that ran passed, 1 otherwise (usable in a student's own CI)."""
    ran = [c for c in result.checks() if c.status != "skipped"]
    return 0 if ran and all(c.status == "passed" for c in ran) else 1


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)
