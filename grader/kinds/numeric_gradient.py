"""`numeric_gradient`: a student's analytic gradient function against a central-difference
gradient of a scalar function (computed in the probe), and optionally against the reference's
analytic gradient on the same (hidden) inputs.

    module = "a1"   function = "loss" (scalar)   gradient = "loss_grad"
    args = ["theta", "x", "y"]   wrt = "theta"   inputs / generate / cases as for `function`
    numeric_of = "student" (default: the student's own scalar function) | "reference"
    tolerance = 1e-6                  analytic vs central difference (the handout's relative error, judged
                                      against the array's scale where the true value is near zero)
    reference_tolerance = 1e-8        analytic vs the reference's analytic gradient (only when given)
    h = 1e-5                          the central-difference step
    labels = ["w1", ...]              names of the gradient's elements: the wrong ones are listed
"""
from __future__ import annotations

import numpy as np

from grader.kinds import common
from grader.kinds.base import Context, Kind, Outcome, failed_task
from grader.kinds.tasks import Task, TaskOutput
from grader.rubric import CheckSpec


def uses_reference(spec: CheckSpec) -> bool:
    return "reference_tolerance" in spec.params or spec.params.get("numeric_of", "student") == "reference"


def plan(spec: CheckSpec, ctx: Context) -> list[Task]:
    params = {k: spec.params[k] for k in ("module", "function", "gradient", "args", "wrt")}
    params["h"] = float(spec.params.get("h", 1e-5))
    return [Task(id=f"gradient-{spec.id}-{i}", fn="gradient", params=params, timeout=common.timeout(spec),
                 arrays={"in_" + k: v for k, v in common.case_inputs(spec, case, spec.params["args"]).items()})
            for i, case in enumerate(common.cases(spec))]


def score(spec: CheckSpec, ctx: Context, outputs: dict[str, TaskOutput], reference: dict[str, TaskOutput]) -> Outcome:
    tasks = plan(spec, ctx)
    grad_call = common.call_text(spec, spec.params["gradient"])
    of_reference = spec.params.get("numeric_of", "student") == "reference"
    tol = float(spec.params["tolerance"])
    ref_tol = spec.params.get("reference_tolerance")
    show = spec.detail_level == "full"
    labels = spec.params.get("labels")
    on = spec.params.get("on", "on the rubric's inputs" if show else "on hidden inputs")
    numeric_name = (f"the central difference of the reference's {spec.params['function']}" if of_reference
                    else f"the central difference of your {spec.params['function']}")
    passed, problems, safe, errors = 0, [], [], []
    for task in tasks:
        out = outputs[task.id]
        if not out.ok:
            return failed_task(out, f"{grad_call} (or {spec.params['function']}, differentiated numerically)")
        analytic = out.arrays["analytic"]
        numeric = (reference[task.id] if of_reference else out).arrays["numeric"]
        found = []  # (for the TA, for a student of an outcome-only check)
        if not np.any(numeric) and not np.any(analytic):
            found.append((f"{spec.params['function']} does not depend on {spec.params['wrt']} "
                          "(its numerical gradient is zero)",) * 2)
        else:
            found.append(tuple(p and f"{p} (vs {numeric_name})" for p in (
                common.mismatch("it", analytic, numeric, tol, "gradient", show, labels, s) for s in (False, True))))
            errors.append(common.error_of(analytic, numeric, "gradient"))
        if ref_tol is not None:
            want = reference[task.id].arrays["analytic"]
            found.append(tuple(p and f"{p} (vs the reference solution's gradient)" for p in (
                common.mismatch("it", analytic, want, float(ref_tol), "gradient", show, labels, s)
                for s in (False, True))))
        found = [p for p in found if p[0]]
        passed += not found
        problems += [p[0] for p in found[:1]]
        safe += [p[1] for p in found[:1]]
    details = {"tolerance": tol, "reference_tolerance": ref_tol, "relative_errors": errors, "cases": len(tasks)}
    if not problems:
        against = numeric_name + (" and the reference solution's gradient" if ref_tol is not None else "")
        return Outcome(1.0, f"{grad_call} matches {against} {on}", details,
                       safe_message=f"{grad_call} matches {against} on hidden inputs")
    count = f" ({len(tasks) - passed} of {len(tasks)} inputs wrong)" if len(tasks) > 1 else ""
    return Outcome(passed / len(tasks), f"{grad_call} {on}: {problems[0]}{count}", details,
                   safe_message=f"{grad_call} on hidden inputs: {safe[0]}{count}")


KIND = Kind(plan=plan, score=score, uses_reference=uses_reference, probe=common.PROBE)
