"""What the generic kinds share: the inputs a rubric gives or generates, the task that calls
the student's code, and the comparison of returned values (in the parent)."""
from __future__ import annotations

from typing import Any

import numpy as np

from grader.errors import RubricError
from grader.kinds.base import GRADIENT_SCALE_FLOOR, diagnose, gradient_error, rel_error, relative_errors
from grader.rubric import CheckSpec

PROBE = "generic"  # grader/probes/generic.py
ERRORS = ("relative", "gradient", "absolute")  # gradient: relative, judged against the array's scale near zero


def cases(spec: CheckSpec) -> list[dict[str, Any]]:
    """The check's cases: `cases = [{ seed = 1 }, ...]` (inputs drawn from `generate` with that
    seed, or literal per-case inputs), or one case with the literal `inputs`."""
    return list(spec.params.get("cases", [])) or [{}]


def case_inputs(spec: CheckSpec, case: dict[str, Any], names: list[str]) -> dict[str, np.ndarray]:
    """The arrays of one case, for the argument `names`: a literal from the case, else from
    `inputs`, else drawn from `generate` (in argument order, one generator per case)."""
    literal, generate = spec.params.get("inputs", {}), spec.params.get("generate", {})
    rng = np.random.default_rng(case["seed"]) if "seed" in case else None
    arrays = {}
    for name in names:
        if name in case:
            arrays[name] = np.asarray(case[name], dtype=np.float64)
        elif name in literal:
            arrays[name] = np.asarray(literal[name], dtype=np.float64)
        elif name in generate:
            if rng is None:
                raise RubricError(f"check {spec.id}: generated input {name!r} needs a seed in every case")
            arrays[name] = draw(rng, generate[name], f"check {spec.id}: generate.{name}")
        else:
            raise RubricError(f"check {spec.id}: argument {name!r} is in neither inputs, generate nor the case")
    return arrays


def draw(rng: np.random.Generator, how: dict[str, Any], where: str) -> np.ndarray:
    shape = tuple(how.get("shape", ()))
    if "normal" in how:
        mean, std = how["normal"]
        return rng.normal(mean, std, size=shape)
    if "uniform" in how:
        low, high = how["uniform"]
        return rng.uniform(low, high, size=shape)
    if "integers" in how:
        low, high = how["integers"]
        return rng.integers(low, high, size=shape)  # int64: labels index arrays
    raise RubricError(f"{where}: give one of normal = [mean, std], uniform = [low, high], integers = [low, high]")


def call_text(spec: CheckSpec, function: str | None = None) -> str:
    return f"{function or spec.params['function']}({', '.join(spec.params['args'])})"


def timeout(spec: CheckSpec) -> float:
    return float(spec.params.get("timeout", 10))


def error_of(got: np.ndarray, want: np.ndarray, error: str) -> float:
    """The handout's relative error, the scale-aware one for gradients (`gradient`: an entry
    near zero is judged against the array's scale), or the largest absolute difference; infinite
    when the sizes differ or either side is not finite. A value shaped (n, 1) where (n,) is
    expected is compared element by element: the handout never fixes that shape."""
    got, want = np.asarray(got, dtype=np.float64).ravel(), np.asarray(want, dtype=np.float64).ravel()
    if error == "relative":
        return rel_error(got, want)
    if error == "gradient":
        return gradient_error(got, want)
    if got.shape != want.shape or not (np.all(np.isfinite(got)) and np.all(np.isfinite(want))):
        return float("inf")
    return float(np.max(np.abs(got - want))) if got.size else 0.0


def mismatch(name: str, got: np.ndarray, want: np.ndarray, tol: float, error: str, show: bool,
             labels: list[str] | None = None, safe: bool = False) -> str:
    """'' when `got` matches `want` within `tol`, else a sentence naming the problem (with the
    numbers only when `show`: a check that shows its outcome only never reveals expected
    values). `labels` name the elements (the rubric's, e.g. the parameters of θ): the wrong ones
    are listed. `safe`: the sentence a student may read of an outcome-only check, which also
    leaves out the error and the tolerance (the names, the wrong elements and the kind of
    mistake, e.g. "the sign is flipped" or "off by a constant factor of 3", stay)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.size != want.size:
        return f"{name} gives {got.size} values (shape {got.shape}), expected {want.size}"
    if not np.all(np.isfinite(got)):
        return f"{name} gives NaN or infinity"
    err = error_of(got, want, error)
    if err <= tol:
        return ""
    text = f"{name} gives {fmt(got)}; expected {fmt(want)}" if show and not safe else f"{name} differs"
    hint = diagnose(got.ravel(), want.ravel())
    if labels and len(labels) == want.size and want.size > 1:
        g, w = got.ravel(), want.ravel()
        diff = (np.abs(g - w) if error == "absolute"
                else relative_errors(g, w, GRADIENT_SCALE_FLOOR if error == "gradient" else 0.0))
        wrong = [label for label, d in zip(labels, diff) if d > tol]
        text += f" (wrong: {', '.join(wrong)})" if wrong else ""
    kind = "relative" if error == "gradient" else error
    measured = "" if safe else f" ({kind} error {err:.2e} > {tol:g})"
    return text + measured + (f": {hint}" if hint else "")


def fmt(values: Any) -> str:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 1:
        return f"{float(arr.ravel()[0]):.10g}"
    shown = ", ".join(f"{v:.6g}" for v in arr.ravel()[:16])
    return f"[{shown}{', …' if arr.size > 16 else ''}]"


def check_error(spec: CheckSpec) -> str:
    error = spec.params.get("error", "relative")
    if error not in ERRORS:
        raise RubricError(f"check {spec.id}: error = {error!r} ({' or '.join(ERRORS)})")
    return error
