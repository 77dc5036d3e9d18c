"""Check kinds of the modular layers-and-optimizers assignment. Handout inputs and published
numbers come from reference/modular/handout_checks.py (course side, never in the sandbox);
hidden checks draw their own inputs from the seeds in rubrics/modular.toml."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np

from grader.assignments.adam_variants import COUNTERS, classify
from grader.kinds.base import Context, Kind, Outcome, failed_task, gradient_error, rel_error, shape_problem
from grader.kinds.tasks import Task, TaskOutput
from grader.notebooks.values import NotebookValueError, Unreadable, evaluate, read_values, resolve_bindings
from grader.parsing import parse
from grader.rubric import CheckSpec
from grader.sandbox import GiB

HYPER = ("batch_size", "epochs", "lr_decay", "lr_decay_every")


def handout(ctx: Context):
    """The course's module of handout inputs and published numbers (loaded once per grading)."""
    if "handout" not in ctx.cache:
        path = Path(ctx.reference_dir) / "handout_checks.py"
        spec = importlib.util.spec_from_file_location("modular_handout_checks", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ctx.cache["handout"] = module
    return ctx.cache["handout"]


def _task(spec: CheckSpec, fn: str, tag: str, params: dict, arrays: dict, timeout: float = 10.0) -> Task:
    return Task(id=f"{fn}-{tag}", fn=fn, params=params, arrays=arrays,
                timeout=float(spec.params.get("timeout", timeout)))


def _arrays(inputs: dict) -> tuple[dict, dict]:
    """Split a handout input dict into numpy arrays and plain parameters."""
    arrays = {k: np.asarray(v) for k, v in inputs.items() if isinstance(v, np.ndarray)}
    params = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
    return arrays, params


def _first_failure(outputs, tasks, what) -> Outcome | None:
    for task in tasks:
        if not outputs[task.id].ok:
            return failed_task(outputs[task.id], what)
    return None


HANDOUT_GRAD_TOLERANCE = 1e-6  # the handout's "no larger than 1e-6" for SmallFullyConnectedNetwork
# Gradients (the probes' names for them: a layer's dx, dw, db; a network's dw1 ...; regularised
# gw0, gb0 ...): judged with gradient_error, against the array's scale where the true value is
# near zero (fairness decisions: tolerances follow the size of what is compared).
GRADIENTS = frozenset({"dx", "dw", "db", "dw1", "db1", "dw2", "db2"})


def _is_gradient(key: str) -> bool:
    return key in GRADIENTS or key.startswith(("gw", "gb"))


def _compare(got: dict, want: dict, keys, tol: float) -> tuple[dict[str, float], list[str]]:
    errors, problems = {}, []
    for key in keys:
        if key not in got:
            problems.append(f"no {key} returned")
            continue
        problem = shape_problem(key, np.asarray(got[key]), np.shape(want[key]))
        if problem:
            problems.append(problem)
            continue
        errors[key] = (gradient_error if _is_gradient(key) else rel_error)(got[key], want[key])
        if errors[key] > tol:
            problems.append(f"{key} off by relative error {errors[key]:.2e} (tolerance {tol:g})")
    return errors, problems


def _score_parts(passed: int, total: int, ok: str, problems: list[str], details=None) -> Outcome:
    if not problems:
        return Outcome(1.0, ok, details or {})
    return Outcome(passed / total, "; ".join(problems), details or {})


# ---------------------------------------------------------------- layer checks on handout inputs

LAYER_TASKS = {  # handout input function -> probe task, and the keys the probe returns
    "fc_forward": "fc_layer", "fc_backward": "fc_layer", "gelu_forward": "gelu_layer",
    "gelu_backward": "gelu_layer", "fc_gelu": "fc_gelu", "softmax_ce": "softmax_ce",
    "dropout_backward": "dropout_backward",
}


def _handout_task(spec: CheckSpec, ctx: Context, inputs_name: str, numeric: bool = False) -> Task:
    inputs = getattr(handout(ctx), f"{inputs_name}_inputs")()
    # The handout flattens the input before the fc layer; so does the grader, so that these
    # checks do not depend on the student's flatten layer.
    if inputs_name == "fc_backward":
        inputs = {**inputs, "x": inputs.pop("inp").reshape(15, -1)}
    if inputs_name == "fc_forward":
        inputs = {**inputs, "x": inputs["x"].reshape(inputs["x"].shape[0], -1)}
    arrays, params = _arrays(inputs)
    return _task(spec, LAYER_TASKS[inputs_name], f"handout-{inputs_name}" + ("-numeric" if numeric else ""),
                 {**params, "numeric": numeric}, arrays, timeout=20.0)


def plan_published(spec, ctx):
    return [_handout_task(spec, ctx, spec.params["inputs"])]


def score_published(spec, ctx, outputs, reference) -> Outcome:
    task = plan_published(spec, ctx)[0]
    out = outputs[task.id]
    what = spec.params["what"]
    if not out.ok:
        return failed_task(out, what)
    expected = handout(ctx).EXPECTED[spec.params["expected"]]
    tol = spec.params["tolerance"]
    errors, problems = _compare(out.arrays, {"out": expected}, ["out"], tol)
    details = {"expected": f"the handout's {spec.params['expected']}", "got": errors.get("out"),
               "tolerance": tol}
    if problems:
        return Outcome(0.0, f"{what}: {problems[0]}", details)
    return Outcome(1.0, f"{what} matches the handout (relative error {errors['out']:.1e})", details)


def plan_numeric(spec, ctx):
    return [_handout_task(spec, ctx, spec.params["inputs"], numeric=True)]


def score_numeric(spec, ctx, outputs, reference) -> Outcome:
    """The handout's own check: analytic gradients against centered differences."""
    out = outputs[plan_numeric(spec, ctx)[0].id]
    what, tol, keys = spec.params["what"], spec.params["tolerance"], spec.params["keys"]
    if not out.ok:
        return failed_task(out, what)
    errors, problems = _compare(out.arrays, {k: out.arrays.get("num_" + k) for k in keys if "num_" + k in out.arrays},
                                keys, tol)
    details = {"relative_errors": errors, "tolerance": tol}
    return _score_parts(len(keys) - len(problems), len(keys),
                        f"{what}: {', '.join(keys)} match the numerical gradient", 
                        [f"{what}: {p}" for p in problems], details)


def score_numeric_reference(spec, ctx, outputs, reference) -> Outcome:
    """The handout's gradient check graded against the reference's analytic gradient on the same
    input (fairness decisions: rounded GeLU constants move the cascade's gradient by ~1e-5, below
    what the handout's numeric bound can resolve). The numeric error stays in the details: it is
    what the notebook prints."""
    task = plan_numeric(spec, ctx)[0]
    out = outputs[task.id]
    what, tol, keys = spec.params["what"], spec.params["tolerance"], spec.params["keys"]
    if not out.ok:
        return failed_task(out, what)
    numeric_tol = spec.params["numeric_tolerance"]
    numeric, numeric_problems = _compare(out.arrays, {k: out.arrays.get("num_" + k) for k in keys}, keys, numeric_tol)
    if task.id not in reference:  # a student kit carries no reference: the handout's own numeric check
        details = {"relative_errors": numeric, "numeric_tolerance": numeric_tol}
        wrong = [k for k in keys if any(p.startswith(k) for p in numeric_problems)]
        return _score_parts(len(keys) - len(wrong), len(keys),
                            f"{what}: {', '.join(keys)} match the numerical gradient (relative error "
                            f"{max(numeric.values(), default=np.inf):.1e}, tolerance {numeric_tol:g})",
                            [f"{what}: {p}" for p in numeric_problems], details)
    errors, problems = _compare(out.arrays, reference[task.id].arrays, keys, tol)
    details = {"relative_errors": numeric, "vs_reference": errors, "tolerance": tol, "numeric_tolerance": numeric_tol}
    # Either is the right derivative: of the tanh form (the reference), or of the student's own
    # forward (e.g. an exact-erf GeLU, whose forward already loses its own points).
    wrong = [k for k in keys if any(p.startswith(k) for p in problems) and any(p.startswith(k) for p in numeric_problems)]
    if not wrong:
        return Outcome(1.0, f"{what}: {', '.join(keys)} match the reference's analytic gradient (relative error "
                            f"{max(errors.values(), default=np.inf):.1e}, tolerance {tol:g}) or the numerical gradient "
                            f"of the submitted forward pass ({max(numeric.values(), default=np.inf):.1e}, "
                            f"tolerance {numeric_tol:g})", details)
    parts = [f"{k} off by relative error {errors.get(k, np.inf):.2e} from the reference's analytic gradient "
             f"(tolerance {tol:g}) and {numeric.get(k, np.inf):.2e} from the numerical gradient (tolerance "
             f"{numeric_tol:g})" for k in wrong]
    return Outcome((len(keys) - len(wrong)) / len(keys), f"{what}: " + "; ".join(parts), details)


# ---------------------------------------------------------------- hidden checks vs the reference

def _random_layer_inputs(kind: str, case: dict) -> dict:
    """Inputs of a hidden case; `case` comes from the rubric (seed, sizes, options)."""
    rng = np.random.RandomState(case["seed"])
    N, D, H = case.get("N", 6), case.get("D", 7), case.get("H", 5)
    if kind == "fc_layer":
        return {"x": rng.randn(N, D), "w": rng.randn(D, H), "b": rng.randn(H), "dout": rng.randn(N, H)}
    if kind == "gelu_layer":
        return {"x": 2 * rng.randn(N, D), "dout": rng.randn(N, D)}
    if kind == "fc_gelu":
        return {"x": rng.randn(N, 5, 3), "w": rng.randn(15, 5), "b": rng.randn(5), "dout": rng.randn(N, 5)}
    if kind == "softmax_ce":
        scale = case.get("scale", 1.0)  # large logits: a softmax without max subtraction overflows
        return {"x": scale * rng.randn(N, D), "y": rng.randint(D, size=N)}
    raise ValueError(kind)


def plan_reference(spec, ctx):
    fn = spec.params["task"]
    return [_task(spec, fn, f"hidden-{spec.id}-{case['seed']}", {"numeric": False}, _random_layer_inputs(fn, case))
            for case in spec.params["cases"]]


def score_reference(spec, ctx, outputs, reference) -> Outcome:
    tasks = plan_reference(spec, ctx)
    what, tol, keys = spec.params["what"], spec.params["tolerance"], spec.params["keys"]
    failure = _first_failure(outputs, [t for t, c in zip(tasks, spec.params["cases"]) if not c.get("flag")], what)
    if failure:
        return failure
    key_tol = spec.params.get("key_tolerance", {})  # e.g. gradients at 1e-4: rounded GeLU constants
    wrong: dict[str, int] = {}
    flags: list[str] = []
    total, graded = 0, 0
    for task, case in zip(tasks, spec.params["cases"]):
        case_keys = case.get("keys", keys)  # e.g. huge logits: the loss is implementation-defined
        if case.get("flag") and not outputs[task.id].ok:
            flags.append(f"{case['flag']}: {what} {outputs[task.id].reason()}")
            continue
        problems = []
        for key in case_keys:
            problems += _compare(outputs[task.id].arrays, reference[task.id].arrays, [key], key_tol.get(key, tol))[1]
        if case.get("flag"):
            # Robustness the handout does not grade (fairness decisions): a note for the TA, no points.
            if problems:
                flags.append(f"{case['flag']}: {problems[0]}")
            continue
        graded += 1
        total += len(case_keys)
        for key in case_keys:
            if any(p.startswith(key) or p == f"no {key} returned" for p in problems):
                wrong[key] = wrong.get(key, 0) + 1
    if not wrong:
        note = f" (not graded: {'; '.join(flags)})" if flags else ""
        # a student of an outcome-only check reads it without the TA's notes (they quote values)
        return Outcome(1.0, f"{what}: {', '.join(keys)} match the reference on hidden inputs{note}", flags=flags,
                       safe_message=f"{what}: {', '.join(keys)} match the reference on hidden inputs")
    names = ", ".join(f"{k} ({n} of {graded} inputs)" for k, n in wrong.items())
    message = f"{what}: differs from the reference for {names}"  # which outputs, how often: no values
    return Outcome((total - sum(wrong.values())) / total, message, flags=flags, safe_message=message)


# ---------------------------------------------------------------- dropout

def plan_dropout_stats(spec, ctx):
    inputs = handout(ctx).dropout_forward_inputs()
    return [_task(spec, "dropout_forward", "handout", {"keep_probs": inputs["keep_probs"], "seed": 100},
                  {"x": inputs["x"]})]


def score_dropout_stats(spec, ctx, outputs, reference) -> Outcome:
    task = plan_dropout_stats(spec, ctx)[0]
    out = outputs[task.id]
    if not out.ok:
        return failed_task(out, "dropout forward")
    x = task.arrays["x"]
    keeps = task.params["keep_probs"]
    problems = {"fraction": [], "mean": [], "test": [], "off": []}
    for i, keep in enumerate(keeps):
        train, test = out.arrays.get(f"train_{i}"), out.arrays.get(f"test_{i}")
        if train is None or test is None or train.shape != x.shape or test.shape != x.shape:
            return Outcome(0.0, f"dropout forward returned the wrong shape for keep_prob={keep}")
        if not np.allclose(test, x):
            problems["test"].append(f"keep_prob={keep}: changes the input at test time (is_training=False)")
        if keep in (0, 1):
            if not np.allclose(train, x):
                problems["off"].append(f"keep_prob={keep} must mean no dropout, but the output differs from the input")
            continue
        dropped = float(np.mean(train == 0))
        bound = 4 * np.sqrt(keep * (1 - keep) / x.size) + 1e-3  # 4 sigma of a binomial fraction
        if abs(dropped - (1 - keep)) > bound:
            problems["fraction"].append(f"keep_prob={keep}: {dropped:.3f} of the units are zeroed, "
                                        f"expected {1 - keep:.2f} ± {bound:.3f}")
        ratio = float(train.mean() / x.mean())
        if abs(ratio - 1) > 0.05:
            problems["mean"].append(f"keep_prob={keep}: the training-time mean is {ratio:.2f}× the input's "
                                    "(inverted dropout divides by keep_prob to keep it)")
    failed = [p for ps in problems.values() for p in ps]
    passed = sum(1 for ps in problems.values() if not ps)
    return _score_parts(passed, 4, "dropout forward: drop rate, inverted scaling, test-time identity and "
                                   "keep_prob 0/1 are all right", [p for p in failed[:4]])


def plan_dropout_mask(spec, ctx):
    return [_handout_task(spec, ctx, "dropout_backward")]


def plan_dropout_modes(spec, ctx):
    """The handout's dropout-backward input, run as the notebook sequences a layer: training
    forward, test forward, backward."""
    task = _handout_task(spec, ctx, "dropout_backward")
    return [Task(id="dropout_modes-handout", fn="dropout_modes", params=task.params, arrays=task.arrays,
                 timeout=task.timeout)]


def _follows_last_forward(task: Task, out: TaskOutput) -> bool | None:
    """dx is the backward of the last forward: with its mask and scale, out = x * mask / keep and
    dx = dout * mask / keep, so dx = dout * out / x (at test time, out = x and dx = dout). None:
    the arrays have the wrong shape."""
    x, dout = task.arrays["x"], task.arrays["dout"]
    fwd, dx = out.arrays.get("out"), out.arrays.get("dx")
    if fwd is None or dx is None or fwd.shape != x.shape or dx.shape != x.shape:
        return None
    return bool(np.allclose(dx, dout * fwd / x, rtol=1e-8, atol=1e-10))


def score_dropout_mask(spec, ctx, outputs, reference) -> Outcome:
    task = plan_dropout_mask(spec, ctx)[0]
    out = outputs[task.id]
    if not out.ok:
        return failed_task(out, "dropout backward")
    same = _follows_last_forward(task, out)
    if same is None:
        return Outcome(0.0, "dropout backward returned the wrong shape")
    if same:
        return Outcome(1.0, "dropout backward uses the same mask (and scale) as the forward pass")
    return Outcome(0.0, "dropout backward does not use the forward pass's mask and scale")


def score_dropout_modes(spec, ctx, outputs, reference) -> Outcome:
    task = plan_dropout_modes(spec, ctx)[0]
    out = outputs[task.id]
    what = "dropout backward after a test-mode forward (the notebook's order: forward with is_training=True, " \
           "then with is_training=False, then backward)"
    if not out.ok:
        return failed_task(out, what)
    same = _follows_last_forward(task, out)
    if same is None:
        return Outcome(0.0, f"{what} returned the wrong shape")
    if same:
        return Outcome(1.0, "dropout backward after a test-mode forward is the backward of that forward")
    return Outcome(0.0, f"{what} does not return the gradient of the last forward pass (at test time the "
                        "layer is the identity, so dx should equal dout)")


# ---------------------------------------------------------------- softmax + cross entropy (handout)

def score_softmax_handout(spec, ctx, outputs, reference) -> Outcome:
    out = outputs[plan_numeric(spec, ctx)[0].id]
    if not out.ok:
        return failed_task(out, "cross_entropy forward/backward")
    expected, tol_loss, tol = handout(ctx).EXPECTED["softmax_ce_loss"], 0.01, spec.params["tolerance"]
    loss = float(np.asarray(out.arrays.get("loss", np.nan)).reshape(-1)[0])
    problems = []
    if not abs(loss - expected) <= tol_loss:
        problems.append(f"loss {loss:.5g}; expected about {expected} (log 6) for tiny logits over 6 classes")
    errors, grad_problems = _compare(out.arrays, {"dx": out.arrays.get("num_dx")}, ["dx"], tol)
    problems += [f"dx: {p}" for p in grad_problems]
    details = {"expected": f"loss {expected} ± {tol_loss}, dx relative error < {tol}", "got": {"loss": loss, **errors}}
    return _score_parts(2 - len(problems), 2, f"loss {loss:.5g} and dx match", problems, details)


# ---------------------------------------------------------------- SmallFullyConnectedNetwork

def plan_small_fcn(spec, ctx):
    arrays, params = _arrays(handout(ctx).small_fcn_inputs())
    return [_task(spec, "small_fcn", "handout", params, arrays)]


def score_small_fcn(spec, ctx, outputs, reference) -> Outcome:
    task = plan_small_fcn(spec, ctx)[0]
    out = outputs[task.id]
    if not out.ok:
        return failed_task(out, "SmallFullyConnectedNetwork")
    hc = handout(ctx)
    std = hc.EXPECTED["small_fcn_init_std"]
    problems = []
    stds = [float(out.arrays[f"init_w{i}_std"]) for i in (1, 2)]
    biases = [float(out.arrays[f"init_b{i}_absmax"]) for i in (1, 2)]
    if any(abs(s - std) > 2e-3 for s in stds) or any(b > 1e-12 for b in biases):
        problems.append(f"initialisation: weight std {stds[0]:.4f} / {stds[1]:.4f} (expected {std}), "
                        f"largest bias {max(biases):.2g} (expected 0)")
    _, p = _compare(out.arrays, {"scores": hc.EXPECTED["small_fcn_scores"]}, ["scores"], 1e-6)
    problems += p
    loss = float(out.arrays["loss"])
    if abs(loss - hc.EXPECTED["small_fcn_loss"]) > 1e-8:
        problems.append(f"loss {loss:.12g}; the handout's is {hc.EXPECTED['small_fcn_loss']}")
    keys = ["dw1", "db1", "dw2", "db2"]
    if task.id in reference:
        _, p = _compare(out.arrays, reference[task.id].arrays, keys, spec.params["tolerance"])
    else:
        # The student kit has no reference: the handout's own test, the student's analytic
        # gradients against centered differences of their own loss (which the probe returns).
        numeric = {k: out.arrays[f"num_{k}"] for k in keys if f"num_{k}" in out.arrays}
        _, p = _compare(out.arrays, numeric, [k for k in keys if k in numeric], HANDOUT_GRAD_TOLERANCE)
    problems += [f"gradient {q}" for q in p[:1]]
    return _score_parts(4 - len(problems), 4, "initialisation, scores, loss 2.4248995879903195 and gradients "
                                              "all match", problems)


# ---------------------------------------------------------------- DropoutNet

def plan_dropout_net(spec, ctx):
    arrays, params = _arrays(handout(ctx).dropout_net_inputs())
    return [_task(spec, "dropout_net", "handout", params, arrays, timeout=60.0)]


def score_dropout_net(spec, ctx, outputs, reference) -> Outcome:
    task = plan_dropout_net(spec, ctx)[0]
    out = outputs[task.id]
    if not out.ok:
        return failed_task(out, "DropoutNet gradient check")
    tol = spec.params["tolerance"]
    keeps = task.params["keep_probs"]
    bad = []
    for k, keep in enumerate(keeps):
        pairs = [(out.arrays[f"grad_{k}_{j}"], out.arrays[f"num_{k}_{j}"]) for j in range(100)
                 if f"grad_{k}_{j}" in out.arrays]
        worst = max((gradient_error(g, n) for g, n in pairs if g.shape == n.shape), default=np.inf)
        if not pairs or any(g.shape != n.shape for g, n in pairs) or worst > tol:
            bad.append(f"keep_prob={keep}: largest relative error {worst:.2e} > {tol:g}")
    return _score_parts(len(keeps) - len(bad), len(keeps), "DropoutNet gradients match the numerical gradient "
                        "for every keep_prob", ["DropoutNet " + b for b in bad])


# ---------------------------------------------------------------- optimizers

def plan_opt_published(spec, ctx):
    name = spec.params["inputs"]
    arrays, params = _arrays(getattr(handout(ctx), f"{name}_inputs")())
    fn = "sgd_one_step" if name == "sgd_wd" else "adam_one_step"
    return [_task(spec, fn, "handout", params, arrays)]


def score_opt_published(spec, ctx, outputs, reference) -> Outcome:
    out = outputs[plan_opt_published(spec, ctx)[0].id]
    what = spec.params["what"]
    if not out.ok:
        return failed_task(out, what)
    expected = {k: handout(ctx).EXPECTED[v] for k, v in spec.params["expected"].items()}
    tol = spec.params["tolerance"]
    errors, problems = _compare(out.arrays, expected, list(expected), tol)
    details = {"expected": "the handout's matrices", "got": errors, "tolerance": tol}
    return _score_parts(len(expected) - len(problems), len(expected),
                        f"{what} matches the handout's matrices", [f"{what}: {p}" for p in problems], details)


def _network_arrays(case: dict, steps: int) -> dict:
    rng = np.random.RandomState(case["seed"])
    shapes = case["shapes"]
    arrays = {}
    for j, (d_in, d_out) in enumerate(zip(shapes[:-1], shapes[1:])):
        arrays[f"w{j}"], arrays[f"b{j}"] = rng.randn(d_in, d_out), rng.randn(d_out)
        for step in range(steps):
            arrays[f"gw{step}_{j}"], arrays[f"gb{step}_{j}"] = rng.randn(d_in, d_out), rng.randn(d_out)
    return arrays


def plan_opt_steps(spec, ctx):
    tasks = []
    for case in spec.params["cases"]:
        params = {k: v for k, v in case.items() if k not in ("seed", "shapes")}
        params["optimizer"] = spec.params["optimizer"]
        tasks.append(_task(spec, "optimizer_steps", f"{spec.id}-{case['seed']}", params,
                           _network_arrays(case, case["steps"])))
    return tasks


def score_opt_steps(spec, ctx, outputs, reference) -> Outcome:
    tasks = plan_opt_steps(spec, ctx)
    what, tol = spec.params["what"], spec.params["tolerance"]
    failure = _first_failure(outputs, tasks, what)
    if failure:
        return failure
    passed = 0
    for task in tasks:
        want = reference[task.id].arrays
        _, problems = _compare(outputs[task.id].arrays, want, sorted(want), tol)
        passed += not problems
    msg = (f"{what}: parameters after several steps match the reference on every hidden case" if passed == len(tasks)
           else f"{what}: parameters after several steps differ from the reference "
                f"({len(tasks) - passed} of {len(tasks)} hidden cases)")
    return Outcome(passed / len(tasks), msg)


def score_adam_steps(spec, ctx, outputs, reference) -> Outcome:
    """Several Adam steps, compared with every way of writing Adam the fairness decisions accept
    (t per step, per layer call or per parameter; decay before or after the update), and with
    the known wrong ones so that the message can say which mistake it is."""
    tasks = plan_opt_steps(spec, ctx)
    what, tol = spec.params["what"], spec.params["tolerance"]
    failure = _first_failure(outputs, tasks, what)
    if failure:
        return failure
    matches = [classify(outputs[t.id].arrays, t.arrays, t.params, tol) for t in tasks]
    details = {"variants": [f"{COUNTERS[m.counter]}; {m.decay.name}" for m in matches],
               "relative_errors": [m.error for m in matches], "tolerance": tol}
    wrong = [m for m in matches if m.error > tol or m.decay.verdict == "fail"]
    if wrong:
        m = wrong[0]
        if m.error > tol:
            message = (f"{what}: parameters after several steps differ from the reference and from every "
                       f"accepted variant (t per step, per layer call or per parameter; weight decay before "
                       f"or after the update); closest: {m.decay.name} decay, {COUNTERS[m.counter]}")
            return Outcome(0.0, f"{message} (relative error {m.error:.2e})", details, safe_message=message)
        message = f"{what}: the parameters follow {m.decay.says}"
        return Outcome(0.0, message, details, safe_message=message)
    names = sorted({COUNTERS[m.counter] for m in matches})
    decays = [m.decay for m in matches if m.decay.name != "decoupled"]
    message = f"{what}: parameters after several steps match an accepted Adam ({', '.join(names)}"
    message += f"; {decays[0].says})" if decays else ")"
    flags = [f"{decays[0].says}: earns the points; look at the written weight decay vs L2 comparison"] \
        if decays and decays[0].verdict == "flag" else []
    return Outcome(1.0, message, details, flags=flags, safe_message=message)


def plan_regularize(spec, ctx):
    case = spec.params["case"]
    return [_task(spec, "regularize", f"{spec.params['penalty']}-{case['seed']}",
                  {"kind": spec.params["penalty"], "lam": spec.params["lam"]}, _network_arrays(case, 1))]


def score_regularize(spec, ctx, outputs, reference) -> Outcome:
    task = plan_regularize(spec, ctx)[0]
    out = outputs[task.id]
    kind, lam = spec.params["penalty"], spec.params["lam"]
    if not out.ok:
        return failed_task(out, f"apply_{kind}_regularization")
    want = reference[task.id].arrays if task.id in reference else _rule_gradients(task, kind, lam)
    weights = sorted(k for k in want if k.startswith("gw"))
    _, problems = _compare(out.arrays, want, weights, 1e-9)
    # The handout does not say whether biases are regularised: either convention earns credit.
    for key in sorted(k for k in want if k.startswith("gb")):
        got = out.arrays.get(key)
        raw = task.arrays[key.replace("gb", "gb0_")]
        if got is None or got.shape != raw.shape or not (np.allclose(got, want[key]) or np.allclose(got, raw)):
            problems.append(f"bias gradient {key} is neither regularised nor left alone")
    rule = "lam * sign(theta)" if kind == "l1" else "a multiple of theta"
    if problems:
        unchanged = all(np.allclose(out.arrays.get(k, np.nan), task.arrays[k.replace("gw", "gw0_")]) for k in weights)
        hint = " (the gradients are unchanged: is the method still `pass`?)" if unchanged else ""
        return Outcome(0.0, f"apply_{kind}_regularization({lam}) should add {rule} to every weight gradient"
                            f"{hint}; {problems[0]}")
    return Outcome(1.0, f"apply_{kind}_regularization adds {rule} to the gradients")


def _rule_gradients(task: Task, kind: str, lam: float) -> dict[str, np.ndarray]:
    """What the handout's rule gives (the student kit, which has no reference outputs):
    J + lam * sum|theta| adds lam * sign(theta), J + lam * sum(theta**2) adds 2 * lam * theta."""
    out = {}
    for key in (k for k in task.arrays if k[0] in "wb" and k[1:].isdigit()):
        theta, grad = task.arrays[key], task.arrays[f"g{key[0]}0_{key[1:]}"]
        out[f"g{key}"] = grad + (lam * np.sign(theta) if kind == "l1" else 2.0 * lam * theta)
    return out


def _notebook(ctx: Context) -> Path:
    return Path(ctx.submission.path) / "Problem_1.ipynb"


def plan_l2_equivalence(spec, ctx):
    try:
        lam = read_values(_notebook(ctx), ("l2_lambda",))["l2_lambda"]
    except NotebookValueError:
        return []
    case = spec.params["case"]
    params = {"l2_lambda": float(lam), "lr": spec.params["lr"], "weight_decay": spec.params["weight_decay"],
              "steps": spec.params["steps"], "seed": case["seed"], "batch_size": case["batch_size"]}
    rng = np.random.RandomState(case["seed"])
    # CIFAR-shaped images through the notebook's FullyConnectedNetwork (flatten first)
    arrays = {"X": rng.randn(case["samples"], 3, 32, 32), "y": rng.randint(20, size=case["samples"])}
    return [_task(spec, "l2_versus_weight_decay", f"lam{lam!r}", params, arrays, timeout=30.0)]


def score_l2_equivalence(spec, ctx, outputs, reference) -> Outcome:
    try:
        lam = read_values(_notebook(ctx), ("l2_lambda",))["l2_lambda"]
    except NotebookValueError as exc:
        return Outcome(0.0, f"cannot read the L2 lambda: {exc}", status="error")
    out = outputs[plan_l2_equivalence(spec, ctx)[0].id]
    if not out.ok:
        return failed_task(out, f"SGD with L2 regularisation (lambda {lam:g} from the notebook)")
    pairs = [(out.arrays[k], out.arrays["wd_" + k[3:]]) for k in out.arrays
             if k.startswith("l2_") and k != "l2_loss" and "wd_" + k[3:] in out.arrays]
    # Relative to the parameters' size (fairness decisions: an equivalence that accumulates over
    # steps is judged against the magnitude of what is compared): the largest difference over the
    # largest parameter. Float32 parameters updated in place agree to ~1e-8; a wrong lambda (a
    # factor of 2, or lambda = weight decay) leaves them ~5e-4 apart after 5 steps.
    if pairs and all(a.shape == b.shape for a, b in pairs):
        scale = max(float(np.max(np.abs(b), initial=0.0)) for _, b in pairs)
        gap = max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in pairs)
        worst = gap / scale if scale > 0 and np.isfinite(gap) else np.inf
    else:
        worst = np.inf
    tol = spec.params["tolerance"]
    details = {"expected": f"identical parameters within {tol:g} of the largest parameter", "got": worst,
               "l2_lambda": lam}
    if worst <= tol:
        return Outcome(1.0, f"with l2_lambda = {lam:g} from the notebook, L2 regularisation gives the same parameters "
                            f"as weight decay {spec.params['weight_decay']:g} (largest difference {worst:.1e} of the "
                            f"largest parameter)", details)
    return Outcome(0.0, f"with l2_lambda = {lam:g} from the notebook, L2 and weight decay "
                        f"{spec.params['weight_decay']:g} at lr {spec.params['lr']:g} end {worst:.2e} apart "
                        f"(relative to the largest parameter) after {spec.params['steps']} steps "
                        f"(must be within {tol:g})", details)


# ---------------------------------------------------------------- TinyNet

def _tinynet_task_id(ctx: Context, hyper: dict) -> str:
    # On a stand-in the reference trains with the student's hyper-parameters: one reference run
    # per distinct setting (the engine caches reference outputs by task id). On the real data the
    # handout's absolute threshold applies, so one id: the reference trains once per grading run.
    if _tinynet_rule(ctx)["rule"] != "reference":
        return "tinynet_train"
    return "tinynet_train-" + "-".join(f"{hyper[k]!r}" for k in HYPER)


def _tinynet_rule(ctx: Context) -> dict:
    rule = dict(ctx.thresholds.get("tinynet", {}))
    rule.setdefault("rule", "absolute")
    return rule


def tinynet_architecture(fully_conn: Path) -> dict | None:
    """The hidden size and init scale of the student's TinyNet, read from `fully_conn.py` without
    running it (the first `fc(3072, H, scale)` in TinyNet.__init__, over constants bound there);
    None when they are not literally readable (e.g. built by a helper function)."""
    try:
        tree = parse(fully_conn.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TinyNet"), None)
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) if cls else None
    if init is None:
        return None
    env = resolve_bindings([ast.unparse(stmt) for stmt in init.body])
    for call in ast.walk(init):
        name = getattr(call, "func", None)
        name = getattr(name, "id", getattr(name, "attr", None))
        if not isinstance(call, ast.Call) or name != "fc":
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        args = [call.args[i] if i < len(call.args) else keywords.get(key)
                for i, key in enumerate(("input_dim", "output_dim", "init_scale"))]
        values = [evaluate(a, env) if a is not None else 0.002 for a in args]  # 0.002: fc's default scale
        if any(isinstance(v, Unreadable) or v is None for v in values):
            return None
        if values[0] == 3072:
            return {"hidden": int(values[1]), "init_scale": float(values[2])}
    return None


def plan_tinynet(spec, ctx):
    try:
        hyper = read_values(_notebook(ctx), HYPER)
    except NotebookValueError:
        return []
    params = {"hyper": hyper, "lr": 0.1, "seed": 123}
    task_id = _tinynet_task_id(ctx, hyper)
    if _tinynet_rule(ctx)["rule"] == "reference":
        arch = tinynet_architecture(Path(ctx.submission.path) / "lib" / "mlp" / "fully_conn.py")
        if arch:  # the reference then trains a TinyNet of the student's shape and init
            params["architecture"] = arch
            task_id += f"-h{arch['hidden']}-s{arch['init_scale']!r}"
    return [Task(id=task_id, fn="tinynet_train", params=params,
                 timeout=float(ctx.thresholds.get("timeout", 1800)), memory=6 * GiB, needs_data=True)]


def _accuracy(out: TaskOutput, y: np.ndarray) -> float | None:
    pred = out.arrays.get("pred_test")
    if pred is None or pred.shape != y.shape:
        return None
    return float(np.mean(pred == y))


def score_tinynet(spec, ctx, outputs, reference) -> Outcome:
    try:
        hyper = read_values(_notebook(ctx), HYPER)
    except NotebookValueError as exc:
        return Outcome(0.0, f"cannot read the TinyNet hyper-parameters: {exc}", status="error")
    task = plan_tinynet(spec, ctx)[0]
    task_id = task.id
    out = outputs[task_id]
    setting = ", ".join(f"{k}={v}" for k, v in hyper.items())
    if not out.ok:
        return failed_task(out, f"training TinyNet ({setting})")
    y = ctx.dataset.y_test
    acc = _accuracy(out, y)
    if acc is None:
        pred = out.arrays.get("pred_test")
        return Outcome(0.0, f"TinyNet predictions have shape {None if pred is None else pred.shape}, expected {y.shape}")
    rule = _tinynet_rule(ctx)
    zero = rule["zero"]
    hidden = [int(h) for h in np.asarray(out.arrays.get("hidden_sizes", [])).reshape(-1)]
    details = {"got": acc, "hyper_parameters": hyper, "rule": rule["rule"], "hidden_sizes": hidden}
    if rule["rule"] == "reference" and task_id not in reference:
        # A student kit carries no reference to train with these settings: an indication from
        # the stand-in's fixed calibration (the reference reached 0.58 with the notebook's
        # settings); the TA's grade applies the rule above.
        full = rule["kit_full"]
        why = (f"{ctx.dataset.name} is an offline stand-in; the final grade compares with the reference trained with "
               f"these hyper-parameters, which this self-check does not have, so it shows the stand-in's fixed bar "
               f"{full} as an indication only")
        details["expected"] = f"held-out accuracy >= {full} (indication)"
    elif rule["rule"] == "reference":
        ref_acc = _accuracy(reference[task_id], y)
        ref_hidden = [int(h) for h in np.asarray(reference[task_id].arrays.get("hidden_sizes", [])).reshape(-1)]
        full = ref_acc - rule["margin"]
        why = (f"{ctx.dataset.name} is an offline stand-in, where accuracy depends on the hyper-parameters more than "
               f"on the code, so the bar is what the reference reaches with the same hyper-parameters, data and seed: "
               f"{ref_acc:.4f}, minus a margin of {rule['margin']:g}")
        arch = task.params.get("architecture")
        if arch:
            why += f" (the reference built like this TinyNet: hidden size {arch['hidden']}, init scale {arch['init_scale']:g})"
        elif hidden != ref_hidden:
            why += (f" (this TinyNet's shape is not literally readable from fully_conn.py, so the reference keeps its "
                    f"own hidden size {ref_hidden}; this one has {hidden})")
        details.update({"expected": f"held-out accuracy >= {full:.4f}", "reference_accuracy": ref_acc,
                        "margin": rule["margin"], "reference_hidden_sizes": ref_hidden})
    else:
        full = rule["full"]
        why = f"the handout's bar on {ctx.dataset.name}: full points from {full}"
        details["expected"] = f"held-out accuracy >= {full}"
    if acc >= full:
        fraction = 1.0
    else:
        fraction = float(np.clip((acc - zero) / (full - zero), 0, 1)) if full > zero else 0.0
    details["why"] = why
    artifacts = {k: v for k, v in out.arrays.items() if k not in ("pred_test", "hidden_sizes")}
    return Outcome(fraction, f"TinyNet ({setting}): held-out accuracy {acc:.4f} on {ctx.dataset.name}; rule: {why} "
                             f"(none at or below {zero})", details, artifacts=artifacts)


KINDS = {
    "published": Kind(plan_published, score_published),
    "numeric": Kind(plan_numeric, score_numeric),
    "numeric_reference": Kind(plan_numeric, score_numeric_reference, reference=True),
    "reference": Kind(plan_reference, score_reference, reference=True),
    "dropout_stats": Kind(plan_dropout_stats, score_dropout_stats),
    "dropout_mask": Kind(plan_dropout_mask, score_dropout_mask),
    "dropout_modes": Kind(plan_dropout_modes, score_dropout_modes),
    "softmax_handout": Kind(plan_numeric, score_softmax_handout),
    "small_fcn": Kind(plan_small_fcn, score_small_fcn, reference=True),
    "dropout_net": Kind(plan_dropout_net, score_dropout_net),
    "optimizer_published": Kind(plan_opt_published, score_opt_published),
    "optimizer_steps": Kind(plan_opt_steps, score_opt_steps, reference=True, safe_messages=True),  # counts only
    "adam_steps": Kind(plan_opt_steps, score_adam_steps),
    "regularize": Kind(plan_regularize, score_regularize, reference=True),
    "l2_equivalence": Kind(plan_l2_equivalence, score_l2_equivalence),
    "tinynet": Kind(plan_tinynet, score_tinynet, reference=True, curves=True),
}
