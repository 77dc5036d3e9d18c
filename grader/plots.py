"""Figures for the report, drawn in the parent from the numbers the probes returned."""
from __future__ import annotations

from pathlib import Path

import numpy as np

HISTORIES = (("loss_history", "Loss", "iteration"),
             ("grad_magnitude_history", "||grad W1||", "iteration"))


def render_figures(artifacts: dict[str, dict[str, np.ndarray]], out_dir: Path) -> dict[str, str]:
    """One PNG of training curves per check that trained, and the first-layer weight grid
    where the probe returned W1. Returns name -> path relative to out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, str] = {}
    folder = out_dir / "figures"
    for check_id, data in artifacts.items():
        if "loss_history" in data:
            folder.mkdir(parents=True, exist_ok=True)
            figures[f"{check_id}: training curves"] = _save(plt, _curves(plt, data, check_id), folder,
                                                            f"{check_id}-curves.png", out_dir)
        if "W1" in data:
            folder.mkdir(parents=True, exist_ok=True)
            figures[f"{check_id}: first-layer weights"] = _save(plt, _weights(plt, data["W1"], check_id),
                                                               folder, f"{check_id}-weights.png", out_dir)
    return figures


def _curves(plt, data, title):
    has_acc = "train_acc_history" in data or "val_acc_history" in data
    rows = 3 if has_acc else 2
    fig, axes = plt.subplots(rows, 1, figsize=(7, 2.4 * rows))
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
    fig.tight_layout()
    return fig


def _weights(plt, W1: np.ndarray, title: str):
    side = int(round(np.sqrt(W1.shape[0])))
    fig, ax = plt.subplots(figsize=(5, 5))
    if side * side == W1.shape[0]:
        ax.imshow(weight_grid(W1.T.reshape(-1, side, side)), cmap="gray")
    ax.axis("off")
    ax.set_title(title)
    return fig


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


def _save(plt, fig, folder: Path, name: str, out_dir: Path) -> str:
    path = folder / name
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path.relative_to(out_dir).as_posix()
