"""The results model: what a grading run produces, and its JSON form.

Everything a report, a gradebook or an LMS export shows is a view of a `Result`. The JSON
schema is documented in README.md ("result.json"); `Result.from_dict` reads it back so a
gradebook can be rebuilt from the per-submission files alone.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("passed", "partial", "failed", "error", "timeout", "skipped")
SCHEMA_VERSION = 1


@dataclass
class CheckResult:
    id: str
    question: str
    title: str
    points: float
    max_points: float
    status: str
    message: str
    visibility: str = "public"
    # For the TA (and, for public checks, the student): expected, got, tolerance, error text.
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")


@dataclass
class QuestionResult:
    id: str
    title: str
    max_points: float
    manual: bool
    points: float | None  # None: to be graded by hand and not graded yet
    checks: list[CheckResult] = field(default_factory=list)
    model_answer: str = ""


@dataclass
class Result:
    submission: str
    assignment: str
    questions: list[QuestionResult]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    rubric_hash: str = ""
    grader_version: str = ""
    sandbox: str = ""
    sandbox_limitations: str = ""  # what the level used does not stop, in words
    dataset: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # problems with the submission as a whole
    figures: dict[str, str] = field(default_factory=dict)  # name -> file beside report.html
    error: str = ""  # set when the submission could not be graded at all
    schema_version: int = SCHEMA_VERSION

    @property
    def autograded_points(self) -> float:
        return sum(q.points or 0.0 for q in self.questions if not q.manual)

    @property
    def autograded_max(self) -> float:
        return sum(q.max_points for q in self.questions if not q.manual)

    @property
    def total_points(self) -> float:
        return sum(q.points or 0.0 for q in self.questions)

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
        data["max_points"] = self.max_points
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["questions"] = [
            QuestionResult(
                **{
                    **{k: v for k, v in q.items() if k != "checks"},
                    "checks": [CheckResult(**c) for c in q.get("checks", [])],
                }
            )
            for q in data.get("questions", [])
        ]
        return cls(**fields)

    def write_json(self, path: Path) -> None:
        """Write atomically, so an interrupted run never leaves half a result behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def read_json(cls, path: Path) -> "Result":
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
