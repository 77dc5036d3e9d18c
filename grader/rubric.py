"""Rubric files: questions, points, checks, tolerances, visibility, data thresholds.

A rubric is TOML (see rubrics/pset4.toml for the documented format). Loading validates what a
typo would otherwise turn into a silently wrong grade: unknown check kinds, points that do not
add up, duplicate ids.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import RubricError
from grader.files import tomllib

# Gradescope's levels, by the stage from which a student sees the check: `visible` always,
# `after_due_date` from the after-due stage on, `after_published` once grades are published,
# `hidden` never (its points still count in the total).
VISIBILITIES = ("visible", "after_due_date", "after_published", "hidden")
# How much a shown check reveals: `full` (inputs, expected and measured values, the whole
# message) or `outcome` (title, points, pass/fail, the part of the message its kind calls safe).
DETAILS = ("full", "outcome")
# Rubrics written before the levels existed keep loading: public = visible + full (the student
# kit runs these), hidden = after_published + outcome. A rubric is read the old way when none of
# its checks names a new level or `details`; otherwise `hidden` is Gradescope's (never shown).
LEGACY_VISIBILITY = {"public": ("visible", "full"), "hidden": ("after_published", "outcome")}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    kind: str
    points: float
    visibility: str
    title: str
    params: dict[str, Any]
    needs_data: bool = False  # trains on the dataset: skipped by a quick self-check
    detail_level: str = "full"  # the rubric's `details`: one of DETAILS
    student_message: str = ""  # the course's hint for a failed check (never the answer)

    @property
    def public(self) -> bool:
        """Shown in full at every stage: the student kit and the self-check run these."""
        return self.visibility == "visible" and self.detail_level == "full"


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    points: float
    manual: bool
    model_answer: str = ""
    checks: tuple[CheckSpec, ...] = ()


@dataclass(frozen=True)
class Rubric:
    assignment: str
    title: str
    probe: str
    owned: tuple[str, ...]
    provided: tuple[str, ...]
    detect: tuple[str, ...]
    notebook: str
    questions: tuple[Question, ...]
    data: dict[str, Any]
    sha256: str
    total_points: float
    late: dict[str, Any] = field(default_factory=dict)  # the [late] table (grader/latework/policy.py)

    def checks(self) -> list[CheckSpec]:
        return [c for q in self.questions for c in q.checks]

    def thresholds(self, dataset: str) -> dict[str, Any]:
        try:
            return self.data["thresholds"][dataset]
        except KeyError:
            raise RubricError(f"rubric {self.assignment} has no thresholds for dataset {dataset!r}")


def load_rubric(path: Path) -> Rubric:
    if not path.is_file():
        raise RubricError(f"rubric file not found: {path}")
    raw_bytes = path.read_bytes()
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: not valid TOML: {exc}") from exc
    try:
        meta = raw["assignment"]
        levels = uses_levels([c for q in raw.get("questions", []) for c in q.get("checks", [])])
        questions = tuple(_question(q, levels) for q in raw.get("questions", []))
        rubric = Rubric(
            assignment=meta["id"],
            title=meta.get("title", meta["id"]),
            probe=meta.get("probe", meta["id"]),
            owned=tuple(meta.get("owned", [])),
            provided=tuple(meta.get("provided", [])),
            detect=tuple(meta.get("detect", meta.get("owned", []))),
            notebook=meta.get("notebook", ""),
            questions=questions,
            data=raw.get("data", {}),
            sha256=hashlib.sha256(raw_bytes).hexdigest(),
            total_points=float(meta["total_points"]),
            late=raw.get("late", {}),
        )
    except KeyError as exc:
        raise RubricError(f"{path}: missing required key {exc}") from exc
    _validate(rubric, path)
    return rubric


def _question(raw: dict[str, Any], levels: bool) -> Question:
    checks = tuple(_check(c, levels) for c in raw.get("checks", []))
    return Question(
        id=raw["id"],
        title=raw.get("title", raw["id"]),
        points=float(raw["points"]),
        manual=bool(raw.get("manual", False)),
        model_answer=raw.get("model_answer", ""),
        checks=checks,
    )


def uses_levels(checks: list[dict[str, Any]]) -> bool:
    """Whether a rubric's check tables use the visibility levels (else the old public/hidden)."""
    return any(c.get("visibility") in VISIBILITIES[:3] or "details" in c for c in checks)


def visibility_of(raw: dict[str, Any], levels: bool = True) -> tuple[str, str]:
    """(visibility, details) of a rubric's check table; `levels`: the rubric uses the levels
    (see uses_levels), else `hidden` is the old one (after_published + outcome). Without
    `details`, a visible check shows everything and any other shows its outcome only."""
    visibility = raw.get("visibility", "visible")
    if visibility == "public" or (visibility == "hidden" and not levels):
        visibility, legacy_details = LEGACY_VISIBILITY[visibility]
    else:
        legacy_details = ""
    return visibility, raw.get("details", legacy_details or ("full" if visibility == "visible" else "outcome"))


def is_public(raw: dict[str, Any]) -> bool:
    """A check table the student kit carries (visible + full), whichever names the rubric uses."""
    return visibility_of(raw) == ("visible", "full")


def _check(raw: dict[str, Any], levels: bool) -> CheckSpec:
    reserved = {"id", "kind", "points", "visibility", "details", "student_message", "title", "needs_data"}
    visibility, details = visibility_of(raw, levels)
    return CheckSpec(
        id=raw["id"],
        kind=raw["kind"],
        points=float(raw["points"]),
        visibility=visibility,
        title=raw.get("title", raw["id"]),
        params={k: v for k, v in raw.items() if k not in reserved},
        needs_data=bool(raw.get("needs_data", False)),
        detail_level=details,
        student_message=str(raw.get("student_message", "")),
    )


def _validate(rubric: Rubric, path: Path) -> None:
    problems: list[str] = []
    seen_q: set[str] = set()
    seen_c: set[str] = set()
    for q in rubric.questions:
        if q.id in seen_q:
            problems.append(f"duplicate question id {q.id}")
        seen_q.add(q.id)
        if q.manual and q.checks:
            problems.append(f"question {q.id} is manual but has checks")
        if not q.manual:
            check_sum = sum(c.points for c in q.checks)
            if abs(check_sum - q.points) > 1e-9:
                problems.append(f"question {q.id}: checks add up to {check_sum}, question has {q.points}")
        for c in q.checks:
            if c.id in seen_c:
                problems.append(f"duplicate check id {c.id}")
            seen_c.add(c.id)
            if c.visibility not in VISIBILITIES:
                problems.append(f"check {c.id}: visibility must be one of {VISIBILITIES} "
                                f"(or the older {tuple(LEGACY_VISIBILITY)})")
            if c.detail_level not in DETAILS:
                problems.append(f"check {c.id}: details must be one of {DETAILS}")
    total = sum(q.points for q in rubric.questions)
    if abs(total - rubric.total_points) > 1e-9:
        problems.append(f"questions add up to {total}, assignment.total_points is {rubric.total_points}")
    if problems:
        raise RubricError(f"{path}: " + "; ".join(problems))
