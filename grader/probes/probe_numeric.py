"""Centered-difference gradients for the probes (runs in the sandbox child; NumPy only)."""
import numpy as np


def numerical_gradient(f, x, dout=1.0, h=1e-5):
    """Gradient of sum(f(x) * dout) with respect to x, changing x in place and restoring it.
    f may return a scalar (a loss) or an array (a layer's output, weighted by dout). f gets a
    fresh copy of x each time: student code that works on its input in place (a softmax that
    shifts its logits) must not move the point the differences are taken at. An f that reads
    x itself (a parameter array the model holds) sees the perturbation all the same."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        ix = it.multi_index
        old = x[ix]
        x[ix] = old + h
        pos = np.array(f(x.copy()), dtype=np.float64, copy=True)
        x[ix] = old - h
        neg = np.array(f(x.copy()), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * dout) / (2 * h)
        it.iternext()
    return grad
