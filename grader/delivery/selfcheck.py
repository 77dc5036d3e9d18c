"""What a student sees from `mlp-grader check`: the public checks as a table with the measured
and the expected value, a hint per failure, the public total, and what is graded later."""
from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from grader.course import detect_assignment, find_course
from grader.errors import GraderError
from grader.files import load_toml
from grader.grading.engine import GradeOptions, Grader
from grader.results import Result
from grader.rubric import is_public, load_rubric

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


def graded_later(assignment: str) -> dict[str, float]:
    """Question id -> the points no self-check can decide: its hidden checks and hand-graded
    answers. Read from the rubric the check runs on: the TA's (hidden checks listed) or the
    kit's (hidden checks removed, their points kept as `hidden_points` by `release`)."""
    raw = load_toml(find_course().rubric(assignment))
    later = {}
    for q in raw.get("questions", []):
        if q.get("manual"):
            later[q["id"]] = float(q["points"])
        else:
            hidden = sum(c["points"] for c in q.get("checks", []) if not is_public(c))
            later[q["id"]] = float(q.get("hidden_points", 0)) + hidden
    return later


def later_message(points: float, manual: float) -> str:
    """The one line about what only the hand-in decides (never "all tests passed")."""
    if points <= 0:
        return ""
    parts = [f"hidden checks {points - manual:g}" if points - manual > 0 else "",
             f"hand-graded answers {manual:g}" if manual > 0 else ""]
    return (f"{points:g} points remain to be decided after hand-in "
            f"({', '.join(p for p in parts if p)}): passing here does not guarantee them.")


def render(result: Result, seconds: float, data_hint: str = "", folder: Path | None = None,
           questions: tuple[str, ...] = ()) -> str:
    asked = [q for q in result.questions if not questions or q.id in questions]
    rows = [c for q in asked for c in q.checks if c.status != "skipped"]
    width = max((len(c.id) for c in rows), default=10)
    where = Path(folder).resolve() if folder is not None else result.submission
    scope = f" of {', '.join(questions)}" if questions else ""
    lines = [f"{result.assignment}: {len(rows)} public checks{scope} on {where} (sandbox: {result.sandbox})", ""]
    lines += [f"note: {note}" for note in result.notes]
    for c in rows:
        lines.append(f"{STATUS_WORD.get(c.status, c.status.upper()):8s}{c.points:>5g}/{c.max_points:<4g} "
                     f"{c.id:{width}s}  {c.message}")
        measured, expected = c.details.get("got"), c.details.get("expected")
        if c.status != "passed" and (measured is not None or expected is not None):
            tolerance = c.details.get("tolerance")
            extra = f" (tolerance {tolerance:g})" if isinstance(tolerance, (int, float)) else ""
            lines.append(f"{'':{19 + width}s}measured: {_short(measured)}   expected: {_short(expected)}{extra}")
        if c.status in ("error", "timeout") and c.details.get("error"):
            lines += [f"{'':{19 + width}s}{line}" for line in student_traceback(c.details["error"])]
    earned = sum(c.points for c in rows)
    possible = sum(c.max_points for c in rows)
    lines += ["", f"public checks: {earned:g}/{possible:g} points ({seconds:.1f} s)"]
    training = [c for q in asked for c in q.checks if c.status == "skipped" and "--full" in c.message]
    if training:
        lines.append(f"not run here: {len(training)} training checks "
                     f"({sum(c.max_points for c in training):g} points): run with --full.")
    if data_hint and (training or not questions):
        lines.append(data_hint)
    later = graded_later(result.assignment)
    manual = sum(q.max_points for q in asked if q.manual)
    message = later_message(sum(later.get(q.id, 0.0) for q in asked), manual)
    if message:
        lines.append(message)
    return "\n".join(lines)


def payload(result: Result, seconds: float, questions: tuple[str, ...] = ()) -> dict:
    """What a notebook's check cell reads from `mlp-grader check --json`: the result, the
    points decided after hand-in per question, and the notebook the rubric names."""
    rubric = load_rubric(find_course().rubric(result.assignment))
    return {"result": result.to_dict(), "seconds": round(seconds, 3), "questions": list(questions),
            "graded_later": graded_later(result.assignment), "notebook": rubric.notebook,
            "owned": list(rubric.owned)}


def check_json(path: Path, assignment: str | None, options: GradeOptions) -> dict:
    """`payload` of one check, or {"error": message} for input it cannot check (an unknown
    question or assignment): what `check --json` prints and `serve` replies."""
    started = time.monotonic()
    try:
        result = check_submission(path, assignment, options)
    except GraderError as exc:
        return {"error": str(exc)}
    return payload(result, time.monotonic() - started, options.questions)


def serve(requests: TextIO, replies: TextIO, options: GradeOptions) -> None:
    """Checks on request, for a notebook's check cells: one JSON object per line in
    ({"id", "folder", "assignment", "question"}), one per line out (`check_json` with that id).
    The process stays up between cells, so a cell pays neither an interpreter's start nor the
    engine's imports; it never imports student code (each check is a fresh sandboxed probe), so
    nothing carries over from one check to the next. Ends when `requests` closes."""
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        question = request.get("question")
        asked = replace(options, questions=(question,) if question else ())
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the replies only
            reply = check_json(Path(request["folder"]), request.get("assignment"), asked)
        replies.write(json.dumps({"id": request["id"], **reply}) + "\n")
        replies.flush()


def exit_status(result: Result) -> int:
    """0 when every public check that ran passed, 1 otherwise (usable in a student's own CI)."""
    ran = [c for c in result.checks() if c.status != "skipped"]
    return 0 if ran and all(c.status == "passed" for c in ran) else 1


# A frame of the grader's probe code (its copy in the probe's job folder), and a frame of the
# student's working copy (a temporary folder the grader made): the first is dropped, the second
# shown with the path the student knows.
PROBE_FRAME = re.compile(r'^  File ".*?/mlp-grader-job-[^/"]*/probe/[^"]*", line \d+')
WORK_PATH = re.compile(r'"[^"]*?/mlp-grader-[^/"]*/(?:[^/"]*/)*?work/')
TRACEBACK_LINES = 12


def student_traceback(text: str, limit: int = TRACEBACK_LINES) -> list[str]:
    """The last lines of a probe's traceback with the grader's own frames left out: the
    student's frames (paths relative to their folder) and the exception."""
    lines = text.rstrip().splitlines()
    kept, skipping = [], False
    for line in lines:
        if line.startswith("  File "):
            skipping = bool(PROBE_FRAME.match(line))
        elif not line.startswith("    "):
            skipping = False
        if not skipping and not line.startswith("Traceback (most recent call last)"):
            kept.append(WORK_PATH.sub('"', line))
    return kept[-limit:]


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_short(v)}" for k, v in value.items())
    return str(value)
