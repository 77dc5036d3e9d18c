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
    # TODO: return max(0, z) element-wise
    raise NotImplementedError('return max(0, z) element-wise')


def forward(x, theta):
    """Problem 3C: the network's output f(x, θ), one value per input."""
    # TODO: compute the network's output for every input in x
    raise NotImplementedError("compute the network's output for every input in x")


def loss(theta, x, y):
    """Problem 3B: the squared-error loss L(θ) = Σ_n (y_n − f(x_n, θ))²."""
    # TODO: the squared-error loss over all inputs
    raise NotImplementedError('the squared-error loss over all inputs')


def loss_grad(theta, x, y):
    """Problems 3B and 3D: the gradient of `loss` with respect to the 13 parameters, in θ's order."""
    # TODO: the 13 partial derivatives of the loss, in the order of θ
    raise NotImplementedError('the 13 partial derivatives of the loss, in the order of θ')


# Problem 3A: parameters with which the network reproduces every target of each dataset exactly.
FIT_1 = None
FIT_2 = None
