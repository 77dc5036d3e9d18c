"""CIFAR-100 loading for the `modular` assignment (course-provided file).

CIFAR100_data(data_dir) reads the official CIFAR-100 python archive (the folder
`cifar-100-python` that `cifar-100-python.tar.gz` unpacks to: pickles `train`,
`test`, `meta`), classifies into the 20 coarse superclasses, splits the official
training set into 40,000 training / 10,000 validation images and normalises every
split with the per-channel mean and standard deviation of the training split.

`data_dir` may be that folder itself or a folder containing it. The handout's
MATLAB copies (`train.mat`, `test.mat`, `meta.mat`) are read as well when no
pickle is found (this needs scipy, imported only then).
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import pickle

import numpy as np

NUM_COARSE_CLASSES = 20


def _unpickle(path):
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    # keys are bytes in the official archive; normalise to str
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


def _find_archive_dir(data_dir):
    for cand in (data_dir, os.path.join(data_dir, "cifar-100-python")):
        if os.path.isfile(os.path.join(cand, "train")) and os.path.isfile(os.path.join(cand, "test")):
            return cand
    return None


def _to_nhwc(flat):
    return np.asarray(flat, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _label_names(raw):
    return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in raw]


def CIFAR100(data_dir):
    """ Load CIFAR100 data (images as uint8 N x 32 x 32 x 3, coarse labels) """
    archive = _find_archive_dir(data_dir)
    if archive is not None:
        train = _unpickle(os.path.join(archive, "train"))
        test = _unpickle(os.path.join(archive, "test"))
        data_train = _to_nhwc(train["data"])
        labels_train = np.asarray(train["coarse_labels"], dtype=np.int64)
        data_test = _to_nhwc(test["data"])
        labels_test = np.asarray(test["coarse_labels"], dtype=np.int64)
        meta_path = os.path.join(archive, "meta")
        if os.path.isfile(meta_path):
            label_names = _label_names(_unpickle(meta_path)["coarse_label_names"])
        else:
            label_names = [str(i) for i in range(NUM_COARSE_CLASSES)]
        return data_train, labels_train, data_test, labels_test, label_names

    if os.path.isfile(os.path.join(data_dir, "train.mat")):
        from scipy.io import loadmat  # only for the handout's .mat copies

        train = loadmat(os.path.join(data_dir, "train.mat"))
        test = loadmat(os.path.join(data_dir, "test.mat"))
        data_train = _to_nhwc(train["data"])
        labels_train = train["coarse_labels"].flatten().astype(np.int64)
        data_test = _to_nhwc(test["data"])
        labels_test = test["coarse_labels"].flatten().astype(np.int64)
        meta_file = os.path.join(data_dir, "meta.mat")
        if os.path.isfile(meta_file):
            meta = loadmat(meta_file)
            label_names = [str(meta["coarse_label_names"][i][0][0]) for i in range(NUM_COARSE_CLASSES)]
        else:
            label_names = [str(i) for i in range(NUM_COARSE_CLASSES)]
        return data_train, labels_train, data_test, labels_test, label_names

    raise FileNotFoundError(
        "No CIFAR-100 data in {!r}: expected the official python archive folder "
        "(files 'train', 'test', 'meta') or train.mat/test.mat".format(data_dir))


def CIFAR100_data(data_dir, num_training=40000, num_validation=10000):
    """ Load, split and normalise CIFAR-100 (20 coarse classes) """
    data_train, labels_train, data_test, labels_test, label_names = CIFAR100(data_dir)

    # convert to float and rescale
    data_train = data_train.astype(np.float32) / 255
    data_test = data_test.astype(np.float32) / 255

    # Subsample the data: the last images of the official training set are the validation set
    data_val = data_train[num_training:num_training + num_validation]
    labels_val = labels_train[num_training:num_training + num_validation]
    data_train = data_train[:num_training]
    labels_train = labels_train[:num_training]

    # Normalize the data: per-channel mean and std of the training split
    mean_image = np.mean(data_train, axis=(0, 1, 2), keepdims=True)
    std_image = np.std(data_train, axis=(0, 1, 2), keepdims=True)
    data_train = (data_train - mean_image) / std_image
    data_val = (data_val - mean_image) / std_image
    data_test = (data_test - mean_image) / std_image

    # return a data dict
    return {
        'data_train': data_train, 'labels_train': labels_train,
        'data_val': data_val, 'labels_val': labels_val,
        'data_test': data_test, 'labels_test': labels_test,
        'label_names': label_names,
        'mean_image': mean_image, 'std_image': std_image
    }
