from __future__ import annotations

import numpy as np
import pytest

from grader.data import handout_split, load_digits_dataset, resolve_dataset
from grader.errors import DataUnavailable, GraderError


def test_handout_split_permutes_with_seed_0_and_subtracts_the_training_mean():
    X = np.arange(40, dtype=float).reshape(20, 2)
    y = np.arange(20)
    ds = handout_split(X, y, (10, 5, 5))
    np.random.seed(0)
    order = np.random.permutation(20)
    assert ds.y_train.tolist() == order[:10].tolist()
    assert ds.y_test.tolist() == order[15:].tolist()
    assert np.allclose(ds.X_train.mean(axis=0), 0)
    assert np.allclose(ds.X_val + X[order[:10]].mean(axis=0), X[order[10:15]])


def test_digits_stand_in_has_mnist_pixel_range_and_fixed_sizes():
    ds = load_digits_dataset()
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (1000, 397, 400)
    assert ds.input_size == 64 and ds.num_classes == 10
    assert "digits" in ds.description


def test_probe_export_never_contains_the_held_out_labels(tmp_path):
    ds = load_digits_dataset()
    ds.export_for_probe(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X_test.npy", "X_train.npy", "X_val.npy",
                                                          "y_train.npy", "y_val.npy"]


PSET4 = {"datasets": ["mnist", "fashion-mnist", "digits"], "default": "mnist", "offline": "digits"}


def test_auto_falls_back_loudly_and_explicit_mnist_refuses(tmp_path):
    ds, warning = resolve_dataset("auto", PSET4, tmp_path)
    assert ds.name == "digits" and "offline stand-in" in warning and "--dataset mnist" in warning
    with pytest.raises(DataUnavailable, match="mnist.npz not found"):
        resolve_dataset("mnist", PSET4, tmp_path)
    with pytest.raises(GraderError, match="unknown dataset 'cifar100' for this assignment"):
        resolve_dataset("cifar100", PSET4, tmp_path)


def test_mnist_npz_in_the_data_dir_is_used(tmp_path):
    rng = np.random.RandomState(0)
    np.savez(tmp_path / "mnist.npz", X=rng.randint(0, 256, (70000, 784)).astype(np.uint8),
             y=rng.randint(0, 10, 70000))
    ds, warning = resolve_dataset("auto", PSET4, tmp_path)
    assert ds.name == "mnist" and warning == ""
    assert (len(ds.X_train), len(ds.X_val), len(ds.X_test)) == (50000, 10000, 10000)
