"""The results model: what a grading run produces, and its JSON form.

Everything a report, a gradebook or an LMS export shows is a view of a `Result`. The JSON
schema is documented in docs/result-schema.md; `Result.from_dict` reads it back so a
gradebook can be rebuilt from the per-submission files alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grader.files import atomic_write
from grader.rubric import LEGACY_VISIBILITY

STATUSES = ("passed", "partial", "failed", "error", "timeout", "skipped")
# 2: notebook fields (Result.flags, notebook, adjustments; QuestionResult.answer, answer_state,
# answer_cells, comment, flags). Version 1 files still read: every new field has a default.
# 3: CheckResult.visibility takes Gradescope's four levels (the older public/hidden are mapped
# on reading), detail_level, student_message, safe_message: what a student's page may show.
SCHEMA_VERSION = 3
ANSWER_STATES = ("answered", "empty", "placeholder", "missing", "no notebook")


def format_points(value: float | None) -> str:
    """Points as a TA reads them: at most two decimals, no trailing zeros (26.42, 34.33, 45)."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass
class CheckResult:
    id: str
    question: str
    title: str
    points: float
    max_points: float
    status: str
    message: str
    visibility: str = "visible"  # visible | after_due_date | after_published | hidden (the rubric's)
    # For the TA (and, for checks shown in full, the student): expected, got, tolerance, error text.
    details: dict[str, Any] = field(default_factory=dict)
    detail_level: str = "full"  # full | outcome: how much a student's page shows of a shown check
    student_message: str = ""  # the rubric's hint for a failed check
    # The part of `message` a student may read when only the outcome is shown (no hidden input,
    # no reference or expected value): the check kind decides; "" = the outcome alone.
    safe_message: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")
        if self.visibility == "public":  # the old name (`hidden` is mapped by Result.from_dict)
            self.visibility, self.detail_level = LEGACY_VISIBILITY["public"]

    @property
    def public(self) -> bool:
        return self.visibility == "visible" and self.detail_level == "full"


@dataclass
class QuestionResult:
    id: str
    title: str
    max_points: float
    manual: bool
    points: float | None  # None: to be graded by hand and not graded yet
    checks: list[CheckResult] = field(default_factory=list)
    model_answer: str = ""
    # Manual questions: the student's written answer as found in the notebook (TA-facing).
    answer: str = ""
    answer_state: str = ""  # one of ANSWER_STATES; "" for autograded questions
    answer_cells: list[int] = field(default_factory=list)  # 1-based notebook cell numbers
    comment: str = ""  # the TA's comment (merged from manual.csv)
    flags: list[str] = field(default_factory=list)  # grading aids, e.g. "does not mention sign(θ)"


@dataclass
class Result:
    submission: str
    assignment: str
    questions: list[QuestionResult]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    # sha256 over the files' paths and hashes (Submission.content_hash; a zip's own hash when it
    # could not be read): a batch re-run skips a submission whose result has the same one.
    content_hash: str = ""
    rubric_hash: str = ""
    grader_version: str = ""
    # sha256 of the grader's code, the assignment's reference and course files and the grading
    # options: a batch re-run regrades when any of them changed, even without a new version
    grading_hash: str = ""
    sandbox: str = ""
    sandbox_limitations: str = ""  # what the level used does not stop, in words
    dataset: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # problems with the submission as a whole
    figures: dict[str, str] = field(default_factory=dict)  # name -> file beside report.html
    error: str = ""  # set when the submission could not be graded at all
    # For the TA: what looks wrong beyond the checks (edited fixed cells, outputs the code does
    # not reproduce, hints on written answers). Flags never change points by themselves.
    flags: list[str] = field(default_factory=list)
    # The notebook step: file, status, messages, execution per cell, edited cells with diffs,
    # claimed-vs-reproduced numbers (see docs/result-schema.md).
    notebook: dict[str, Any] = field(default_factory=dict)
    # Deductions the rubric asks for (e.g. per edited fixed cell): {"reason": str, "points": -x}.
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    # The late policy's decision (grader/latework/decide.py): due, submitted, source, days,
    # bank_used, bank_left, fraction, rule, policy. Empty when the assignment has no policy.
    late: dict[str, Any] = field(default_factory=dict)
    # check id -> hash of its rubric entry (kind, points, tolerances, inputs): a diff tells a
    # check whose own entry changed from one a change elsewhere moved
    check_specs: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def adjustment_points(self) -> float:
        return sum(float(a.get("points", 0.0)) for a in self.adjustments)

    @property
    def autograded_points(self) -> float:
        earned = sum(q.points or 0.0 for q in self.questions if not q.manual)
        return max(0.0, earned + self.adjustment_points) if self.adjustments else earned

    @property
    def autograded_max(self) -> float:
        return sum(q.max_points for q in self.questions if not q.manual)

    @property
    def raw_points(self) -> float:
        """The total before the late penalty: the checks' and hand-graded points, adjustments included."""
        earned = sum(q.points or 0.0 for q in self.questions)
        return max(0.0, earned + self.adjustment_points) if self.adjustments else earned

    @property
    def late_fraction(self) -> float:
        return float(self.late.get("fraction") or 0.0)

    @property
    def late_penalty(self) -> float:
        """Points taken off the total for lateness (never off a check)."""
        return round(self.raw_points * self.late_fraction, 4)  # to the 4 decimals points have

    @property
    def total_points(self) -> float:
        return self.raw_points - self.late_penalty

    @property
    def final_autograded_points(self) -> float:
        """The autograded points after the late penalty (what Gradescope's total shows)."""
        return round(self.autograded_points * (1.0 - self.late_fraction), 4)

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions)

    def checks(self) -> list[CheckResult]:
        return [c for q in self.questions for c in q.checks]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["autograded_points"] = self.autograded_points
        data["autograded_max"] = self.autograded_max
        data["total_points"] = self.total_points
        if self.late:
            data["raw_points"] = self.raw_points
            data["late_penalty"] = self.late_penalty
        data["max_points"] = self.max_points
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known_q = QuestionResult.__dataclass_fields__
        # before version 3, `hidden` was today's after_published + outcome, not Gradescope's hidden
        legacy = data.get("schema_version", 1) < 3

        def check(c: dict[str, Any]) -> CheckResult:
            if legacy and c.get("visibility") in LEGACY_VISIBILITY:
                c = {**c, **dict(zip(("visibility", "detail_level"), LEGACY_VISIBILITY[c["visibility"]]))}
            return CheckResult(**c)

        fields["questions"] = [
            QuestionResult(
                **{
                    **{k: v for k, v in q.items() if k != "checks" and k in known_q},
                    "checks": [check(c) for c in q.get("checks", [])],
                }
            )
            for q in data.get("questions", [])
        ]
        return cls(**fields)

    def write_json(self, path: Path) -> None:
        """Write atomically, so an interrupted run never leaves half a result behind."""
        atomic_write(path, json.dumps(self.to_dict(), indent=2, allow_nan=False))

    @classmethod
    def read_json(cls, path: Path) -> "Result":
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
