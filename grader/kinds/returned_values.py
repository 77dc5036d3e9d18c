"""`returned_values`: fetch constants (or the results of zero-argument functions) from a student
module, and evaluate them with the *reference's* code, run in a probe over the reference folder,
so that a student's own bug in (say) `forward` can neither make a wrong fit look right nor a right
fit look wrong. Without `evaluate`, the values themselves (every name, flattened in order) are
compared with `expected`.

    module = "a1"   names = ["FIT_1"]       shapes = [[13]] (optional: checked before evaluating)
    evaluate = "forward"                     the reference's function (of module `module`)
    args = ["x", "FIT_1"]                    its arguments: rubric inputs or fetched names
    inputs = { x = [0, 1, 2] }
    expected = [8, 6, 4]                     what the evaluation (or the values) must give
    tolerance = 1e-4   error = "absolute" | "relative"
    credit = "all" (default) | "per_element" (the fraction of elements within tolerance)
    label = "x"                              names the missed elements by this input's values
"""
from __future__ import annotations

import numpy as np

from grader.kinds import common
from grader.kinds.base import Context, Kind, Outcome, failed_task
from grader.kinds.tasks import Task, TaskOutput
from grader.rubric import CheckSpec


def _values_id(spec: CheckSpec) -> str:
    return f"values-{spec.id}"


def _evaluate_id(spec: CheckSpec) -> str:
    return f"evaluate-{spec.id}"


def plan(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [Task(id=_values_id(spec), fn="values", timeout=common.timeout(spec),
                 params={"module": spec.params["module"], "names": list(spec.params["names"])})]


def _shape_problem(spec: CheckSpec, out: TaskOutput) -> str:
    for i, name in enumerate(spec.params["names"]):
        value = out.arrays.get(f"value{i}")
        if value is None:
            return f"no value for {name}"
        shapes = spec.params.get("shapes")
        if shapes and value.size != int(np.prod(shapes[i])):
            return f"{name} has {value.size} values, expected {int(np.prod(shapes[i]))}"
        if not np.all(np.isfinite(value)):
            return f"{name} contains NaN or infinity"
    return ""


def followup(spec: CheckSpec, ctx: Context, outputs: dict[str, TaskOutput]) -> list[Task]:
    """The reference's evaluation of the student's values (nothing when they are unusable)."""
    out = outputs.get(_values_id(spec))
    if "evaluate" not in spec.params or out is None or not out.ok or _shape_problem(spec, out):
        return []
    fetched = {name: out.arrays[f"value{i}"].reshape(spec.params["shapes"][i]) if spec.params.get("shapes")
               else out.arrays[f"value{i}"] for i, name in enumerate(spec.params["names"])}
    inputs = common.case_inputs(spec, {}, [a for a in spec.params["args"] if a not in fetched])
    arrays = {"in_" + k: v for k, v in {**inputs, **fetched}.items()}
    params = {"module": spec.params["module"], "function": spec.params["evaluate"],
              "args": spec.params["args"], "returns": 1, "init": []}
    return [Task(id=_evaluate_id(spec), fn="call", params=params, arrays=arrays, timeout=common.timeout(spec))]


def score(spec: CheckSpec, ctx: Context, outputs: dict[str, TaskOutput], reference: dict[str, TaskOutput]) -> Outcome:
    names = ", ".join(spec.params["names"])
    out = outputs[_values_id(spec)]
    if not out.ok:
        return failed_task(out, f"reading {names}")
    problem = _shape_problem(spec, out)
    if problem:  # the student's own names and counts: safe to show
        return Outcome(0.0, problem, safe_message=problem)
    if "evaluate" in spec.params:
        evaluated = reference.get(_evaluate_id(spec))
        if evaluated is None or not evaluated.ok:
            why = evaluated.reason() if evaluated is not None else "not run"
            # The values passed the shape check, so this is most likely the grader's side (the
            # sandbox, the reference): an error for the TA to look at, not a wrong answer.
            return Outcome(0.0, f"the grader could not evaluate {names} with the reference's "
                                f"{spec.params['evaluate']}: {why}", status="error",
                           safe_message=f"the grader could not evaluate {names}: the course staff will look at it")
        got = evaluated.arrays["out0"]
        what = f"{names}, evaluated with the reference's {spec.params['evaluate']},"
    else:  # the values themselves, one after the other
        got = np.concatenate([out.arrays[f"value{i}"].ravel() for i in range(len(spec.params["names"]))])
        what = names
    want = np.asarray(spec.params["expected"], dtype=np.float64)
    tol, error = float(spec.params["tolerance"]), common.check_error(spec)
    if got.size != want.size:
        return Outcome(0.0, f"{what} gives {got.size} values for {want.size} targets",
                       safe_message=f"{what} gives {got.size} values for {want.size} targets")
    got, want = got.ravel(), want.ravel()
    if error == "absolute":
        close = np.abs(got - want) <= tol
    else:
        close = np.abs(got - want) / np.maximum(1e-8, np.abs(got) + np.abs(want)) <= tol
    close &= np.isfinite(got)
    details = {"tolerance": tol, "error": error, "got": got.tolist(), "expected": want.tolist()}
    if close.all():
        return Outcome(1.0, f"{what} reproduces all {want.size} targets (within {tol:g})", details,
                       safe_message=f"{what} reproduces all {want.size} targets")
    label = spec.params.get("label")
    where = (np.asarray(spec.params["inputs"][label], dtype=np.float64).ravel() if label
             else np.arange(want.size, dtype=np.float64))
    missed = [f"{label or 'element'} = {common.fmt(where[i])}: {common.fmt(got[i])} instead of {common.fmt(want[i])}"
              for i in np.flatnonzero(~close)]
    fraction = float(close.mean()) if spec.params.get("credit", "all") == "per_element" else 0.0
    shown = "; ".join(missed[:4]) + ("; …" if len(missed) > 4 else "")
    # outcome only: how many targets, never which inputs or values
    return Outcome(fraction, f"{what} misses {len(missed)} of {want.size} targets "
                             f"(within {tol:g}): {shown}", details,
                   safe_message=f"{what} misses {len(missed)} of {want.size} targets")


KIND = Kind(plan=plan, score=score, followup=followup, probe=common.PROBE)
