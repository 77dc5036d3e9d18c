"""Figures for the report, drawn in the parent from the numbers the probes returned.

Drawn with matplotlib's object API on the Agg canvas, without pyplot (its import and figure
manager cost more than the drawing) and with a fixed layout (tight_layout draws every figure
twice). The weight grid is an image, written as one without a figure around it. Measured:
8 figures 3.2 s before, see bench/overhead.py for the grader's share of a submission now."""
from __future__ import annotations

from pathlib import Path

import numpy as np

HISTORIES = (("loss_history", "Loss", "iteration"),
             ("grad_magnitude_history", "||grad W1||", "iteration"))
# zlib level 1: PNG encoding was the largest single cost of drawing; the files grow by ~30 %
PNG_OPTIONS = {"compress_level": 1}
WEIGHT_CELL_PIXELS = 3  # each weight becomes a 3x3 block: 28x28 images stay readable


def preload() -> None:
    """Import the drawing modules now (about 0.35 s), in a thread while the process waits for
    something else: a grading worker while its probes run, a batch's parent (the histogram)
    while its workers grade."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    from matplotlib.figure import Figure  # noqa: F401


def render_figures(artifacts: dict[str, dict[str, np.ndarray]], out_dir: Path) -> dict[str, str]:
    """One PNG of training curves per check that trained, and the first-layer weight grid
    where the probe returned W1. Returns name -> path relative to out_dir."""
    figures: dict[str, str] = {}
    folder = out_dir / "figures"
    for check_id, data in artifacts.items():
        if "loss_history" in data:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{check_id}-curves.png"
            _curves(data, check_id, path)
            figures[f"{check_id}: training curves"] = path.relative_to(out_dir).as_posix()
        if "W1" in data and _weights(data["W1"], folder / f"{check_id}-weights.png"):
            figures[f"{check_id}: first-layer weights"] = (folder / f"{check_id}-weights.png").relative_to(out_dir).as_posix()
    return figures


def _curves(data, title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    has_acc = "train_acc_history" in data or "val_acc_history" in data
    rows = 3 if has_acc else 2
    fig = Figure(figsize=(7, 2.4 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1)
    fig.subplots_adjust(left=0.12, right=0.97, top=1 - 0.35 / rows, bottom=0.25 / rows, hspace=0.6)
    for ax, (key, label, xlabel) in zip(axes, HISTORIES):
        if key in data:
            ax.plot(data[key])
        ax.set_ylabel(label)
        ax.set_xlabel(xlabel)
    if has_acc:
        for key, label in (("train_acc_history", "train"), ("val_acc_history", "val")):
            if key in data:
                axes[2].plot(data[key], label=label)
        axes[2].set_ylabel("accuracy")
        axes[2].set_xlabel("epoch")
        axes[2].legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=80, pil_kwargs=PNG_OPTIONS)


def _weights(W1: np.ndarray, path: Path) -> bool:
    """The grid of first-layer weights as a grey image; False when W1's rows are not square images."""
    side = int(round(np.sqrt(W1.shape[0])))
    if side * side != W1.shape[0]:
        return False
    from matplotlib.image import imsave

    path.parent.mkdir(parents=True, exist_ok=True)
    grid = weight_grid(W1.T.reshape(-1, side, side))
    big = np.kron(grid, np.ones((WEIGHT_CELL_PIXELS, WEIGHT_CELL_PIXELS)))
    imsave(path, big, cmap="gray", vmin=0, vmax=255, pil_kwargs=PNG_OPTIONS)
    return True


def weight_grid(images: np.ndarray, padding: int = 1) -> np.ndarray:
    """Tile (N, H, W) images into one picture, each scaled to 0..255."""
    n, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding))
    for i, img in enumerate(images):
        lo, hi = img.min(), img.max()
        scaled = 255.0 * (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
        r, c = divmod(i, cols)
        y0, x0 = padding + r * (h + padding), padding + c * (w + padding)
        grid[y0:y0 + h, x0:x0 + w] = scaled
    return grid
