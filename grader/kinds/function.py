"""`function`: call a named function of a student module (or a method of a class built with
`init`) on the rubric's inputs, and compare every returned value with the published `expected`
values and/or the reference's returns on the same inputs.

    module = "a1"   function = "forward" (or "Net.forward": Net(*init) after np.random.seed(init_seed))
    args = ["x", "theta"]            positional arguments, by input name
    inputs = { x = 2.0, ... }        literal inputs; or generate = { theta = { normal = [0, 1], shape = [13] } }
    cases = [{ seed = 5 }, ...]      one call per case (inputs drawn with that seed)
    attributes = { "params.W1" = "W1" }   set on the built object before the call (a dict step is a key)
    returns = 1                      how many values it returns (a tuple when > 1); a returned dict
                                     (e.g. gradients) is compared entry by entry
    expected = -3.0                  the returned value (a list of them when returns > 1; a table for a dict)
    compare = "expected" | "reference" | "both"   (default: expected when given)
    tolerance = 1e-8   error = "relative" (the handout's) | "gradient" (relative, an entry near zero judged
                     against the array's scale: for functions that return gradients) | "absolute"
    on = "at x = 2 with the handout's parameters"  how the message names the inputs
    labels = ["w1", ...]             names of the elements of a returned array: the wrong ones are listed
"""
from __future__ import annotations

from grader.kinds import common
from grader.kinds.base import Context, Kind, Outcome, failed_task
from grader.kinds.tasks import Task, TaskOutput
from grader.rubric import CheckSpec


def compare_with(spec: CheckSpec) -> set[str]:
    default = "expected" if "expected" in spec.params else "reference"
    how = spec.params.get("compare", default)
    return {"expected", "reference"} if how == "both" else {how}


def uses_reference(spec: CheckSpec) -> bool:
    return "reference" in compare_with(spec)


def plan(spec: CheckSpec, ctx: Context) -> list[Task]:
    params = {k: spec.params[k] for k in ("module", "function", "args")}
    params.update(returns=int(spec.params.get("returns", 1)), init=spec.params.get("init", []))
    if "init_seed" in spec.params:
        params["init_seed"] = int(spec.params["init_seed"])
    attributes = spec.params.get("attributes", {})
    if attributes:
        params["attributes"] = attributes
    names = list(dict.fromkeys([*spec.params["args"], *attributes.values()]))
    return [Task(id=f"function-{spec.id}-{i}", fn="call", params=params, timeout=common.timeout(spec),
                 arrays={"in_" + k: v for k, v in common.case_inputs(spec, case, names).items()})
            for i, case in enumerate(common.cases(spec))]


def entries(arrays: dict, i: int) -> dict[str, object]:
    """Returned value i: {"": array}, or {key: array} for a returned dict."""
    if f"out{i}" in arrays:
        return {"": arrays[f"out{i}"]}
    prefix = f"out{i}."
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def compare(name: str, got: dict, want: dict, tol: float, error: str, show: bool, labels,
            safe: bool = False) -> str:
    """The first problem of returned value `got` against `want` (both as `entries` gives them);
    `safe`: in the words a student may read of an outcome-only check (see common.mismatch)."""
    for key, value in want.items():
        entry = f"{name}[{key!r}]" if key else name
        if key not in got:
            return f"{name} has no entry {key!r}" if key else f"{name} is a dict, expected an array"
        problem = common.mismatch(entry, got[key], value, tol, error, show, labels, safe)
        if problem:
            return problem
    return ""


def score(spec: CheckSpec, ctx: Context, outputs: dict[str, TaskOutput], reference: dict[str, TaskOutput]) -> Outcome:
    tasks = plan(spec, ctx)
    call = common.call_text(spec)
    tol, error = float(spec.params["tolerance"]), common.check_error(spec)
    returns = int(spec.params.get("returns", 1))
    expected = spec.params.get("expected")
    expected = [expected] if returns == 1 else expected
    show = spec.detail_level == "full"
    labels = spec.params.get("labels")
    on = spec.params.get("on", "on the rubric's inputs" if show else "on hidden inputs")
    passed, problems, safe = 0, [], []
    for task in tasks:
        out = outputs[task.id]
        if not out.ok:
            return failed_task(out, call)
        found = []  # (for the TA, for a student of an outcome-only check)
        for i in range(returns):
            name = "it" if returns == 1 else f"its value {i + 1}"
            got = entries(out.arrays, i)
            if "expected" in compare_with(spec):
                want = expected[i] if isinstance(expected[i], dict) else {"": expected[i]}
                found.append(tuple(compare(name, got, want, tol, error, show, labels, s) for s in (False, True)))
            if "reference" in compare_with(spec):
                want = entries(reference[task.id].arrays, i)
                found.append(tuple(p and p + " (vs the reference solution)"
                                   for p in (compare(name, got, want, tol, error, show, labels, s) for s in (False, True))))
        found = [p for p in found if p[0]]
        passed += not found
        problems += [p[0] for p in found[:1]]
        safe += [p[1] for p in found[:1]]
    details = {"tolerance": tol, "error": error, "cases": len(tasks), "passed": passed}
    if len(tasks) == 1 and returns == 1 and show and "out0" in outputs[tasks[0].id].arrays:
        # the value a notebook claim is compared with
        got = outputs[tasks[0].id].arrays["out0"]
        details["got"] = float(got.ravel()[0]) if got.size == 1 else got.ravel().tolist()
        if "expected" in compare_with(spec):
            details["expected"] = expected[0]
    # An outcome-only check's safe words: the call and the kind of mistake, never the rubric's
    # inputs or its `on` (it may describe them), nor any value
    if not problems:
        return Outcome(1.0, f"{call} is right {on}", details, safe_message=f"{call} is right on hidden inputs")
    count = f" ({len(tasks) - passed} of {len(tasks)} inputs wrong)" if len(tasks) > 1 else ""
    return Outcome(passed / len(tasks), f"{call} {on}: {problems[0]}{count}", details,
                   safe_message=f"{call} on hidden inputs: {safe[0]}{count}")


KIND = Kind(plan=plan, score=score, uses_reference=uses_reference, probe=common.PROBE)
