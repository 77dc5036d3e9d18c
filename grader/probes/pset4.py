"""Problem Set 4 probe: runs in the sandbox child; calls the student's TwoLayerMLP and returns
numbers only. It decides nothing: every comparison happens in the trusted parent.

Each task takes (params, arrays, data_dir) and returns a dict of name -> array-like.
"""
import os
import sys

import numpy as np
from probe_numeric import numerical_gradient

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def _student():
    import mlp  # the student's module, from the working copy of the submission

    return mlp


def import_module(params, arrays, data_dir):
    """Run first: when the module does not import, every other task is pointless."""
    module = _student()
    return {"has_class": int(hasattr(module, "TwoLayerMLP"))}


def _net(params, arrays):
    mlp = _student()

    # Real submissions compare the activation with `is`; only interned strings pass that.
    activation = sys.intern(str(params["activation"]))
    np.random.seed(params.get("init_seed", 0))
    net = mlp.TwoLayerMLP(params["input_size"], params["hidden_size"], params["num_classes"],
                          std=params.get("std", 1e-1), activation=activation)
    for name in PARAM_NAMES:
        if name in arrays:
            net.params[name] = arrays[name].copy()
    return net


def scores(params, arrays, data_dir):
    net = _net(params, arrays)
    return {"scores": net.loss(arrays["X"].copy())}


def loss(params, arrays, data_dir):
    net = _net(params, arrays)
    value, grads = net.loss(arrays["X"].copy(), arrays["y"].copy(), reg=params["reg"])
    result = {"loss": value}
    for name, grad in dict(grads).items():
        if name in PARAM_NAMES:
            result["grad_" + name] = grad
    return result


def gradcheck(params, arrays, data_dir):
    """The handout's own check: analytic gradients and centered differences of the loss."""
    net = _net(params, arrays)
    X, y, reg = arrays["X"], arrays["y"], params["reg"]
    _, grads = net.loss(X.copy(), y.copy(), reg=reg)
    result = {}
    for name in PARAM_NAMES:
        result["grad_" + name] = grads[name]
        result["num_" + name] = numerical_gradient(lambda _: net.loss(X.copy(), y.copy(), reg=reg)[0],
                                                   net.params[name])
    return result


def predict(params, arrays, data_dir):
    net = _net(params, arrays)
    return {"pred": net.predict(arrays["X"].copy())}


def train_toy(params, arrays, data_dir):
    net = _net(params, arrays)
    X, y = arrays["X"], arrays["y"]
    stats = net.train(X.copy(), y.copy(), X.copy(), y.copy(), **params["train"])
    return _stats(stats)


def train_data(params, arrays, data_dir):
    """Trains on the dataset's training split; returns predictions on the held-out split,
    whose labels never enter the sandbox."""
    load = lambda name: np.load(os.path.join(data_dir, name + ".npy"), mmap_mode="c")
    net = _net(params, arrays)
    stats = net.train(load("X_train"), load("y_train"), load("X_val"), load("y_val"), **params["train"])
    result = _stats(stats)
    result["pred_test"] = net.predict(load("X_test"))
    result["W1"] = net.params["W1"]
    return result


def _stats(stats):
    keys = ("loss_history", "grad_magnitude_history", "train_acc_history", "val_acc_history")
    return {key: np.asarray(stats[key], dtype=np.float64).ravel() for key in keys if key in stats}


TASKS = {
    "import_module": import_module,
    "scores": scores,
    "loss": loss,
    "gradcheck": gradcheck,
    "predict": predict,
    "train_toy": train_toy,
    "train_data": train_data,
}
