"""Course-provided helpers for Problem Set 4 (adapted from Stanford CS231n).

Students receive this file unchanged; the grader always uses its own copy.
"""
from math import ceil, sqrt

import numpy as np


def rel_error(x, y):
    """Return the maximum relative error between x and y."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f, x, verbose=True, h=1e-5):
    """
    A naive implementation of the numerical gradient of f at x, using centered
    differences (f(x + h) - f(x - h)) / 2h in every coordinate.

    - f should be a function that takes a single argument (usually it ignores it and
      reads x, which is modified in place here);
    - x is the point (numpy array) to evaluate the gradient at. It is restored to its
      original values before returning.
    """
    grad = np.zeros_like(x)
    # iterate over all indexes in x
    it = np.nditer(x, flags=['multi_index'], op_flags=['readwrite'])
    while not it.finished:
        # evaluate the function at x + h and x - h
        ix = it.multi_index
        oldval = x[ix]
        x[ix] = oldval + h  # increment by h
        fxph = f(x)  # evaluate f(x + h)
        x[ix] = oldval - h  # decrement by h
        fxmh = f(x)  # evaluate f(x - h)
        x[ix] = oldval  # restore

        # compute the partial derivative with centered formula
        grad[ix] = (fxph - fxmh) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()  # step to next dimension

    return grad


def get_MNIST_data(num_training=50000, num_validation=10000, num_test=10000, data_home=None):
    """
    Load the MNIST dataset from OpenML and prepare it for the two-layer network.

    All 70,000 images are shuffled with a fixed seed and split into training,
    validation and test sets, in that order. The pixels stay floats in 0..255 and
    the mean training image is subtracted from every split (no further scaling).

    - data_home: scikit-learn's download/cache folder (default ~/scikit_learn_data).

    Returns X_train, y_train, X_val, y_val, X_test, y_test; X of shape (n, 784), y int.
    """
    # Imported here: scikit-learn is slow to import and only this function needs it.
    from sklearn.datasets import fetch_openml

    mnist = fetch_openml('mnist_784', version=1, as_frame=False, data_home=data_home)
    X = np.asarray(mnist.data, dtype=np.float64)
    y = np.asarray(mnist.target).astype(int)
    if num_training + num_validation + num_test > X.shape[0]:
        raise ValueError('MNIST has only %d images, %d requested'
                         % (X.shape[0], num_training + num_validation + num_test))

    # Shuffle all images with a fixed seed before splitting
    np.random.seed(0)
    perm = np.random.permutation(X.shape[0])
    X, y = X[perm], y[perm]

    # Subsample the data: training, then validation, then test images
    X_train = X[:num_training]
    y_train = y[:num_training]
    X_val = X[num_training:num_training + num_validation]
    y_val = y[num_training:num_training + num_validation]
    X_test = X[num_training + num_validation:num_training + num_validation + num_test]
    y_test = y[num_training + num_validation:num_training + num_validation + num_test]

    # Normalize the data: subtract the mean image of the training set
    mean_image = np.mean(X_train, axis=0)
    X_train = X_train - mean_image
    X_val = X_val - mean_image
    X_test = X_test - mean_image

    return X_train, y_train, X_val, y_val, X_test, y_test


def visualize_grid(Xs, ubound=255.0, padding=1):
    """
    Reshape a 4D tensor of image data to a grid for easy visualization.

    Inputs:
    - Xs: Data of shape (N, H, W, C) or (N, H, W)
    - ubound: Output grid will have values scaled to the range [0, ubound]
    - padding: The number of blank pixels between elements of the grid

    Returns an array of shape (grid_height, grid_width, C), or (grid_height,
    grid_width) for (N, H, W) input; every image is min-max scaled on its own.
    """
    grayscale = Xs.ndim == 3
    if grayscale:
        Xs = Xs[:, :, :, np.newaxis]
    (N, H, W, C) = Xs.shape
    grid_size = int(ceil(sqrt(N)))
    grid_height = H * grid_size + padding * (grid_size - 1)
    grid_width = W * grid_size + padding * (grid_size - 1)
    grid = np.zeros((grid_height, grid_width, C))
    next_idx = 0
    y0, y1 = 0, H
    for y in range(grid_size):
        x0, x1 = 0, W
        for x in range(grid_size):
            if next_idx < N:
                img = Xs[next_idx]
                low, high = np.min(img), np.max(img)
                # a constant image would divide by zero: leave it black
                if high > low:
                    grid[y0:y1, x0:x1] = ubound * (img - low) / (high - low)
                next_idx += 1
            x0 += W + padding
            x1 += W + padding
        y0 += H + padding
        y1 += H + padding
    if grayscale:
        grid = grid[:, :, 0]
    return grid
