"""Datasets as the handout prepares them, from wherever they can be had without surprises.

`mnist`: the real thing, from `mnist.npz` in the data folder (`X` 70000x784, `y`), fetched
from OpenML into it only when asked to (`--download`).
`digits`: scikit-learn's bundled 8x8 digits, always available offline, scaled to MNIST's 0..255
range and split the handout's way; its thresholds are calibrated separately in the rubric.
`fashion-mnist`: Debian's `dataset-fashion-mnist` files, real 70,000x784 data for full-size
benchmarks on machines without internet.
`cifar100`: the official CIFAR-100 python archive (20 coarse classes); `synthetic-cifar` is its
offline stand-in of the same shapes.

Labels of the held-out split (`y_test`) stay in the parent: `export_for_probe` never writes them.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.errors import DataUnavailable, GraderError
from grader.files import replacing

DEFAULT_DATA_DIR = Path(os.environ.get("MLP_GRADER_DATA", Path.home() / ".cache" / "mlp-grader"))
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


@dataclass
class Dataset:
    name: str
    description: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    _digest: str = field(default="", repr=False, compare=False)

    PROBE_ARRAYS = ("X_train", "y_train", "X_val", "y_val", "X_test")  # never y_test

    def fingerprint(self) -> str:
        """A digest of what a probe sees (computed once): keys the reference outputs' cache."""
        if not self._digest:
            digest = hashlib.blake2b(self.name.encode(), digest_size=20)
            for name in self.PROBE_ARRAYS:
                arr = np.ascontiguousarray(getattr(self, name))
                digest.update(f"{name}{arr.dtype.str}{arr.shape}".encode())
                digest.update(memoryview(arr).cast("B"))
            self._digest = digest.hexdigest()
        return self._digest

    @property
    def input_size(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max()) + 1)

    def export_for_probe(self, folder: Path) -> Path:
        """Write what a probe may see, as .npy files it can memory-map. Never the test labels."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.PROBE_ARRAYS:
            path = folder / f"{name}.npy"
            if not path.exists():
                # Atomic: parallel workers may memory-map the file while another one writes it.
                with replacing(path) as tmp, tmp.open("wb") as fh:
                    np.save(fh, getattr(self, name))
        return folder


def handout_split(X: np.ndarray, y: np.ndarray, sizes: tuple[int, int, int], seed: int = 0,
                  name: str = "", description: str = "") -> Dataset:
    """The handout's preparation: seeded permutation of all samples, train/val/test in that
    order, float pixels minus the training-set mean image, no scaling."""
    n_train, n_val, n_test = sizes
    if n_train + n_val + n_test > len(X):
        raise GraderError(f"{name}: asked for {sum(sizes)} samples, the data has {len(X)}")
    np.random.seed(seed)
    order = np.random.permutation(len(X))
    X = X[order].astype(np.float64)
    y = y[order].astype(np.int64)
    X_train, y_train = X[:n_train], y[:n_train]
    X_val, y_val = X[n_train:n_train + n_val], y[n_train:n_train + n_val]
    X_test, y_test = X[n_train + n_val:n_train + n_val + n_test], y[n_train + n_val:n_train + n_val + n_test]
    mean = X_train.mean(axis=0)
    return Dataset(name, description, X_train - mean, y_train, X_val - mean, y_val, X_test - mean, y_test)


def load_digits_dataset() -> Dataset:
    X, y = _digits_arrays()
    X = X * (255.0 / 16.0)  # MNIST's pixel range, so the handout's learning rate fits
    return handout_split(X, y, (1000, 397, 400), name="digits",
                         description="scikit-learn bundled digits (8x8, 1,797 images), offline stand-in for MNIST")


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (pixels 0..16, labels), read from the file it bundles. Importing
    scikit-learn to read it cost 1.8-2.6 s of every `grade` and `check`; the file is one
    CSV whose layout `load_digits` documents (64 pixels, then the label), read the same way."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits  # a future layout: the documented way, slower

        digits = load_digits()
        return digits.data, digits.target
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def load_mnist(data_dir: Path, download: bool = False) -> Dataset:
    """From `mnist.npz` (X 70000x784, y) in data_dir; with download=True it is fetched from
    OpenML once and saved there."""
    npz = data_dir / "mnist.npz"
    if not npz.is_file():
        if not download:
            raise DataUnavailable(f"{npz} not found (grade once with --download and internet, "
                                  "or copy an mnist.npz with arrays X and y there)")
        _download_mnist(npz)
    with np.load(npz, allow_pickle=False) as data:
        X, y = data["X"], data["y"].astype(np.int64)
    if X.shape != (70000, 784):
        raise DataUnavailable(f"{npz}: X has shape {X.shape}, expected (70000, 784)")
    return handout_split(X, y, (50000, 10000, 10000), name="mnist",
                         description=f"MNIST 70,000 images, 50k/10k/10k as in the handout ({npz})")


def _download_mnist(npz: Path) -> None:
    from sklearn.datasets import fetch_openml

    try:
        X, y = fetch_openml("mnist_784", version=1, as_frame=False, return_X_y=True,
                            data_home=str(npz.parent / "openml"))
    except Exception as exc:  # network errors come in many types
        raise DataUnavailable(f"could not download MNIST from OpenML: {exc}") from exc
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz, X=np.asarray(X, dtype=np.uint8), y=np.asarray(y).astype(np.int64))


def load_fashion_mnist(folder: Path = FASHION_DIR) -> Dataset:
    def idx(name: str, offset: int) -> np.ndarray:
        path = folder / name
        if not path.is_file():
            raise DataUnavailable(f"{path} not found: `apt-get install dataset-fashion-mnist`")
        with gzip.open(path, "rb") as fh:
            return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)

    X = np.concatenate([idx("train-images-idx3-ubyte.gz", 16), idx("t10k-images-idx3-ubyte.gz", 16)])
    y = np.concatenate([idx("train-labels-idx1-ubyte.gz", 8), idx("t10k-labels-idx1-ubyte.gz", 8)])
    return handout_split(X.reshape(-1, 784), y, (50000, 10000, 10000), name="fashion-mnist",
                         description=f"Fashion-MNIST 70,000 images from {folder}, split as the handout splits MNIST")


def load_cifar100(data_dir: Path, download: bool = False) -> Dataset:
    """The official CIFAR-100 python archive (folder `cifar-100-python` with the `train` and
    `test` pickles, or its .tar.gz) in data_dir, 20 coarse classes, the handout's split: the
    official training set's first 40,000 images for training and the next 10,000 for
    validation, per-channel mean/std of the training split. The official test set is the
    held-out split."""
    folder = _cifar_folder(data_dir, download)
    train, test = _unpickle(folder / "train"), _unpickle(folder / "test")
    nhwc = lambda flat: np.asarray(flat, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    X, y = nhwc(train[b"data"]).astype(np.float32) / 255, np.asarray(train[b"coarse_labels"], dtype=np.int64)
    X_test = nhwc(test[b"data"]).astype(np.float32) / 255
    y_test = np.asarray(test[b"coarse_labels"], dtype=np.int64)
    mean = X[:40000].mean(axis=(0, 1, 2), keepdims=True)
    std = X[:40000].std(axis=(0, 1, 2), keepdims=True)
    norm = lambda a: (a - mean) / std
    return Dataset("cifar100", f"CIFAR-100, 20 coarse classes, 40k/10k split of the training set; "
                               f"held-out: the official test set ({folder})",
                   norm(X[:40000]), y[:40000], norm(X[40000:50000]), y[40000:50000], norm(X_test), y_test)


def _cifar_folder(data_dir: Path, download: bool) -> Path:
    folder = data_dir / "cifar-100-python"
    archive = data_dir / "cifar-100-python.tar.gz"
    if not (folder / "train").is_file():
        if not archive.is_file() and download:
            import urllib.request

            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                urllib.request.urlretrieve(CIFAR_URL, archive)
            except OSError as exc:
                raise DataUnavailable(f"could not download CIFAR-100: {exc}") from exc
        if not archive.is_file():
            raise DataUnavailable(f"CIFAR-100 not found in {data_dir} (put cifar-100-python.tar.gz or its "
                                  "extracted folder there, or grade once with --download)")
        import tarfile

        with tarfile.open(archive) as tar:
            tar.extractall(data_dir, filter="data")
    return folder


def _unpickle(path: Path) -> dict:
    import pickle

    # The official archive is pickled; it comes from the TA's data folder, never from a student.
    with path.open("rb") as fh:
        return pickle.load(fh, encoding="bytes")


def synthetic_cifar(seed: int = 0, sizes: tuple[int, int, int] = (2000, 500, 500), noise: float = 12.0) -> Dataset:
    """CIFAR-shaped stand-in for tests and the offline demo: 20 Gaussian class means plus
    noise, normalised per channel like the real data. Not real images: its threshold is
    calibrated separately (rubrics/modular.toml)."""
    rng = np.random.RandomState(seed)
    means = rng.randn(20, 32, 32, 3).astype(np.float32)

    def draw(n: int):
        labels = rng.randint(20, size=n)
        return (means[labels] + noise * rng.randn(n, 32, 32, 3).astype(np.float32)), labels.astype(np.int64)

    (X, y), (X_val, y_val), (X_test, y_test) = (draw(n) for n in sizes)
    mean, std = X.mean(axis=(0, 1, 2), keepdims=True), X.std(axis=(0, 1, 2), keepdims=True)
    norm = lambda a: ((a - mean) / std).astype(np.float32)
    return Dataset("synthetic-cifar", f"synthetic CIFAR-shaped data (20 classes, {sizes[0]}/{sizes[1]}/{sizes[2]} "
                                      "images of 32x32x3, Gaussian class means plus noise): offline stand-in",
                   norm(X), y, norm(X_val), y_val, norm(X_test), y_test)


LOADERS = {
    "mnist": lambda data_dir, download: load_mnist(data_dir, download),
    "digits": lambda data_dir, download: load_digits_dataset(),
    "fashion-mnist": lambda data_dir, download: load_fashion_mnist(),
    "cifar100": lambda data_dir, download: load_cifar100(data_dir, download),
    "synthetic-cifar": lambda data_dir, download: synthetic_cifar(),
}


def resolve_dataset(requested: str, choices: dict, data_dir: Path | None = None,
                    download: bool = False) -> tuple[Dataset, str]:
    """Returns the dataset and a warning to show when it is a stand-in.

    `choices` is the rubric's [data] table: `default` (the real dataset), `offline` (the
    stand-in) and `datasets` (every name the rubric has thresholds for). `auto` takes the
    default when it is here and otherwise says loudly that it uses the stand-in; naming a
    dataset explicitly never falls back.
    """
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    allowed = choices.get("datasets", [])
    if requested == "auto":
        try:
            return LOADERS[choices["default"]](data_dir, download), ""
        except DataUnavailable as exc:
            offline = choices["offline"]
            return LOADERS[offline](data_dir, download), (
                f"{choices['default']} not available ({exc}). Using the offline stand-in: {offline}, "
                f"with its own calibrated thresholds. Pass --dataset {choices['default']} to refuse the stand-in."
            )
    if requested not in allowed:
        raise GraderError(f"unknown dataset {requested!r} for this assignment; choose from auto, {', '.join(allowed)}")
    return LOADERS[requested](data_dir, download), ""
