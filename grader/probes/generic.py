"""Generic probe: imports a student module by name and calls what a rubric names, with the
inputs the parent sent. Runs in the sandbox child; returns plain numbers only, decides nothing.

Tasks take (params, arrays, data_dir) and return name -> array. Inputs arrive as arrays named
`in_<name>`; positional arguments are listed in params["args"] (names of inputs, in order).
Returned values come back as `out<i>`, one per value of a returned tuple or list (a single
value is `out0`; a dict, like a network's gradients, is `out<i>.<key>` per entry), each
converted to float64 here so that a None or a string is this task's error with the student's
own wording rather than a silent zero.
"""
import importlib
import sys

import numpy as np
from probe_numeric import numerical_gradient


def import_module(params, arrays, data_dir):
    """Run first: when a module does not import, every other task is pointless."""
    for name in params.get("modules", []):
        importlib.import_module(name)
    return {"imported": len(params.get("modules", []))}


def _target(params, arrays):
    """The callable `params["function"]` names: `name` or `Class.method` (the class built with
    params["init"] as positional arguments, after np.random.seed(params["init_seed"]) if given,
    then params["attributes"] set: dotted path on the object -> input name)."""
    module = importlib.import_module(params["module"])
    owner, _, name = params["function"].rpartition(".")
    if not owner:
        return getattr(module, name)
    if "init_seed" in params:  # handouts seed NumPy's global generator before building a network
        np.random.seed(int(params["init_seed"]))
    # Interned, as a literal would be: real submissions compare activation names with `is`.
    init = [sys.intern(a) if isinstance(a, str) else a for a in params.get("init", [])]
    instance = getattr(module, owner)(*init)
    for path, source in params.get("attributes", {}).items():
        _set(instance, path.split("."), np.array(arrays["in_" + source], copy=True))
    return getattr(instance, name)


def _set(obj, path, value):
    """obj.a.b = value, where a step into a dict is a key (`params.W1`: net.params["W1"])."""
    for step in path[:-1]:
        obj = obj[step] if isinstance(obj, dict) else getattr(obj, step)
    if isinstance(obj, dict):
        obj[path[-1]] = value
    else:
        setattr(obj, path[-1], value)


def _args(params, arrays):
    # Fresh copies: a function that changes its inputs in place must not change the next call's.
    return [np.array(arrays["in_" + name], copy=True) for name in params["args"]]


def _numbers(value, what):
    if value is None:
        raise TypeError(f"{what} returned None (is a `return` missing?)")
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} returned {type(value).__name__}, not numbers") from None
    return arr


def _outputs(result, count, what):
    values = list(result) if count > 1 and isinstance(result, (tuple, list)) else [result]
    if len(values) != count:
        raise ValueError(f"{what} returned {len(values)} values, expected {count}")
    out = {}
    for i, value in enumerate(values):
        if isinstance(value, dict):
            out.update({f"out{i}.{key}": _numbers(v, f"{what}[{key!r}]") for key, v in value.items()})
        else:
            out[f"out{i}"] = _numbers(value, what)
    return out


def call(params, arrays, data_dir):
    fn = _target(params, arrays)
    what = params["function"] + "()"
    return _outputs(fn(*_args(params, arrays)), int(params.get("returns", 1)), what)


def gradient(params, arrays, data_dir):
    """The analytic gradient (`params["gradient"]`) and a central-difference gradient of the
    scalar function (`params["function"]`) with respect to argument `params["wrt"]`."""
    module = importlib.import_module(params["module"])
    f, grad_fn = getattr(module, params["function"]), getattr(module, params["gradient"])
    args = _args(params, arrays)
    wrt = params["args"].index(params["wrt"])
    analytic = _numbers(grad_fn(*_args(params, arrays)), params["gradient"] + "()")

    def scalar(point):
        call_args = [np.array(a, copy=True) for a in args]
        call_args[wrt] = np.array(point, copy=True)
        value = _numbers(f(*call_args), params["function"] + "()")
        if value.size != 1:
            raise ValueError(f"{params['function']}() returned {value.size} values, expected one number")
        return float(value.reshape(-1)[0])

    point = np.array(args[wrt], dtype=np.float64, copy=True)
    numeric = numerical_gradient(scalar, point, h=float(params.get("h", 1e-5)))
    return {"analytic": analytic, "numeric": numeric}


def values(params, arrays, data_dir):
    """Module attributes by name: a constant, or the result of calling a zero-argument function."""
    module = importlib.import_module(params["module"])
    out = {}
    for i, name in enumerate(params["names"]):
        value = getattr(module, name)
        if callable(value):
            value = _numbers(value(), name + "()")
        elif value is None:
            raise ValueError(f"{name} is None: it is not set yet")
        out[f"value{i}"] = _numbers(value, name)
    return out


TASKS = {
    "import_module": import_module,
    "call": call,
    "gradient": gradient,
    "values": values,
}
