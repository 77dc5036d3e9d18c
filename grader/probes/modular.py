"""Probe for the modular layers-and-optimizers assignment: runs in the sandbox child, calls the
student's lib/ on inputs the parent chose and returns numbers only. Parameter names are
discovered from the student's objects (by shape), never assumed.

Each task takes (params, arrays, data_dir) and returns a dict of name -> array-like.
"""
import os

import numpy as np
from probe_numeric import numerical_gradient


def _lib():
    from lib import optim
    from lib.mlp import fully_conn, layer_utils

    return layer_utils, fully_conn, optim


def import_module(params, arrays, data_dir):
    lu, fcn, optim = _lib()
    return {"ok": 1}


# ------------------------------------------------------------------ helpers

def _fc_layers(net):
    """The layers of a sequential that hold a weight matrix, in order."""
    return [layer for layer in net.layers
            if getattr(layer, "params", None) and any(np.ndim(v) == 2 for v in layer.params.values())]


def _wb_names(layer):
    names = list(layer.params)
    w = [n for n in names if np.ndim(layer.params[n]) == 2]
    b = [n for n in names if np.ndim(layer.params[n]) == 1]
    if len(w) != 1 or len(b) != 1:
        raise ValueError(f"cannot tell the weight and bias of layer {getattr(layer, 'name', '?')} "
                         f"from its params {names}")
    return w[0], b[0]


def _set_fc(net, layer, w, b):
    """Assign through the student's sequential.assign, as the handout's notebook does."""
    wn, bn = _wb_names(layer)
    net.assign(wn, w.copy())
    net.assign(bn, b.copy())
    return wn, bn


# ------------------------------------------------------------------ layers

def fc_layer(params, arrays, data_dir):
    lu, _, _ = _lib()
    x, w, b = arrays["x"], arrays["w"], arrays["b"]
    layer = lu.fc(w.shape[0], w.shape[1], params.get("init_scale", 0.02), name="fc_probe")
    wn, bn = _wb_names(layer)
    layer.params[wn], layer.params[bn] = w.copy(), b.copy()
    out = {"out": layer.forward(x.copy())}
    if "dout" in arrays:
        dout = arrays["dout"]
        out["dx"] = layer.backward(dout.copy())
        out["dw"], out["db"] = layer.grads[wn], layer.grads[bn]
        if params.get("numeric"):
            xs, ws, bs = x.copy(), w.copy(), b.copy()

            def run(x_=None, w_=None, b_=None):
                layer.params[wn] = ws if w_ is None else w_
                layer.params[bn] = bs if b_ is None else b_
                return layer.forward((xs if x_ is None else x_).copy())

            out["num_dx"] = numerical_gradient(lambda v: run(x_=v), xs.copy(), dout)
            out["num_dw"] = numerical_gradient(lambda v: run(w_=v), ws.copy(), dout)
            out["num_db"] = numerical_gradient(lambda v: run(b_=v), bs.copy(), dout)
    return out


def gelu_layer(params, arrays, data_dir):
    lu, _, _ = _lib()
    x = arrays["x"]
    layer = lu.gelu(name="gelu_probe")
    out = {"out": layer.forward(x.copy())}
    if "dout" in arrays:
        dout = arrays["dout"]
        out["dx"] = layer.backward(dout.copy())
        if params.get("numeric"):
            out["num_dx"] = numerical_gradient(lambda v: lu.gelu(name="gelu_num").forward(v), x.copy(), dout)
    return out


def dropout_forward(params, arrays, data_dir):
    lu, _, _ = _lib()
    x = arrays["x"]
    out = {}
    for i, keep in enumerate(params["keep_probs"]):
        layer = lu.dropout(keep, name=f"drop{i}")
        out[f"train_{i}"] = layer.forward(x.copy(), True, seed=params["seed"] + i)
        out[f"test_{i}"] = layer.forward(x.copy(), False, seed=params["seed"] + i)
    return out


def dropout_backward(params, arrays, data_dir):
    lu, _, _ = _lib()
    x, dout = arrays["x"], arrays["dout"]
    layer = lu.dropout(params["keep_prob"], seed=params["layer_seed"], name="drop_probe")
    out = layer.forward(x.copy(), True, seed=params["forward_seed"])
    dx = layer.backward(dout.copy())
    fresh = lu.dropout(params["keep_prob"], seed=params["layer_seed"], name="drop_num")
    num = numerical_gradient(lambda v: fresh.forward(v, True, seed=params["forward_seed"]), x.copy(), dout)
    return {"out": out, "dx": dx, "num_dx": num}


def dropout_modes(params, arrays, data_dir):
    """One layer the way the notebook sequences it: forward in training mode, forward in test
    mode, then backward, which is the backward of the last (test-mode, identity) forward."""
    lu, _, _ = _lib()
    x, dout = arrays["x"], arrays["dout"]
    layer = lu.dropout(params["keep_prob"], seed=params["layer_seed"], name="drop_modes")
    layer.forward(x.copy(), True, seed=params["forward_seed"])
    out = layer.forward(x.copy(), False, seed=params["forward_seed"])
    return {"out": out, "dx": layer.backward(dout.copy())}


def fc_gelu(params, arrays, data_dir):
    _, fcn, _ = _lib()
    x, w, b, dout = arrays["x"], arrays["w"], arrays["b"], arrays["dout"]
    model = fcn.TestFCGeLU()
    layer = _fc_layers(model.net)[0]
    wn, bn = _set_fc(model.net, layer, w, b)
    out = model.forward(x.copy())
    dx = model.backward(dout.copy())
    result = {"out": out, "dx": dx, "dw": model.net.get_grads(wn), "db": model.net.get_grads(bn)}
    if params.get("numeric"):
        result["num_dx"] = numerical_gradient(lambda v: model.forward(v), x.copy(), dout)
    return result


def softmax_ce(params, arrays, data_dir):
    lu, _, _ = _lib()
    x, y = arrays["x"], arrays["y"]
    loss_layer = lu.cross_entropy()
    loss = loss_layer.forward(x.copy(), y.copy())
    dx = loss_layer.backward()
    result = {"loss": loss, "dx": dx}
    if params.get("numeric"):
        result["num_dx"] = numerical_gradient(lambda v: lu.cross_entropy().forward(v, y.copy()), x.copy(),
                                              np.float64(1.0))
    return result


# ------------------------------------------------------------------ networks

def small_fcn(params, arrays, data_dir):
    lu, fcn, _ = _lib()
    np.random.seed(params["global_seed"])
    model = fcn.SmallFullyConnectedNetwork()
    layers = _fc_layers(model.net)
    if len(layers) != 2:
        raise ValueError(f"SmallFullyConnectedNetwork should have two fc layers, found {len(layers)}")
    result = {}
    for i, layer in enumerate(layers, 1):
        wn, bn = _wb_names(layer)
        result[f"init_w{i}_std"] = np.std(layer.params[wn])
        result[f"init_b{i}_absmax"] = np.max(np.abs(layer.params[bn]))
    names = [_set_fc(model.net, layer, arrays[f"w{i}"], arrays[f"b{i}"]) for i, layer in enumerate(layers, 1)]
    loss_layer = lu.cross_entropy()
    scores = model.forward(arrays["feats"].copy())
    result["scores"] = scores.copy()  # the loss may work on its input in place: it gets its own copy
    result["loss"] = loss_layer.forward(scores.copy(), arrays["y"].copy())
    model.backward(loss_layer.backward())
    for i, (wn, bn) in enumerate(names, 1):
        result[f"dw{i}"], result[f"db{i}"] = model.net.get_grads(wn).copy(), model.net.get_grads(bn).copy()
    # The handout's own test (what a kit without reference outputs compares with): centered
    # differences of the student's loss, after their analytic gradients are saved.
    loss = lambda _: lu.cross_entropy().forward(model.forward(arrays["feats"].copy()), arrays["y"].copy())
    for i, (layer, (wn, bn)) in enumerate(zip(layers, names), 1):
        for key, name in ((f"num_dw{i}", wn), (f"num_db{i}", bn)):
            result[key] = numerical_gradient(loss, layer.params[name])
    return result


def dropout_net(params, arrays, data_dir):
    """The handout's DropoutNet gradient check: analytic gradients and centered differences of
    the loss, for each keep probability, with the same seeds on every forward pass."""
    lu, fcn, _ = _lib()
    X, y, seed = arrays["X"], arrays["y"], params["seed"]
    result = {}
    for k, keep in enumerate(params["keep_probs"]):
        np.random.seed(seed)
        model = fcn.DropoutNet(keep_prob=keep, seed=seed)
        loss_layer = lu.cross_entropy()
        loss_layer.forward(model.forward(X.copy(), True, seed=seed), y.copy())
        model.backward(loss_layer.backward())
        grads = dict(model.net.grads)
        for j, name in enumerate(sorted(model.net.params)):
            param = model.net.params[name]

            def f(_):
                return lu.cross_entropy().forward(model.forward(X.copy(), True, seed=seed), y.copy())

            result[f"grad_{k}_{j}"] = grads[name]
            result[f"num_{k}_{j}"] = numerical_gradient(f, param, np.float64(1.0))
    return result


# ------------------------------------------------------------------ optimizers

def _net(lu, arrays, prefix="L"):
    """A sequential of fc layers with the given weights (w0, b0, w1, b1, ...)."""
    count = sum(1 for k in arrays if k.startswith("w") and k[1:].isdigit())
    layers = [lu.fc(arrays[f"w{j}"].shape[0], arrays[f"w{j}"].shape[1], 0.02, name=f"{prefix}{j}")
              for j in range(count)]
    net = lu.sequential(*layers)
    names = []
    for j, layer in enumerate(layers):
        wn, bn = _wb_names(layer)
        layer.params[wn], layer.params[bn] = arrays[f"w{j}"].copy(), arrays[f"b{j}"].copy()
        names.append((wn, bn))
    net.gather_params()
    return net, layers, names


def _set_grads(net, layers, names, arrays, step):
    for j, (layer, (wn, bn)) in enumerate(zip(layers, names)):
        layer.grads[wn] = arrays[f"gw{step}_{j}"].copy()
        layer.grads[bn] = arrays[f"gb{step}_{j}"].copy()
    net.gather_grads()


def _params_out(layers, names):
    out = {}
    for j, (layer, (wn, bn)) in enumerate(zip(layers, names)):
        out[f"w{j}"], out[f"b{j}"] = layer.params[wn], layer.params[bn]
    return out


def sgd_one_step(params, arrays, data_dir):
    """Exactly the handout's cell: a layer whose params and grads dicts hold only the weight."""
    lu, _, optim = _lib()
    name = params["name"]
    net = lu.sequential(lu.fc(params["N"], params["D"], name=name))
    net.layers[0].params = {f"{name}_w": arrays["w"].copy()}
    net.layers[0].grads = {f"{name}_w": arrays["dw"].copy()}
    optim.SGD(net, params["lr"], params["weight_decay"]).step()
    return {"w": net.layers[0].params[f"{name}_w"]}


def adam_one_step(params, arrays, data_dir):
    lu, _, optim = _lib()
    name = params["name"]
    net = lu.sequential(lu.fc(params["N"], params["D"], name=name))
    key = f"{name}_w"
    net.layers[0].params = {key: arrays["w"].copy()}
    net.layers[0].grads = {key: arrays["dw"].copy()}
    opt = optim.Adam(net, params["lr"], params["beta1"], params["beta2"], t=params["t"])
    opt.mt = {key: arrays["m"].copy()}
    opt.vt = {key: arrays["v"].copy()}
    opt.step()
    return {"w": net.layers[0].params[key], "m": opt.mt[key], "v": opt.vt[key]}


def optimizer_steps(params, arrays, data_dir):
    """Several steps of the student's SGD or Adam on a small network with given gradients."""
    lu, _, optim = _lib()
    net, layers, names = _net(lu, arrays)
    if params["optimizer"] == "sgd":
        opt = optim.SGD(net, params["lr"], params.get("weight_decay", 0.0))
    else:
        opt = optim.Adam(net, params["lr"], params.get("beta1", 0.9), params.get("beta2", 0.999),
                         t=params.get("t", 0), weight_decay=params.get("weight_decay", 0.0))
    for step in range(params["steps"]):
        _set_grads(net, layers, names, arrays, step)
        opt.step()
    return _params_out(layers, names)


def regularize(params, arrays, data_dir):
    lu, _, _ = _lib()
    net, layers, names = _net(lu, arrays)
    _set_grads(net, layers, names, arrays, 0)
    getattr(net, f"apply_{params['kind']}_regularization")(params["lam"])
    out = {}
    for j, (layer, (wn, bn)) in enumerate(zip(layers, names)):
        out[f"gw{j}"], out[f"gb{j}"] = layer.grads[wn], layer.grads[bn]
    return out


def l2_versus_weight_decay(params, arrays, data_dir):
    """The notebook's L2 cell in small: the student's FullyConnectedNetwork trained twice from the
    same seed with their own SGD, once with weight decay and once with L2 at the lambda their
    notebook chose. Each iteration is train_net's: forward (which gathers the parameters),
    loss, backward with the regulariser, optimizer step, so a regulariser that reads the gathered
    parameters sees fresh ones. The parent compares the two runs."""
    lu, fcn, optim = _lib()
    X, y = arrays["X"], arrays["y"]
    result = {}
    for tag in ("wd", "l2"):
        np.random.seed(params["seed"])
        model = fcn.FullyConnectedNetwork()
        loss_func = lu.cross_entropy()
        opt = optim.SGD(model.net, params["lr"], params["weight_decay"] if tag == "wd" else 0.0)
        regularization, lam = ("l2", params["l2_lambda"]) if tag == "l2" else ("none", 0.0)
        losses = []
        for step in range(params["steps"]):
            rows = slice(step * params["batch_size"] % len(X), None)
            xb, yb = X[rows][:params["batch_size"]].copy(), y[rows][:params["batch_size"]].copy()
            losses.append(loss_func.forward(model.forward(xb, True), yb))
            model.backward(loss_func.backward(), regularization=regularization, reg_lambda=lam)
            opt.step()
        result[f"{tag}_loss"] = np.asarray(losses, dtype=np.float64)
        for j, layer in enumerate(_fc_layers(model.net)):
            wn, bn = _wb_names(layer)
            result[f"{tag}_w{j}"], result[f"{tag}_b{j}"] = layer.params[wn], layer.params[bn]
    return result


# ------------------------------------------------------------------ training

def tinynet_train(params, arrays, data_dir):
    """TinyNet trained with the student's train_net and SGD(lr=0.1) at the hyper-parameters
    their notebook sets; returns predictions on the held-out split (its labels stay outside)."""
    from lib.mlp import train

    lu, fcn, optim = _lib()
    load = lambda name: np.load(os.path.join(data_dir, name + ".npy"), mmap_mode="c")
    X_test = load("X_test")
    data = {"data_train": (load("X_train"), load("y_train")), "data_val": (load("X_val"), load("y_val")),
            # the held-out labels never enter the sandbox: the loop gets placeholders
            "data_test": (X_test, np.zeros(len(X_test), dtype=np.int64))}
    hp = params["hyper"]
    np.random.seed(params.get("seed", 123))
    model = fcn.TinyNet()
    arch = params.get("architecture")
    if arch and _differs(model, arch):
        # Only the reference gets here: the parent read this shape from the student's own TinyNet,
        # which therefore already has it. Same seed, same draws: fc(3072, H) then fc(H, 20).
        np.random.seed(params.get("seed", 123))
        model.net = lu.sequential(lu.flatten(name="flat"), lu.fc(3072, arch["hidden"], arch["init_scale"], name="fc1"),
                                  lu.gelu(name="gelu1"), lu.fc(arch["hidden"], 20, arch["init_scale"], name="fc2"))
    opt = optim.SGD(model.net, params.get("lr", 0.1))
    _, loss_hist, train_acc, val_acc = train.train_net(
        data, model, lu.cross_entropy(), opt, hp["batch_size"], hp["epochs"], hp["lr_decay"],
        hp["lr_decay_every"], show_every=10**9, verbose=False)
    preds = [np.argmax(model.forward(X_test[i:i + 1000], False), axis=1) for i in range(0, len(X_test), 1000)]
    try:  # for the report only: which hidden size this TinyNet has
        hidden = [np.shape(layer.params[_wb_names(layer)[0]])[1] for layer in _fc_layers(model.net)][:-1]
    except (ValueError, IndexError, KeyError):
        hidden = []
    return {"pred_test": np.concatenate(preds), "hidden_sizes": np.asarray(hidden, dtype=np.int64), "loss_history": np.asarray(loss_hist, dtype=np.float64),
            "train_acc_history": np.asarray(train_acc, dtype=np.float64),
            "val_acc_history": np.asarray(val_acc, dtype=np.float64)}


def _differs(model, arch) -> bool:
    try:
        first = _fc_layers(model.net)[0]
        w = first.params[_wb_names(first)[0]]
    except (IndexError, ValueError, KeyError, AttributeError):
        return False  # never rebuild what cannot be inspected: the student's run keeps its own net
    return w.shape[1] != arch["hidden"] or abs(np.std(w) / arch["init_scale"] - 1) > 0.05


TASKS = {
    "import_module": import_module,
    "fc_layer": fc_layer,
    "gelu_layer": gelu_layer,
    "dropout_forward": dropout_forward,
    "dropout_backward": dropout_backward,
    "dropout_modes": dropout_modes,
    "fc_gelu": fc_gelu,
    "softmax_ce": softmax_ce,
    "small_fcn": small_fcn,
    "dropout_net": dropout_net,
    "sgd_one_step": sgd_one_step,
    "adam_one_step": adam_one_step,
    "optimizer_steps": optimizer_steps,
    "regularize": regularize,
    "l2_versus_weight_decay": l2_versus_weight_decay,
    "tinynet_train": tinynet_train,
}
