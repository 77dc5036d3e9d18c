"""Problem Set 4 check kinds: the inputs each check feeds the student's TwoLayerMLP (through the
probe) and how the returned numbers are scored. Parameters come from rubrics/pset4.toml."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from grader.kinds.base import Context, Kind, Outcome, diagnose, failed_task, gradient_error, rel_error, shape_problem
from grader.kinds.tasks import Task, TaskOutput
from grader.rubric import CheckSpec
from grader.sandbox import GiB

PARAMS = ("W1", "b1", "W2", "b2")
# The handout's toy problem: np.random.seed(0) before the model, np.random.seed(1) before X.
TOY_MODEL = {"input_size": 4, "hidden_size": 10, "num_classes": 3, "std": 1e-1, "init_seed": 0}


def toy_arrays() -> dict[str, np.ndarray]:
    X = 10 * np.random.RandomState(1).randn(5, 4)
    return {"X": X, "y": np.array([0, 1, 2, 2, 1])}


def case_arrays(case: dict) -> dict[str, np.ndarray]:
    """A random network and data set of the case's shape, with non-zero biases."""
    rng = np.random.RandomState(case["seed"])
    N, D, H, C = case["N"], case["D"], case["H"], case["C"]
    return {
        "W1": rng.randn(D, H) / np.sqrt(D), "b1": 0.1 * rng.randn(H),
        "W2": rng.randn(H, C) / np.sqrt(H), "b2": 0.1 * rng.randn(C),
        "X": 2.0 * rng.randn(N, D), "y": rng.randint(C, size=N),
    }


def case_params(case: dict, activation: str) -> dict:
    return {"input_size": case["D"], "hidden_size": case["H"], "num_classes": case["C"], "std": 1e-1,
            "init_seed": 0, "activation": activation, "reg": float(case.get("reg", 0.0))}


# ---------------------------------------------------------------- tasks

def toy_task(fn: str, spec: CheckSpec, **extra) -> Task:
    act = spec.params["activation"]
    params = {**TOY_MODEL, "activation": act, **extra}
    tag = "-".join(f"{k}{v}" for k, v in sorted(extra.items()) if k != "train")
    if "train" in extra:
        tag += "-" + "-".join(f"{k}{v}" for k, v in sorted(extra["train"].items()))
    return Task(id=f"toy-{fn}-{act}-{tag}", fn=fn, params=params, arrays=toy_arrays(),
                timeout=float(spec.params.get("timeout", 10)))


def case_tasks(fn: str, spec: CheckSpec) -> list[Task]:
    act = spec.params["activation"]
    return [Task(id=f"case-{fn}-{act}-seed{case['seed']}", fn=fn, params=case_params(case, act),
                 arrays=case_arrays(case), timeout=float(spec.params.get("timeout", 5)))
            for case in spec.params["cases"]]


def data_task(spec: CheckSpec, ctx: Context) -> Task:
    ds = ctx.dataset
    act = spec.params["activation"]
    params = {"input_size": ds.input_size, "hidden_size": spec.params["hidden_size"],
              "num_classes": ds.num_classes, "std": spec.params["std"], "init_seed": 0,
              "activation": act, "train": {**spec.params["train"], **ctx.thresholds.get("train", {})}}
    return Task(id=f"data-train_data-{act}", fn="train_data", params=params,
                timeout=float(ctx.thresholds.get("timeout", 600)), memory=4 * GiB, needs_data=True)


# ---------------------------------------------------------------- scoring helpers

def scalar(output: TaskOutput, key: str) -> tuple[float | None, str]:
    if key not in output.arrays:
        return None, f"no value for {key!r} was returned"
    arr = output.arrays[key]
    if arr.size != 1:
        return None, f"{key} should be a single number, got an array of shape {arr.shape}"
    value = float(arr.reshape(-1)[0])
    if not np.isfinite(value):
        return None, f"{key} is {value}"
    return value, ""


def first_failure(outputs: dict[str, TaskOutput], tasks: list[Task], what: str) -> Outcome | None:
    for task in tasks:
        if not outputs[task.id].ok:
            return failed_task(outputs[task.id], what)
    return None


def ratio_message(passed: int, total: int, ok: str, bad: str) -> str:
    return ok if passed == total else f"{bad} ({total - passed} of {total} failed)"


# ---------------------------------------------------------------- kinds

def plan_published_loss(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [toy_task("loss", spec, reg=spec.params["reg"])]


def score_published_loss(spec, ctx, outputs, reference) -> Outcome:
    task = plan_published_loss(spec, ctx)[0]
    out = outputs[task.id]
    act, reg, expected, tol = (spec.params[k] for k in ("activation", "reg", "expected", "tolerance"))
    call = f"loss(X, y, reg={reg}) with activation='{act}' on the handout's toy data"
    if not out.ok:
        return failed_task(out, call)
    got, problem = scalar(out, "loss")
    details = {"expected": expected, "tolerance": tol}
    if problem:
        return Outcome(0.0, f"{call}: {problem}", details)
    details.update(got=got, difference=abs(got - expected))
    if abs(got - expected) <= tol:
        return Outcome(1.0, f"{call} gives {got:.10g}, matching {expected}", details)
    return Outcome(0.0, f"{call} gives {got:.10g}; expected {expected} (within {tol:g})", details)


def plan_gradcheck(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [toy_task("gradcheck", spec, reg=spec.params["reg"])]


def score_gradcheck(spec, ctx, outputs, reference) -> Outcome:
    task = plan_gradcheck(spec, ctx)[0]
    out = outputs[task.id]
    act, tol = spec.params["activation"], spec.params["tolerance"]
    if not out.ok:
        return failed_task(out, f"the gradient check ({act})")
    errors, problems = {}, []
    for name in PARAMS:
        grad, num = out.arrays.get("grad_" + name), out.arrays.get("num_" + name)
        if grad is None:
            problems.append(f"grads has no entry {name!r}")
            continue
        problem = shape_problem(f"grads['{name}']", grad, num.shape)
        if problem:
            problems.append(problem)
            continue
        errors[name] = gradient_error(grad, num)
        if not np.any(num) and not np.any(grad):
            problems.append(f"the loss does not depend on {name} (its numerical gradient is zero)")
        elif errors[name] > tol:
            hint = diagnose(grad, num, n=len(toy_arrays()["y"]))
            problems.append(f"the gradient of {name} does not match the numerical gradient "
                            f"(relative error {errors[name]:.2e} > {tol:g})" + (f": {hint}" if hint else ""))
    passed = len(PARAMS) - len(problems)
    details = {"relative_errors": errors, "tolerance": tol}
    if not problems:
        return Outcome(1.0, f"all four {act} gradients match the numerical gradient", details)
    return Outcome(passed / len(PARAMS), f"{act} backward pass: " + "; ".join(problems), details)


def plan_cases(fn: str):
    return lambda spec, ctx: case_tasks(fn, spec)


def score_reference_scores(spec, ctx, outputs, reference) -> Outcome:
    tasks = case_tasks("scores", spec)
    act, tol = spec.params["activation"], spec.params["tolerance"]
    failure = first_failure(outputs, tasks, f"loss(X) (scores, {act})")
    if failure:
        return failure
    passed, problems = 0, []
    for task in tasks:
        got, want = outputs[task.id].arrays.get("scores"), reference[task.id].arrays["scores"]
        problem = "no scores returned" if got is None else shape_problem("the scores", got, want.shape)
        if not problem and rel_error(got, want) > tol:
            problem = "the scores differ from the reference solution's"
        passed += not problem
        problems.append(problem) if problem else None
    msg = ratio_message(passed, len(tasks), f"{act} scores match the reference on every hidden input",
                        f"{act} forward pass: {problems[0] if problems else ''} on hidden inputs")
    return Outcome(passed / len(tasks), msg, {"tolerance": tol})


def score_reference_loss(spec, ctx, outputs, reference) -> Outcome:
    tasks = case_tasks("loss", spec)
    act, tol = spec.params["activation"], spec.params["tolerance"]
    failure = first_failure(outputs, tasks, f"loss(X, y, reg) ({act})")
    if failure:
        return failure
    passed = 0
    for task in tasks:
        got, _ = scalar(outputs[task.id], "loss")
        want = float(reference[task.id].arrays["loss"])
        passed += got is not None and abs(got - want) <= tol * max(1.0, abs(want))
    msg = ratio_message(passed, len(tasks), f"{act} loss matches the reference on hidden inputs "
                        "(other shapes and reg values)",
                        f"{act} loss differs from the reference on hidden inputs with other shapes and reg values")
    flags = loss_stress_flags(spec, outputs, reference) if passed == len(tasks) else []
    return Outcome(passed / len(tasks), msg, {"tolerance": tol}, flags=flags)


def score_reference_grads(spec, ctx, outputs, reference) -> Outcome:
    tasks = case_tasks("loss", spec)
    act, tol = spec.params["activation"], spec.params["tolerance"]
    failure = first_failure(outputs, tasks, f"loss(X, y, reg) ({act})")
    if failure:
        return failure
    wrong: dict[str, int] = {}
    for task in tasks:
        for name in PARAMS:
            got = outputs[task.id].arrays.get("grad_" + name)
            want = reference[task.id].arrays["grad_" + name]
            if got is None or shape_problem(name, got, want.shape) or gradient_error(got, want) > tol:
                wrong[name] = wrong.get(name, 0) + 1
    total = len(tasks) * len(PARAMS)
    fraction = (total - sum(wrong.values())) / total
    if not wrong:
        return Outcome(1.0, f"all {act} gradients match the reference on hidden inputs", {"tolerance": tol})
    names = ", ".join(f"{n} ({k} of {len(tasks)} inputs)" for n, k in wrong.items())
    return Outcome(fraction, f"{act} gradients differ from the reference for {names}", {"tolerance": tol})


def stress_task(spec: CheckSpec, fn: str = "predict") -> Task | None:
    """The check's `stress` case: every score raised by the same `offset` (added to b2). Softmax,
    the loss and the argmax do not change, so the reference's answers hold exactly; only a
    softmax taken as exp of the raw scores breaks (exp(1000) = inf, inf/inf = nan). The handout
    never tests it, so it only ever yields a flag."""
    case = spec.params.get("stress")
    if not case:
        return None
    arrays = case_arrays(case)
    arrays["b2"] = arrays["b2"] + case["offset"]
    act = spec.params["activation"]
    return Task(id=f"stress-{fn}-{act}-seed{case['seed']}-plus{case['offset']:g}", fn=fn,
                params=case_params(case, act), arrays=arrays, timeout=float(spec.params.get("timeout", 5)))


def stress_where(spec: CheckSpec, fn: str) -> str:
    return (f"{fn}() with every score raised by {spec.params['stress']['offset']:g} (which changes neither "
            "the softmax nor the labels)")


def plan_with_stress(fn: str):
    def plan(spec: CheckSpec, ctx: Context) -> list[Task]:
        stress = stress_task(spec, fn)
        return case_tasks(fn, spec) + ([stress] if stress else [])
    return plan


STRESS_NOTE = "not graded: the handout never tests it"


def loss_stress_flags(spec: CheckSpec, outputs, reference) -> list[str]:
    task = stress_task(spec, "loss")
    if task is None or task.id not in outputs:
        return []
    out, where = outputs[task.id], stress_where(spec, "loss")
    if not out.ok:
        return [f"{where} raised an error ({out.reason()}); {STRESS_NOTE}"]
    got, want = out.arrays.get("loss"), float(reference[task.id].arrays["loss"])
    value = float(got.reshape(-1)[0]) if got is not None and got.size == 1 else float("nan")
    if np.isfinite(value) and abs(value - want) <= 1e-6 * max(1.0, abs(want)):
        return []
    return [f"{where} gives {value:.6g} instead of {want:.6g}: exp of the raw scores overflows (subtract each "
            f"row's maximum before exp); {STRESS_NOTE}"]


def score_predict(spec, ctx, outputs, reference) -> Outcome:
    tasks = case_tasks("predict", spec)
    failure = first_failure(outputs, tasks, "predict(X)")
    if failure:
        return failure
    passed, problem = 0, ""
    for task in tasks:
        got, want = outputs[task.id].arrays["pred"], reference[task.id].arrays["pred"]
        if got.shape != want.shape:
            problem = (f"predict() returned an array of shape {got.shape}; expected ({want.shape[0]},) class "
                       "labels" + (" — it looks like the scores, not their argmax" if got.ndim == 2 else ""))
        elif not np.array_equal(got, want):
            problem = "predict() labels differ from the argmax of the scores"
        else:
            passed += 1
    msg = "predict() returns the right labels on hidden inputs" if passed == len(tasks) else problem
    flags = predict_stress_flags(spec, outputs, reference) if passed == len(tasks) else []
    return Outcome(passed / len(tasks), msg, flags=flags)


def predict_stress_flags(spec: CheckSpec, outputs, reference) -> list[str]:
    """Robustness the handout never grades: a flag for the TA, never points. The MNIST checks
    score the labels predict() really returns, so an overflow that matters costs points there."""
    task = stress_task(spec)
    if task is None or task.id not in outputs:
        return []
    out, want = outputs[task.id], reference[task.id].arrays["pred"]
    where = stress_where(spec, "predict")
    note = f"{STRESS_NOTE}, and the MNIST checks score the labels predict() really returns there"
    if not out.ok:
        return [f"{where} raised an error ({out.reason()}); {note}"]
    got = out.arrays.get("pred")
    if got is None or got.shape != want.shape:
        return [f"{where} returned shape {None if got is None else got.shape}; {note}"]
    wrong = int(np.sum(got != want))
    if not wrong:
        return []
    return [f"{where} returns wrong labels on {wrong} of {want.size} rows: exp of the raw scores overflows "
            f"(inf/inf = nan; subtract each row's maximum before exp); {note}"]


def plan_toy_training(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [toy_task("train_toy", spec, train=spec.params["train"])]


def score_toy_training(spec, ctx, outputs, reference) -> Outcome:
    out = outputs[plan_toy_training(spec, ctx)[0].id]
    act, expected, band = spec.params["activation"], spec.params["expected"], spec.params["band"]
    if not out.ok:
        return failed_task(out, f"train() on the toy data ({act})")
    history = out.arrays.get("loss_history")
    if history is None or history.size == 0:
        return Outcome(0.0, "train() returned no loss_history")
    final = float(history[-1])
    low, high = expected * (1 - band), expected * (1 + band)
    details = {"expected": f"{expected} (accepted {low:.4g} .. {high:.4g})", "got": final}
    artifacts = {k: v for k, v in out.arrays.items()}
    if np.isfinite(final) and low <= final <= high:
        return Outcome(1.0, f"final training loss {final:.6g} (handout: {expected:.6g})", details, artifacts=artifacts)
    return Outcome(0.0, f"final training loss {final:.6g} is outside the accepted band {low:.4g} .. {high:.4g} "
                        f"around the handout's {expected:.6g}", details, artifacts=artifacts)


def plan_history(spec: CheckSpec, ctx: Context) -> list[Task]:
    case = spec.params["case"]
    params = {**case_params(case, spec.params["activation"]), "train": spec.params["train"]}
    params.pop("reg")
    return [Task(id=f"case-train-{spec.id}", fn="train_toy", params=params, arrays=case_arrays(case),
                 timeout=float(spec.params.get("timeout", 20)))]


def score_history(spec, ctx, outputs, reference) -> Outcome:
    out = outputs[plan_history(spec, ctx)[0].id]
    if not out.ok:
        return failed_task(out, "train()")
    train, case = spec.params["train"], spec.params["case"]
    iterations = train["num_epochs"] * max(case["N"] // train["batch_size"], 1)
    expected = {"loss_history": iterations, "grad_magnitude_history": iterations,
                "train_acc_history": train["num_epochs"], "val_acc_history": train["num_epochs"]}
    problems = []
    for key, length in expected.items():
        if key not in out.arrays:
            problems.append(f"the returned dict has no {key!r}")
        elif out.arrays[key].size != length:
            problems.append(f"{key} has {out.arrays[key].size} entries, expected {length}")
    details = {"expected": expected, "got": {k: int(v.size) for k, v in out.arrays.items()}}
    if problems:
        return Outcome((4 - len(problems)) / 4, "train() histories: " + "; ".join(problems), details)
    return Outcome(1.0, f"train() returns all four histories with the right lengths "
                        f"({iterations} iterations, {train['num_epochs']} epochs)", details)


def plan_data_accuracy(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [data_task(spec, ctx)]


def test_accuracy(out: TaskOutput, ctx: Context) -> tuple[float | None, str]:
    pred = out.arrays.get("pred_test")
    y = ctx.dataset.y_test
    if pred is None or pred.shape != y.shape:
        shape = None if pred is None else pred.shape
        return None, f"predict() on the held-out split returned shape {shape}, expected {y.shape}"
    return float(np.mean(pred == y)), ""


@dataclass(frozen=True)
class AccuracyRule:
    """Which accuracies earn the points on this dataset, and why (shown in the report)."""

    full: float  # full points from here
    zero: float  # none below, linear in between
    name: str  # "handout" | "reference"
    why: str
    reference: float  # the reference's accuracy with the same settings, data and seeds (rubric)

    def fraction(self, accuracy: float) -> float:
        return float(np.clip((accuracy - self.zero) / (self.full - self.zero), 0.0, 1.0))


def accuracy_rule(act: str, ctx: Context) -> AccuracyRule:
    """On the real dataset, the handout's absolute thresholds. On a stand-in (rule = "reference"
    in the rubric's thresholds for it), what the reference reaches when the same probe task trains
    it (same architecture, hyper-parameters, data and seeds: deterministic, so the rubric holds
    the number and the student kit applies the same rule without the reference), minus a margin
    calibrated for correct code that draws its random numbers in another order
    (bench/calibrate_pset4_standin.py)."""
    table, name = ctx.thresholds, ctx.dataset.name
    entry = table[act]
    if table.get("rule", "handout") != "reference":
        full, zero = entry["full"], entry["zero"]
        # `reference` is informative here (and stands in for a crashed sigmoid network)
        ref_acc = float(entry.get("reference", full))
        return AccuracyRule(full, zero, "handout", f"{name} is the handout's dataset, so its absolute thresholds "
                            f"apply (full points from {full:g}, none below {zero:g}"
                            + (f"; the reference reaches about {ref_acc:g})" if "reference" in entry else ")"), ref_acc)
    ref_acc = float(entry["reference"])
    margin, ramp = entry["margin"], entry["ramp"]
    full = round(ref_acc - margin, 6)
    zero = round(full - ramp, 6)
    return AccuracyRule(full, zero, "reference",
                        f"{name} is an offline stand-in, where accuracy says little about code written for "
                        f"MNIST, so it is compared with the reference trained with the same architecture, "
                        f"hyper-parameters, data and seeds ({ref_acc:g}): full points from {full:g} (reference "
                        f"− {margin:g} margin), none below {zero:g}", ref_acc)


def score_data_accuracy(spec, ctx, outputs, reference) -> Outcome:
    task = data_task(spec, ctx)
    out = outputs[task.id]
    act = spec.params["activation"]
    if not out.ok:
        return failed_task(out, f"training the {act} network on {ctx.dataset.name}")
    acc, problem = test_accuracy(out, ctx)
    if problem:
        return Outcome(0.0, problem)
    rule = accuracy_rule(act, ctx)
    details = {"expected": f"test accuracy >= {rule.full:.4f} for full points, none below {rule.zero:.4f}",
               "got": acc, "dataset": ctx.dataset.name, "rule": rule.name, "rule_why": rule.why,
               "reference_accuracy": rule.reference}
    artifacts = {k: v for k, v in out.arrays.items() if k != "pred_test"}
    msg = f"{act} network: held-out test accuracy {acc:.4f} on {ctx.dataset.name}. Rule: {rule.why}"
    return Outcome(rule.fraction(acc), msg, details, artifacts=artifacts)


def plan_compare_accuracy(spec: CheckSpec, ctx: Context) -> list[Task]:
    return [data_task(_as_activation(spec, act), ctx) for act in ("sigmoid", "relu")]


def _as_activation(spec: CheckSpec, activation: str) -> CheckSpec:
    return replace(spec, params={**spec.params, "activation": activation})


def score_compare_accuracy(spec, ctx, outputs, reference) -> Outcome:
    sigmoid_task, relu_task = plan_compare_accuracy(spec, ctx)
    relu_out = outputs[relu_task.id]
    if not relu_out.ok:
        return failed_task(relu_out, "training the relu network")
    relu, problem = test_accuracy(relu_out, ctx)
    if problem:
        return Outcome(0.0, problem)
    sigmoid_out = outputs[sigmoid_task.id]
    sigmoid, problem = test_accuracy(sigmoid_out, ctx) if sigmoid_out.ok else (None, "")
    if sigmoid is None:
        # The sigmoid bug already costs Q2.5.1 (and the sigmoid questions before it): charge it
        # once. What a correct sigmoid network reaches with the same settings stands in for it.
        sigmoid = accuracy_rule("sigmoid", ctx).reference
        why = (f"training the sigmoid network {'timed out' if sigmoid_out.status == 'timeout' else 'failed'}"
               f" ({sigmoid_out.reason()})" if not sigmoid_out.ok else problem)
        details = {"got": {"relu": relu, "sigmoid (reference)": sigmoid}, "sigmoid_problem": why}
        verdict = "beats" if relu > sigmoid else "does not beat"
        msg = (f"ReLU ({relu:.4f}) {verdict} a correct sigmoid network with the same settings ({sigmoid:.4f}, the "
               f"reference's); the student's own sigmoid network could not be compared: {why} — that is charged "
               "in the sigmoid questions, not here")
        return Outcome(1.0 if relu > sigmoid else 0.0, msg, details)
    details = {"got": {"sigmoid": sigmoid, "relu": relu}}
    if relu > sigmoid:
        return Outcome(1.0, f"ReLU ({relu:.4f}) beats sigmoid ({sigmoid:.4f}) as expected", details)
    return Outcome(0.0, f"ReLU ({relu:.4f}) does not beat sigmoid ({sigmoid:.4f}); with a correct "
                        "implementation it does clearly", details)


# The kinds written for hidden checks say what went wrong in words (which gradient, "the
# scores, not their argmax") and never a hidden input or a reference value: safe_messages.
KINDS = {
    "published_loss": Kind(plan_published_loss, score_published_loss),
    "gradcheck": Kind(plan_gradcheck, score_gradcheck),
    "reference_scores": Kind(plan_cases("scores"), score_reference_scores, reference=True, safe_messages=True),
    "reference_loss": Kind(plan_with_stress("loss"), score_reference_loss, reference=True, safe_messages=True),
    "reference_grads": Kind(plan_cases("loss"), score_reference_grads, reference=True, safe_messages=True),
    "predict": Kind(plan_with_stress("predict"), score_predict, reference=True, safe_messages=True),
    "toy_training": Kind(plan_toy_training, score_toy_training, curves=True),
    "history": Kind(plan_history, score_history),
    "data_accuracy": Kind(plan_data_accuracy, score_data_accuracy, curves=True),
    "compare_accuracy": Kind(plan_compare_accuracy, score_compare_accuracy),
}
