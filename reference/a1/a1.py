"""Assignment 1, Problem 3: a tiny ReLU network with one input, four hidden units and one output.

    f(x, θ) = b0 + Σ_i w_{4+i} · ReLU(w_i · x + b_i),   i = 1..4

The 13 parameters θ are one flat array, in this order:

    θ = [w1, w2, w3, w4,  b1, b2, b3, b4,  w5, w6, w7, w8,  b0]
          hidden weights   hidden biases    output weights  output bias

Every function takes x as one number or as a 1-D array of inputs (one output per input).
"""
import numpy as np

# The two datasets of Problem 3A: inputs x = 0, 1, ..., 12 and their targets.
X = np.arange(13, dtype=float)
Y_1 = np.array([8, 6, 4, 2, 0, 2, 4, 2, 0, 2, 4, 6, 8], dtype=float)
Y_2 = np.array([0, 1, 2, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8], dtype=float)


def unpack(theta):
    """(hidden weights, hidden biases, output weights, output bias) of the flat parameters."""
    theta = np.asarray(theta, dtype=float)
    return theta[0:4], theta[4:8], theta[8:12], theta[12]


def relu(z):
    # BEGIN SOLUTION: return max(0, z) element-wise
    return np.maximum(0.0, z)
    # END SOLUTION


def forward(x, theta):
    """Problem 3C: the network's output f(x, θ), one value per input."""
    # BEGIN SOLUTION: compute the network's output for every input in x
    w, b, v, b0 = unpack(theta)
    z = np.outer(np.atleast_1d(np.asarray(x, dtype=float)), w) + b  # (n, 4) pre-activations
    return relu(z) @ v + b0
    # END SOLUTION


def loss(theta, x, y):
    """Problem 3B: the squared-error loss L(θ) = Σ_n (y_n − f(x_n, θ))²."""
    # BEGIN SOLUTION: the squared-error loss over all inputs
    residual = np.atleast_1d(np.asarray(y, dtype=float)) - forward(x, theta)
    return float(residual @ residual)
    # END SOLUTION


def loss_grad(theta, x, y):
    """Problems 3B and 3D: the gradient of `loss` with respect to the 13 parameters, in θ's order."""
    # BEGIN SOLUTION: the 13 partial derivatives of the loss, in the order of θ
    w, b, v, b0 = unpack(theta)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    z = np.outer(x, w) + b
    h = relu(z)
    dout = -2.0 * (np.atleast_1d(np.asarray(y, dtype=float)) - (h @ v + b0))  # dL/df for each input
    dz = dout[:, None] * v * (z > 0)  # the ReLU passes the gradient only where it is active
    return np.concatenate([x @ dz, dz.sum(axis=0), dout @ h, [dout.sum()]])
    # END SOLUTION


# Problem 3A: parameters with which the network reproduces every target of each dataset exactly.
# BEGIN SOLUTION: 13 parameters that fit dataset 1 exactly
# Slope -2 from the start (-2·ReLU(x)), and kinks of +4, -4, +4 in the slope at x = 4, 6, 8.
FIT_1 = [1, 1, 1, 1,  -4, -6, -8, 0,  4, -4, 4, -2,  8]
# STUB: FIT_1 = None
# END SOLUTION
# BEGIN SOLUTION: 13 parameters that fit dataset 2 exactly
# Slope +1, then -1 from x = 3, then +1 again from x = 5; the fourth unit is switched off.
FIT_2 = [1, 1, 1, 0,  0, -3, -5, 0,  1, -2, 2, 0,  0]
# STUB: FIT_2 = None
# END SOLUTION
