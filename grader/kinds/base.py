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

from grader.kinds.tasks import Task, TaskOutput
from grader.rubric import CheckSpec


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
    # For the TA, never points: e.g. numerical fragility the handout does not grade. Each lands in
    # Result.flags prefixed with the check id (the report's flags box, the class summary).
    flags: list[str] = field(default_factory=list)
    # What a student may read of `message` when the check shows its outcome only: the kind's own
    # words for the mistake, without hidden inputs, expected or measured values. None: the kind
    # says nothing more (the page shows the outcome alone) unless Kind.safe_messages.
    safe_message: str | None = None

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
    # Decides `reference` per check instead (a generic kind compares with the reference only
    # when the rubric asks it to, so its public checks need no reference in a student kit).
    uses_reference: Callable[[CheckSpec], bool] | None = None
    probe: str = ""  # the probe module its tasks run in; "" = the rubric's own probe
    # Tasks run on the *reference* with inputs taken from the student's outputs (e.g. fitted
    # parameters evaluated by the reference's network); their outputs join `reference` in score.
    followup: Callable[[CheckSpec, Context, dict[str, TaskOutput]], list[Task]] | None = None
    # Its outcome's artifacts are a training run's output (loss history, ...): the report draws
    # their curves as soon as that task ends, while the probe's later tasks run.
    curves: bool = False
    # Its messages name no hidden input and no expected or reference value whatever the check's
    # details (they were written for hidden checks): a student may read them whole.
    safe_messages: bool = False

    def needs_reference(self, spec: CheckSpec) -> bool:
        return self.uses_reference(spec) if self.uses_reference else self.reference


def rel_error(x: np.ndarray, y: np.ndarray, scale_floor: float = 0.0) -> float:
    """The handout's relative error: max |x - y| / max(1e-8, |x| + |y|). Infinite when the
    shapes differ or either side holds NaN or infinity: `error > tol` is False for NaN, so a NaN
    (e.g. a numerical gradient of a loss that returns NaN) would otherwise pass any tolerance.
    `scale_floor` > 0: each entry's denominator is at least that fraction of the arrays' largest
    |x| + |y| (see gradient_error)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("inf")
    return float(np.max(relative_errors(x, y, scale_floor), initial=0.0))


def relative_errors(x: np.ndarray, y: np.ndarray, scale_floor: float = 0.0) -> np.ndarray:
    """Entry by entry, what rel_error takes the maximum of (same shapes, finite values)."""
    magnitude = np.abs(x) + np.abs(y)
    floor = max(1e-8, scale_floor * float(np.max(magnitude, initial=0.0)))
    return np.abs(x - y) / np.maximum(floor, magnitude)


# An entry of a gradient is judged against at least this fraction of the array's largest entry:
# where the true gradient is near zero (GeLU' at x = -0.75), a correct finite-difference backward
# (error ~3e-8 of the array's scale) has an element-wise relative error near 1, and a TA reading the
# numbers would call it right. A mistake that only moves entries below 1e-2 of the scale, by less
# than the tolerance times that, changes nothing a gradient is used for.
GRADIENT_SCALE_FLOOR = 1e-2


def gradient_error(x: np.ndarray, y: np.ndarray) -> float:
    """rel_error for gradients, scale-aware: the same wherever the entries are of the array's
    size; an entry near zero is judged against GRADIENT_SCALE_FLOOR of the array's scale."""
    return rel_error(x, y, GRADIENT_SCALE_FLOOR)


def failed_task(output: TaskOutput, what: str) -> Outcome:
    """A probe task that crashed or timed out: the check records why, and earns nothing."""
    status = "timeout" if output.status == "timeout" else "error"
    reason = output.reason()
    if output.not_run:
        message = f"not run: {reason}"
    else:
        verb = "did not finish" if status == "timeout" else "raised an error"
        message = f"{what} {verb}: {reason}"
    safe = message.replace(reason, output.safe_reason())
    return Outcome(0.0, message, status=status, safe_message=safe,
                   details={"error": output.error[-1500:] or output.detail, "output": output.log[-1000:]})


def shape_problem(name: str, got: np.ndarray, expected_shape: tuple[int, ...]) -> str:
    if got.shape != tuple(expected_shape):
        return f"{name} has shape {got.shape}, expected {tuple(expected_shape)}"
    if not np.all(np.isfinite(got)):
        return f"{name} contains NaN or infinity"
    return ""


def diagnose(got, want, n: int | None = None) -> str:
    """A hint for a student when `got` should equal `want`: a flipped sign, a factor of N
    (averaging forgotten or done twice), another constant scale, or a shape problem."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        if got.size == want.size:
            return f"the values are right-sized but shaped {got.shape} instead of {want.shape} (transposed?)"
        return f"shape {got.shape}, expected {want.shape}"
    if not np.all(np.isfinite(got)):
        return "contains NaN or infinity (overflow? try subtracting the row maximum before exp)"
    denom = float(np.dot(want.ravel(), want.ravel()))
    if denom == 0.0:
        return "" if not np.any(got) else "should be zero"
    scale = float(np.dot(got.ravel(), want.ravel()) / denom)  # least-squares factor got ≈ scale * want
    fits = np.allclose(got, scale * want, rtol=1e-4, atol=1e-10 * max(1.0, float(np.max(np.abs(want)))))
    if not fits:
        # Not an exact multiple (e.g. a regularisation term was added after the mistake): the
        # same direction at about N times the size still points at the averaging.
        cosine = float(np.dot(got.ravel(), want.ravel()) / (np.linalg.norm(got) * np.sqrt(denom) + 1e-300))
        ratio = float(np.linalg.norm(got) / np.sqrt(denom))
        if n and cosine > 0.9 and abs(ratio * n - 1) < 0.25:
            return f"about {n} times too small: divided by N = {n} twice?"
        if n and cosine > 0.9 and abs(ratio / n - 1) < 0.25:
            return f"about {n} times too large: average over the N = {n} samples"
        return ""
    if abs(scale + 1) < 1e-3:
        return "the sign is flipped"
    if n and abs(scale - n) < 1e-3 * n:
        return f"{n} times too large: average over the N = {n} samples"
    if n and abs(scale - 1 / n) < 1e-3 / n:
        return f"{n} times too small: divided by N = {n} twice?"
    if abs(scale - 1) > 1e-3:
        return f"off by a constant factor of {scale:.4g}"
    return ""
