"""Inputs and published numbers of every numeric check the `modular` handout prints.

Data only: each ``*_inputs()`` function returns the handout's exact inputs as numpy
arrays (same ``np.linspace`` constructions, shapes and seeds). Where the handout draws
its inputs from the unseeded global generator, a fixed ``seed`` argument makes them
reproducible (any seed is as good as the handout's). ``EXPECTED`` holds the numbers
and matrices the handout prints and compares to, ``TOLERANCES`` the bounds the handout
states, ``SEED_PRINTED`` the errors the seed write-up printed for the deterministic
checks (a correct implementation reproduces them to a few ulps).

``run_checks(lib_parent)`` runs a complete implementation (by default the reference
solution next to this file) on every check and returns plain numbers; nothing is
printed outside ``__main__``.

    python handout_checks.py [PATH_CONTAINING_lib]
"""
from __future__ import annotations

import importlib
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- inputs
def fc_forward_inputs():
    """FC forward: flatten (3, 7, 6, 4) -> fc(168 -> 4) with linspace x, w, b."""
    input_bz = 3
    input_dim = (7, 6, 4)
    output_dim = 4
    input_size = input_bz * np.prod(input_dim)
    weight_size = output_dim * np.prod(input_dim)
    x = np.linspace(-0.1, 0.4, num=input_size).reshape(input_bz, *input_dim)
    w = np.linspace(-0.2, 0.2, num=weight_size).reshape(np.prod(input_dim), output_dim)
    b = np.linspace(-0.3, 0.3, num=output_dim)
    return {"x": x, "w": w, "b": b, "input_dim": int(np.prod(input_dim)),
            "output_dim": output_dim, "init_scale": 0.02}


def fc_backward_inputs(seed=0):
    """FC backward: inp (15, 2, 2, 3) flattened to (15, 12), fc(12 -> 15), dout (15, 15)."""
    rng = np.random.RandomState(seed)
    return {"inp": rng.randn(15, 2, 2, 3), "w": rng.randn(12, 15), "b": rng.randn(15),
            "dout": rng.randn(15, 15), "init_scale": 5e-2}


def gelu_forward_inputs():
    """GeLU forward on linspace(-1.5, 1.5, 12) reshaped (3, 4)."""
    return {"x": np.linspace(-1.5, 1.5, num=12).reshape(3, 4)}


def gelu_backward_inputs(seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(15, 15)
    return {"x": x, "dout": rng.randn(*x.shape)}


def dropout_forward_inputs(seed=0):
    """x ~ N(5, 1) of shape (100, 100); keep probabilities 0, 0.25, 0.5, 0.75, 1."""
    rng = np.random.RandomState(seed)
    return {"x": rng.randn(100, 100) + 5.0, "keep_probs": [0, 0.25, 0.50, 0.75, 1]}


def dropout_backward_inputs(seed=0):
    """dropout(0.75, seed=100).forward(x, True, seed=1), numeric gradient with seed=1."""
    rng = np.random.RandomState(seed)
    x = rng.randn(5, 5) + 5
    return {"x": x, "dout": rng.randn(*x.shape), "keep_prob": 0.75,
            "layer_seed": 100, "forward_seed": 1}


def fc_gelu_inputs(seed=0):
    """TestFCGeLU: x (3, 5, 3) -> flatten -> fc(15 -> 5) -> gelu, dout (3, 5)."""
    rng = np.random.RandomState(seed)
    return {"x": rng.randn(3, 5, 3), "w": rng.randn(15, 5), "b": rng.randn(5),
            "dout": rng.randn(3, 5)}


def softmax_ce_inputs(seed=0):
    """100 tiny logits over 6 classes: the loss is about log(6) = 1.792."""
    rng = np.random.RandomState(seed)
    num_classes, num_inputs = 6, 100
    x = 0.001 * rng.randn(num_inputs, num_classes)
    y = rng.randint(num_classes, size=num_inputs)
    return {"x": x, "y": y}


def small_fcn_inputs():
    """SmallFullyConnectedNetwork (4 -> 30 -> 7). Call np.random.seed(global_seed)
    right before constructing the model for the initialisation check."""
    N, D = 4, 4
    H, C = 30, 7
    w1 = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    w2 = np.linspace(-0.2, 0.2, num=H * C).reshape(H, C)
    b1 = np.linspace(-0.6, 0.2, num=H)
    b2 = np.linspace(-0.9, 0.1, num=C)
    feats = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    y = np.asarray([0, 5, 1, 4])
    return {"global_seed": 1234, "N": N, "D": D, "H": H, "C": C, "std": 0.02,
            "w1": w1, "b1": b1, "w2": w2, "b2": b2, "feats": feats, "y": y}


def dropout_net_inputs():
    """DropoutNet gradient check: X (3, 15), y in [0, 10), seed 1234, keep_prob 0/0.25/0.5.
    For each keep_prob: np.random.seed(seed); DropoutNet(keep_prob, seed=seed);
    forward(X, True, seed=seed); numeric gradients with h=1e-5."""
    seed = 1234
    rng = np.random.RandomState(seed)  # same stream as np.random.seed(1234)
    N, D, C = 3, 15, 10
    X = rng.randn(N, D)
    y = rng.randint(C, size=(N,))
    return {"seed": seed, "X": X, "y": y, "keep_probs": [0, 0.25, 0.5]}


def sgd_wd_inputs():
    """One SGD step, lr 1e-3, weight decay 1e-4, on layer sgd_fc of sequential(fc(4, 5))."""
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return {"N": N, "D": D, "name": "sgd_fc", "w": w, "dw": dw, "lr": 1e-3,
            "weight_decay": 1e-4}


def adam_inputs():
    """One Adam step: Adam(net, 1e-2, 0.9, 0.999, t=5) with given mt / vt."""
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    return {"N": N, "D": D, "name": "adam_fc", "w": w, "dw": dw, "m": m, "v": v,
            "lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "t": 5}


def regularization_inputs():
    """Not printed by the handout: one SGD step (lr 0.01) after L1 / L2 regularisation,
    and the L2 lambda that reproduces weight decay 1e-4 (the notebook's TODO)."""
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    b = np.linspace(-0.1, 0.1, num=D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    db = np.linspace(0.3, -0.2, num=D)
    return {"name": "reg_fc", "w": w, "b": b, "dw": dw, "db": db, "lr": 0.01,
            "l1_lambda": 1e-3, "weight_decay": 1e-4,
            # BEGIN SOLUTION: the notebook's TODO value stays out of the student kit
            "l2_lambda": 0.005,
            # STUB: "l2_lambda": None,
            # END SOLUTION
            }


def synthetic_cifar(n_train=2000, n_val=500, n_test=500, num_classes=20, noise=1.0, seed=0):
    """CIFAR-shaped stand-in data (N, 32, 32, 3) float32: Gaussian class means + noise.
    Returns the dict CIFAR100_data returns (no real images; for tests only)."""
    rng = np.random.RandomState(seed)
    means = rng.randn(num_classes, 32, 32, 3).astype(np.float32)

    def draw(n):
        labels = rng.randint(num_classes, size=n)
        data = means[labels] + noise * rng.randn(n, 32, 32, 3).astype(np.float32)
        return data.astype(np.float32), labels

    data_train, labels_train = draw(n_train)
    data_val, labels_val = draw(n_val)
    data_test, labels_test = draw(n_test)
    mean_image = data_train.mean(axis=(0, 1, 2), keepdims=True)
    std_image = data_train.std(axis=(0, 1, 2), keepdims=True)
    norm = lambda a: (a - mean_image) / std_image
    return {"data_train": norm(data_train), "labels_train": labels_train,
            "data_val": norm(data_val), "labels_val": labels_val,
            "data_test": norm(data_test), "labels_test": labels_test,
            "label_names": ["class_%d" % i for i in range(num_classes)],
            "mean_image": mean_image, "std_image": std_image}


# ---------------------------------------------------------------- published numbers
EXPECTED = {
    "fc_forward_out": np.array([[0.63910291, 0.83740057, 1.03569824, 1.23399591],
                                [0.61401587, 0.82903823, 1.04406058, 1.25908294],
                                [0.58892884, 0.82067589, 1.05242293, 1.28416997]]),
    "gelu_forward_out": np.array([[-0.10042842, -0.13504766, -0.16231757, -0.1689214],
                                  [-0.13960493, -0.06078651, 0.07557713, 0.26948598],
                                  [0.51289678, 0.79222788, 1.09222506, 1.39957158]]),
    # loss "around 1.792" for 0.001 * randn logits over 6 classes (log 6 = 1.7918)
    "softmax_ce_loss": 1.792,
    "small_fcn_scores": np.asarray([
        [-2.33881897, -1.92174121, -1.50466344, -1.08758567, -0.6705079, -0.25343013, 0.16364763],
        [-1.57214916, -1.1857013, -0.79925345, -0.41280559, -0.02635774, 0.36009011, 0.74653797],
        [-0.80178618, -0.44604469, -0.0903032, 0.26543829, 0.62117977, 0.97692126, 1.33266275],
        [-0.00331319, 0.32124836, 0.64580991, 0.97037146, 1.29493301, 1.61949456, 1.94405611]]),
    "small_fcn_loss": 2.4248995879903195,
    "small_fcn_init_std": 0.02,
    "dropout_zero_fraction": {0: 0.0, 0.25: 0.75, 0.5: 0.5, 0.75: 0.25, 1: 0.0},
    "sgd_wd_updated_w": np.asarray([
        [-0.39936, -0.34678632, -0.29421263, -0.24163895, -0.18906526],
        [-0.13649158, -0.08391789, -0.03134421, 0.02122947, 0.07380316],
        [0.12637684, 0.17895053, 0.23152421, 0.28409789, 0.33667158],
        [0.38924526, 0.44181895, 0.49439263, 0.54696632, 0.59954]]),
    "adam_updated_w": np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]]),
    "adam_v": np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]]),
    "adam_m": np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]]),
    "tinynet_min_val_acc": 0.30,
    # the notebook's TODO: lambda with lr * 2 * lambda == weight decay (lr 0.01, wd 1e-4)
    # BEGIN SOLUTION: the notebook's TODO value stays out of the student kit
    "l2_lambda_for_weight_decay": 0.005,
    # STUB: "l2_lambda_for_weight_decay": None,
    # END SOLUTION
}

# Bounds as the handout states them ("should not be larger than", "around").
TOLERANCES = {
    "fc_forward": 1e-8,            # rel_error(out, correct_out), "not larger than 1e-8"
    "fc_backward": 1e-7,           # rel_error vs numeric; handout: "around 1e-9 / 1e-10"
    "gelu_forward": 1e-7,          # "not larger than 1e-7"
    "gelu_backward": 1e-4,         # "not larger than 1e-4" vs numeric
    "dropout_zero_fraction": 0.02,  # |fraction zeroed - (1 - keep_prob)| (10,000 units)
    "dropout_mean_rel": 0.08,      # |mean(train out) - mean(x)| / mean(x)
    "dropout_backward": 1e-10,     # "not larger than 1e-10"
    "fc_gelu": 1e-7,               # "not larger than 1e-7"; numeric noise alone reaches 1.004e-7
                                   # for a correct network on 1 of 20 random inputs (seed 8)
    "softmax_ce_loss": 0.01,       # |loss - 1.792|
    "softmax_ce_dx": 1e-7,         # "at the scale of 1e-8 (or smaller)"
    "small_fcn_init": 0.02 / 10,   # |std(w) - 0.02| < std / 10, biases exactly 0
    "small_fcn_scores": 1e-6,      # sum |scores - correct_scores|
    "small_fcn_loss": 1e-10,       # |loss - correct_loss|
    "small_fcn_grads": 1e-6,       # "no larger than 1e-6"
    "dropout_net_grads": 1e-3,     # "around or less than 1e-3"
    "sgd_wd": 1e-6,                # "around or less than 1e-6"
    "adam": 1e-6,                  # "around 1e-7 or less": w error is 1.14e-7 when exact
    "regularization": 1e-12,       # derived checks (not printed by the handout)
}

# Errors printed in the seed write-up for the deterministic checks.
SEED_PRINTED = {
    "fc_forward": 4.02601593296122e-09,
    "gelu_forward": 1.8037541876132445e-08,
    "sgd_wd": 8.677112905190533e-08,
    "adam_w": 1.1395691798535431e-07,
    "adam_m": 4.214963193114416e-09,
    "adam_v": 4.208314038113071e-09,
    "softmax_ce_loss": 1.7917287629103629,
    "tinynet_val_acc": 0.3112,
}


# --------------------------------------------------------------------- reference run
def rel_error(x, y):
    """The handout's relative error (CS231n)."""
    return float(np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y)))))


def load_lib(lib_parent=None):
    """Import the `lib` package found in lib_parent (default: this folder).
    Returns a dict of the modules: layer_utils, fully_conn, optim, grad_check."""
    lib_parent = os.path.abspath(lib_parent or HERE)
    if lib_parent in sys.path:
        sys.path.remove(lib_parent)
    sys.path.insert(0, lib_parent)
    for name in list(sys.modules):
        if name == "lib" or name.startswith("lib."):
            mod_file = getattr(sys.modules[name], "__file__", None) or ""
            if not os.path.abspath(mod_file).startswith(lib_parent + os.sep):
                del sys.modules[name]
    return {
        "layer_utils": importlib.import_module("lib.mlp.layer_utils"),
        "fully_conn": importlib.import_module("lib.mlp.fully_conn"),
        "optim": importlib.import_module("lib.optim"),
        "grad_check": importlib.import_module("lib.grad_check"),
    }


def _result(error, tol, **extra):
    error = float(error)
    out = {"error": error, "tol": float(tol), "passed": bool(error < tol) and math.isfinite(error)}
    out.update(extra)
    return out


def _fc_param_names(net):
    """(weight name, bias name) of every layer with parameters, in layer order; works for
    any parameter names (uses the layer's w_name / b_name when it has them)."""
    names = []
    for layer in net.layers:
        if not getattr(layer, "params", None):
            continue
        w = getattr(layer, "w_name", None) or next(n for n in layer.params if n.endswith("_w"))
        b = getattr(layer, "b_name", None) or next(n for n in layer.params if n.endswith("_b"))
        names.append((w, b))
    return names


def _check_fc_forward(L, seed):
    """fc forward"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = fc_forward_inputs()
    flat = lu.flatten(name="flatten_test")
    layer = lu.fc(d["input_dim"], d["output_dim"], init_scale=d["init_scale"], name="fc_test")
    layer.params[layer.w_name] = d["w"]
    layer.params[layer.b_name] = d["b"]
    out = layer.forward(flat.forward(d["x"]))
    res["fc_forward"] = _result(rel_error(out, EXPECTED["fc_forward_out"]), TOLERANCES["fc_forward"],
                                seed_printed=SEED_PRINTED["fc_forward"])
    return res


def _check_fc_backward(L, seed):
    """fc backward"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = fc_backward_inputs(seed)
    flat = lu.flatten(name="flatten_test")
    x = flat.forward(d["inp"])
    layer = lu.fc(int(np.prod(x.shape[1:])), 15, init_scale=d["init_scale"], name="fc_test")
    layer.params[layer.w_name] = d["w"]
    layer.params[layer.b_name] = d["b"]
    dx_num = num_arr(lambda x: layer.forward(x), x, d["dout"])
    dw_num = num_arr(lambda w: layer.forward(x), d["w"], d["dout"])
    db_num = num_arr(lambda b: layer.forward(x), d["b"], d["dout"])
    layer.forward(x)
    dx = layer.backward(d["dout"])
    dw, db = layer.grads[layer.w_name], layer.grads[layer.b_name]
    dinp = flat.backward(dx)
    errs = {"dx": rel_error(dx_num, dx), "dw": rel_error(dw_num, dw), "db": rel_error(db_num, db)}
    shape_ok = tuple(dinp.shape) == tuple(d["inp"].shape)
    res["fc_backward"] = _result(max(errs.values()) if shape_ok else np.inf,
                                 TOLERANCES["fc_backward"], parts=errs, dinp_shape_ok=shape_ok)
    return res


def _check_gelu_forward(L, seed):
    """gelu forward"""
    lu = L["layer_utils"]
    g = lu.gelu(name="gelu_f")
    out = g.forward(gelu_forward_inputs()["x"])
    return {"gelu_forward": _result(rel_error(out, EXPECTED["gelu_forward_out"]), TOLERANCES["gelu_forward"],
                                    seed_printed=SEED_PRINTED["gelu_forward"])}


def _check_gelu_backward(L, seed):
    """gelu backward vs numeric gradient"""
    lu, num_arr = L["layer_utils"], L["grad_check"].eval_numerical_gradient_array
    d = gelu_backward_inputs(seed)
    g = lu.gelu(name="gelu_b")
    dx_num = num_arr(lambda x: g.forward(x), d["x"], d["dout"])
    g.forward(d["x"])
    dx = g.backward(d["dout"])
    return {"gelu_backward": _result(rel_error(dx_num, dx), TOLERANCES["gelu_backward"])}


def _check_dropout_forward(L, seed):
    """dropout forward"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = dropout_forward_inputs(seed)
    x = d["x"]
    worst_frac, worst_mean, test_identity, parts = 0.0, 0.0, True, {}
    for i, p in enumerate(d["keep_probs"]):
        layer = lu.dropout(keep_prob=p, seed=seed + i)
        out = layer.forward(x, True)
        out_test = layer.forward(x, False)
        frac = float((out == 0).mean())
        frac_err = abs(frac - EXPECTED["dropout_zero_fraction"][p])
        mean_err = abs(float(out.mean()) - float(x.mean())) / abs(float(x.mean()))
        test_identity = test_identity and bool(np.array_equal(out_test, x))
        worst_frac, worst_mean = max(worst_frac, frac_err), max(worst_mean, mean_err)
        parts[str(p)] = {"zero_fraction": frac, "train_mean": float(out.mean()),
                         "test_mean": float(out_test.mean())}
    ok = (worst_frac < TOLERANCES["dropout_zero_fraction"] and worst_mean < TOLERANCES["dropout_mean_rel"]
          and test_identity)
    res["dropout_forward"] = {"error": worst_frac, "tol": TOLERANCES["dropout_zero_fraction"],
                              "passed": bool(ok), "mean_rel_error": worst_mean,
                              "test_time_identity": test_identity, "parts": parts}
    return res


def _check_dropout_backward(L, seed):
    """dropout backward"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = dropout_backward_inputs(seed)
    layer = lu.dropout(d["keep_prob"], seed=d["layer_seed"])
    layer.forward(d["x"], True, seed=d["forward_seed"])
    dx = layer.backward(d["dout"])
    dx_num = num_arr(lambda xx: layer.forward(xx, True, seed=d["forward_seed"]), d["x"], d["dout"])
    res["dropout_backward"] = _result(rel_error(dx, dx_num), TOLERANCES["dropout_backward"])
    return res


def _check_fc_gelu(L, seed):
    """FC + GeLU cascade"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = fc_gelu_inputs(seed)
    net = fcm.TestFCGeLU()
    (w_name, b_name), = _fc_param_names(net.net)
    net.net.assign(w_name, d["w"])
    net.net.assign(b_name, d["b"])
    net.forward(d["x"])
    dx = net.backward(d["dout"])
    dw, db = net.net.get_grads(w_name), net.net.get_grads(b_name)
    x = d["x"]
    dx_num = num_arr(lambda x: net.forward(x), x, d["dout"])
    dw_num = num_arr(lambda w: net.forward(x), d["w"], d["dout"])
    db_num = num_arr(lambda b: net.forward(x), d["b"], d["dout"])
    errs = {"dx": rel_error(dx_num, dx), "dw": rel_error(dw_num, dw), "db": rel_error(db_num, db)}
    res["fc_gelu"] = _result(max(errs.values()), TOLERANCES["fc_gelu"], parts=errs)
    return res


def _check_softmax_ce(L, seed):
    """softmax + cross entropy"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = softmax_ce_inputs(seed)
    ce = lu.cross_entropy()
    dx_num = num(lambda x: ce.forward(x, d["y"]), d["x"], verbose=False)
    loss = ce.forward(d["x"], d["y"])
    dx = ce.backward()
    res["softmax_ce_loss"] = _result(abs(loss - EXPECTED["softmax_ce_loss"]), TOLERANCES["softmax_ce_loss"],
                                     loss=float(loss))
    res["softmax_ce_dx"] = _result(rel_error(dx_num, dx), TOLERANCES["softmax_ce_dx"])
    return res


def _check_small_fcn(L, seed):
    """small fully connected network"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = small_fcn_inputs()
    np.random.seed(d["global_seed"])
    model = fcm.SmallFullyConnectedNetwork()
    ce = lu.cross_entropy()
    std = d["std"]
    (w1, b1), (w2, b2) = _fc_param_names(model.net)
    init_err = max(abs(model.net.get_params(w1).std() - std), abs(model.net.get_params(w2).std() - std))
    biases_zero = bool(np.all(model.net.get_params(b1) == 0) and np.all(model.net.get_params(b2) == 0))
    res["small_fcn_init"] = _result(init_err if biases_zero else np.inf, TOLERANCES["small_fcn_init"])
    model.net.assign(w1, d["w1"])
    model.net.assign(b1, d["b1"])
    model.net.assign(w2, d["w2"])
    model.net.assign(b2, d["b2"])
    scores = model.forward(d["feats"])
    res["small_fcn_scores"] = _result(np.sum(np.abs(scores - EXPECTED["small_fcn_scores"])),
                                      TOLERANCES["small_fcn_scores"])
    loss = ce.forward(scores, d["y"])
    dloss = ce.backward()
    res["small_fcn_loss"] = _result(abs(loss - EXPECTED["small_fcn_loss"]), TOLERANCES["small_fcn_loss"],
                                    loss=float(loss))
    model.backward(dloss)
    errs = {}
    for layer in model.net.layers:
        if not layer.params:
            continue
        for name in sorted(layer.grads):
            f = lambda _: ce.forward(model.forward(d["feats"]), d["y"])
            grad_num = num(f, layer.params[name], verbose=False)
            errs[name] = rel_error(grad_num, layer.grads[name])
    res["small_fcn_grads"] = _result(max(errs.values()), TOLERANCES["small_fcn_grads"], parts=errs)
    return res


def _check_dropout_net(L, seed):
    """DropoutNet gradients"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = dropout_net_inputs()
    errs = {}
    for keep_prob in d["keep_probs"]:
        np.random.seed(d["seed"])
        model = fcm.DropoutNet(keep_prob=keep_prob, seed=d["seed"])
        ce = lu.cross_entropy()
        output = model.forward(d["X"], True, seed=d["seed"])
        ce.forward(output, d["y"])
        model.backward(ce.backward())
        grads = model.net.grads
        for name in sorted(grads):
            if name not in model.net.params:
                continue
            f = lambda _: ce.forward(model.forward(d["X"], True, seed=d["seed"]), d["y"])
            grad_num = num(f, model.net.params[name], verbose=False, h=1e-5)
            errs["%s@%s" % (name, keep_prob)] = rel_error(grad_num, grads[name])
    res["dropout_net_grads"] = _result(max(errs.values()), TOLERANCES["dropout_net_grads"], parts=errs)
    return res


def _check_sgd_wd(L, seed):
    """SGD + weight decay, one step"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = sgd_wd_inputs()
    net = lu.sequential(lu.fc(d["N"], d["D"], name=d["name"]))
    net.layers[0].params = {d["name"] + "_w": d["w"].copy()}
    net.layers[0].grads = {d["name"] + "_w": d["dw"].copy()}
    opt.SGD(net, d["lr"], d["weight_decay"]).step()
    updated = net.layers[0].params[d["name"] + "_w"]
    res["sgd_wd"] = _result(rel_error(updated, EXPECTED["sgd_wd_updated_w"]), TOLERANCES["sgd_wd"],
                            seed_printed=SEED_PRINTED["sgd_wd"])
    return res


def _check_adam(L, seed):
    """Adam, one step"""
    lu, fcm, opt, gc = L["layer_utils"], L["fully_conn"], L["optim"], L["grad_check"]
    num_arr, num = gc.eval_numerical_gradient_array, gc.eval_numerical_gradient
    res = {}
    d = adam_inputs()
    net = lu.sequential(lu.fc(d["N"], d["D"], name=d["name"]))
    key = d["name"] + "_w"
    net.layers[0].params = {key: d["w"].copy()}
    net.layers[0].grads = {key: d["dw"].copy()}
    adam = opt.Adam(net, d["lr"], d["beta1"], d["beta2"], t=d["t"])
    adam.mt = {key: d["m"].copy()}
    adam.vt = {key: d["v"].copy()}
    adam.step()
    errs = {"w": rel_error(EXPECTED["adam_updated_w"], net.layers[0].params[key]),
            "m": rel_error(EXPECTED["adam_m"], adam.mt[key]),
            "v": rel_error(EXPECTED["adam_v"], adam.vt[key])}
    res["adam"] = _result(max(errs.values()), TOLERANCES["adam"], parts=errs,
                          seed_printed={k: SEED_PRINTED["adam_" + k] for k in "wmv"})
    return res


def _reg_net(lu, d):
    net = lu.sequential(lu.fc(d["w"].shape[0], d["w"].shape[1], name=d["name"]))
    layer = net.layers[0]
    layer.params = {layer.w_name: d["w"].copy(), layer.b_name: d["b"].copy()}
    layer.grads = {layer.w_name: d["dw"].copy(), layer.b_name: d["db"].copy()}
    net.gather_params()
    net.gather_grads()
    return net, layer


def _check_l1(L, seed):
    """Derived (not printed by the handout): L1 adds lam * sign(theta) to every gradient"""
    lu, d = L["layer_utils"], regularization_inputs()
    net, layer = _reg_net(lu, d)
    net.apply_l1_regularization(d["l1_lambda"])
    exp_w = d["dw"] + d["l1_lambda"] * np.sign(d["w"])
    exp_b = d["db"] + d["l1_lambda"] * np.sign(d["b"])
    err = max(np.max(np.abs(layer.grads[layer.w_name] - exp_w)),
              np.max(np.abs(layer.grads[layer.b_name] - exp_b)))
    return {"l1_grad": _result(err, TOLERANCES["regularization"])}


def _check_l2(L, seed):
    """Derived (not printed by the handout): L2 adds 2 * lam * theta to every gradient"""
    lu, d = L["layer_utils"], regularization_inputs()
    net, layer = _reg_net(lu, d)
    net.apply_l2_regularization(d["l2_lambda"])
    exp_w = d["dw"] + 2 * d["l2_lambda"] * d["w"]
    exp_b = d["db"] + 2 * d["l2_lambda"] * d["b"]
    err = max(np.max(np.abs(layer.grads[layer.w_name] - exp_w)),
              np.max(np.abs(layer.grads[layer.b_name] - exp_b)))
    return {"l2_grad": _result(err, TOLERANCES["regularization"])}


def _check_l2_weight_decay(L, seed):
    """Derived: an SGD step with L2 at the notebook's lambda equals one with weight decay 1e-4, lr 0.01"""
    lu, opt, d = L["layer_utils"], L["optim"], regularization_inputs()
    net_l2, layer_l2 = _reg_net(lu, d)
    net_l2.apply_l2_regularization(d["l2_lambda"])
    opt.SGD(net_l2, d["lr"]).step()
    net_wd, layer_wd = _reg_net(lu, d)
    opt.SGD(net_wd, d["lr"], d["weight_decay"]).step()
    err = max(np.max(np.abs(layer_l2.params[n] - layer_wd.params[n])) for n in layer_wd.params)
    return {"l2_equals_weight_decay": _result(err, TOLERANCES["regularization"])}


# check group -> (function, names of the results it returns)
CHECKS = {
    "fc_forward": (_check_fc_forward, ['fc_forward']),
    "fc_backward": (_check_fc_backward, ['fc_backward']),
    "gelu_forward": (_check_gelu_forward, ["gelu_forward"]),
    "gelu_backward": (_check_gelu_backward, ["gelu_backward"]),
    "dropout_forward": (_check_dropout_forward, ['dropout_forward']),
    "dropout_backward": (_check_dropout_backward, ['dropout_backward']),
    "fc_gelu": (_check_fc_gelu, ['fc_gelu']),
    "softmax_ce": (_check_softmax_ce, ['softmax_ce_loss', 'softmax_ce_dx']),
    "small_fcn": (_check_small_fcn, ['small_fcn_init', 'small_fcn_scores', 'small_fcn_loss', 'small_fcn_grads']),
    "dropout_net": (_check_dropout_net, ['dropout_net_grads']),
    "sgd_wd": (_check_sgd_wd, ['sgd_wd']),
    "adam": (_check_adam, ['adam']),
    "l1": (_check_l1, ["l1_grad"]),
    "l2": (_check_l2, ["l2_grad"]),
    "l2_weight_decay": (_check_l2_weight_decay, ["l2_equals_weight_decay"]),
}


# result name -> its TOLERANCES key, where they differ
_TOL_KEY = {"dropout_forward": "dropout_zero_fraction", "l1_grad": "regularization",
            "l2_grad": "regularization", "l2_equals_weight_decay": "regularization"}


def run_checks(lib_parent=None, seed=0, only=None):
    """Run every handout check (or the groups named in `only`) on the implementation in
    lib_parent; return {result name: {"error", "tol", "passed", ...}} with plain floats and
    bools. A check that raises becomes a failed result with "exception" set."""
    L = load_lib(lib_parent)
    res = {}
    for group, (fn, result_names) in CHECKS.items():
        if only is not None and group not in only:
            continue
        try:
            res.update(fn(L, seed))
        except Exception as exc:  # a crash is a result, not an abort
            msg = "%s: %s" % (type(exc).__name__, exc)
            for name in result_names:
                res[name] = {"error": float("inf"), "tol": float(TOLERANCES[_TOL_KEY.get(name, name)]),
                             "passed": False, "exception": msg}
    return res


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    res = run_checks(argv[0] if argv else None)
    width = max(len(k) for k in res)
    for name, r in res.items():
        line = "%-*s  error %.3e  tol %.0e  %s" % (width, name, r["error"], r["tol"],
                                                  "PASS" if r["passed"] else "FAIL")
        if "parts" in r and name != "dropout_forward":
            line += "  " + ", ".join("%s=%.2e" % (k, v) for k, v in r["parts"].items())
        if "seed_printed" in r:
            line += "  (seed printed %s)" % (r["seed_printed"],)
        if "exception" in r:
            line += "  " + r["exception"]
        if "loss" in r:
            line += "  loss=%r" % r["loss"]
        if name == "dropout_forward" and "mean_rel_error" in r:
            line += "  mean_rel=%.3e test_identity=%s" % (r["mean_rel_error"], r["test_time_identity"])
        print(line)
    failed = [k for k, r in res.items() if not r["passed"]]
    print("%d passed, %d failed" % (len(res) - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
