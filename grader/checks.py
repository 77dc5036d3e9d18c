"""What a check kind is: how it asks the probe for data, and how it scores that data.

Each assignment module registers its kinds in a plain dict (`KINDS`). A kind's `plan` returns
the probe tasks it needs (tasks with equal ids are run once and shared between checks); its
`score` turns the probe's data (and the reference's, when `reference` is set) into an Outcome.
Scoring happens only here, in the parent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .probe import Task, TaskOutput
from .rubric import CheckSpec


@dataclass
class Context:
    """What a check may know besides its own parameters."""

    dataset: Any = None  # grader.data.Dataset, or None when data checks are skipped
    thresholds: dict[str, Any] = field(default_factory=dict)
    submission: Any = None  # grader.submission.Submission: for values read from its notebook
    reference_dir: Any = None  # pathlib.Path of the reference solution (course-side inputs)
    cache: dict[str, Any] = field(default_factory=dict)  # per-submission memo for check kinds


@dataclass
class Outcome:
    fraction: float  # of the check's points earned, 0..1
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # derived from fraction unless set (error, timeout, skipped)
    artifacts: dict[str, np.ndarray] = field(default_factory=dict)  # data for the report's figures

    def resolved_status(self) -> str:
        if self.status:
            return self.status
        if self.fraction >= 1.0 - 1e-12:
            return "passed"
        return "partial" if self.fraction > 0 else "failed"


@dataclass(frozen=True)
class Kind:
    plan: Callable[[CheckSpec, Context], list[Task]]
    score: Callable[[CheckSpec, Context, dict[str, TaskOutput], dict[str, TaskOutput]], Outcome]
    reference: bool = False  # compares with the reference solution's outputs on the same tasks


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    """The handout's relative error: max |x - y| / max(1e-8, |x| + |y|)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def failed_task(output: TaskOutput, what: str) -> Outcome:
    """A probe task that crashed or timed out: the check records why, and earns nothing."""
    status = "timeout" if output.status == "timeout" else "error"
    reason = output.reason()
    if output.not_run:
        message = f"not run: {reason}"
    else:
        verb = "did not finish" if status == "timeout" else "raised an error"
        message = f"{what} {verb}: {reason}"
    return Outcome(0.0, message, status=status,
                   details={"error": output.error[-1500:] or output.detail, "output": output.log[-1000:]})


def shape_problem(name: str, got: np.ndarray, expected_shape: tuple[int, ...]) -> str:
    if got.shape != tuple(expected_shape):
        return f"{name} has shape {got.shape}, expected {tuple(expected_shape)}"
    if not np.all(np.isfinite(got)):
        return f"{name} contains NaN or infinity"
    return ""
