"""The dataset a notebook loads, staged for its sandboxed kernel in full mode: the TA's files
hard-linked under the grader's scratch folder (read-only inside), and for MNIST a prelude that
serves them where the handout's code would download."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from grader.data import DEFAULT_DATA_DIR
from grader.notebooks.config import NotebookConfig


def provide_data(config: NotebookConfig, ctx: Any, grader: Any, work: Path) -> tuple[list[Path], str, str]:
    """(read-only folders for the kernel, trusted prelude, "" or why the data cells are skipped).
    The notebook gets its dataset only when the grader has exactly that dataset."""
    have = getattr(ctx.dataset, "name", "")
    if have != config.data:
        why = f"the grader has no {config.data} here" + (f" (it uses {have})" if have else "")
        return [], "", f"full mode: {why}, so the cells that load it cannot run"
    data_dir = Path(grader.options.data_dir) if grader.options.data_dir else DEFAULT_DATA_DIR
    stage = grader.scratch / "notebook-data"
    if config.data == "mnist":
        staged = stage(data_dir / "mnist.npz", stage / "mnist.npz")
        return [stage], MNIST_PRELUDE.replace("{path}", repr(str(staged))), ""
    if config.data == "cifar100":
        staged = stage(data_dir / "cifar-100-python", stage / "cifar-100-python")
        link = work / (config.data_path or "data/cifar100")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            shutil.rmtree(link) if link.is_dir() and not link.is_symlink() else link.unlink()
        link.symlink_to(staged, target_is_directory=True)
        return [stage], "", ""
    return [], "", f"full mode: the grader cannot provide {config.data}"


def stage(source: Path, target: Path) -> Path:
    """Hard links (or copies) of the TA's data under the grader's scratch folder, once per run:
    the sandbox user can reach it there, and it is mounted read-only."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    files = [source] if source.is_file() else [p for p in sorted(source.rglob("*")) if p.is_file()]
    for file in files:
        dest = target if source.is_file() else target / file.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, dest)
        except OSError:
            shutil.copyfile(file, dest)
    return target


# Runs in the kernel before the notebook (full mode, MNIST): the handout's utils.get_MNIST_data
# calls sklearn's fetch_openml, which needs the network; this serves the TA's mnist.npz instead,
# so the course file's own preparation (seeded permutation, split, mean image) is unchanged.
MNIST_PRELUDE = '''
def _grader_provide_mnist():
    import numpy as np
    import sklearn.datasets
    from sklearn.utils import Bunch

    def fetch_openml(name=None, *args, **kwargs):
        if name != "mnist_784":
            raise OSError("no network in the grader's sandbox; only mnist_784 is provided")
        with np.load({path}, allow_pickle=False) as f:
            X, y = f["X"].astype(np.float64), f["y"].astype(str).astype(object)
        if kwargs.get("return_X_y"):
            return X, y
        return Bunch(data=X, target=y, frame=None)

    sklearn.datasets.fetch_openml = fetch_openml
_grader_provide_mnist()
del _grader_provide_mnist
'''
