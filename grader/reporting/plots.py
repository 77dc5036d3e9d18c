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
ACCURACIES = (("train_acc_history", "train"), ("val_acc_history", "val"))
CURVE_KEYS = tuple(key for key, *_ in HISTORIES + ACCURACIES)
# zlib level 1: PNG encoding was the largest single cost of drawing; the files grow by ~30 %
PNG_OPTIONS = {"compress_level": 1}
WEIGHT_CELL_PIXELS = 3  # each weight becomes a 3x3 block: 28x28 images stay readable


def preload() -> None:
    """Import the drawing modules now (about 0.35 s), in a thread while the process waits for
    something else: a grading worker while its probes run (EarlyCurves), a batch's parent (the
    histogram) while its workers grade."""
    from grader.parsing import LOCK

    with LOCK:  # the import parses builtin signatures: not beside another thread's parse (parsing.py)
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401


def render_figures(artifacts: dict[str, dict[str, np.ndarray]], out_dir: Path,
                   early: EarlyCurves | None = None) -> dict[str, str]:
    """One PNG of training curves per check that trained, and the first-layer weight grid
    where the probe returned W1. Returns name -> path relative to out_dir. Curves that `early`
    drew from exactly these numbers are kept; the rest are drawn now."""
    drawn = early.finish() if early is not None else {}
    figures: dict[str, str] = {}
    folder = out_dir / "figures"
    curves = CurveFigures()
    for check_id, data in artifacts.items():
        if "loss_history" in data:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{check_id}-curves.png"
            if not _same_curves(drawn.pop(check_id, None), data):
                curves.draw(data, check_id, path)
            figures[f"{check_id}: training curves"] = path.relative_to(out_dir).as_posix()
        if "W1" in data and _weights(data["W1"], folder / f"{check_id}-weights.png"):
            figures[f"{check_id}: first-layer weights"] = (folder / f"{check_id}-weights.png").relative_to(out_dir).as_posix()
    for check_id in drawn:  # drawn from a task the check did not take its curves from
        (folder / f"{check_id}-curves.png").unlink(missing_ok=True)
    return figures


class EarlyCurves:
    """Training curves drawn in a background thread while the probe's later tasks still run
    (the probe reports each task as it ends): at MNIST scale the data training takes most of a
    submission's time and one core is free for the figures meanwhile. What is drawn here is
    provisional: render_figures keeps a figure only when the check's final numbers are the
    ones it was drawn from.

    The thread imports matplotlib when the probe's first task has ended, not before: until
    then the notebook's kernel and the probe's runner are starting, and the import (0.35 s,
    holding the GIL) delayed both."""

    _WAKE, _STOP = "wake", "stop"

    def __init__(self, out_dir: Path):
        import queue
        import threading

        self._folder = out_dir / "figures"
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._drawn: dict[str, dict[str, np.ndarray]] = {}
        self._woken = False
        self._thread = threading.Thread(target=self._work, name="early-curves", daemon=True)
        self._thread.start()

    def task_ended(self) -> None:
        if not self._woken:
            self._woken = True
            self._queue.put(self._WAKE)

    def submit(self, check_id: str, data: dict[str, np.ndarray]) -> None:
        self.task_ended()
        self._queue.put((check_id, {k: data[k] for k in CURVE_KEYS if k in data}))

    def finish(self) -> dict[str, dict[str, np.ndarray]]:
        """Waits for the queued figures; check id -> the numbers its file was drawn from (once:
        the caller owns those files from then on)."""
        if self._thread.is_alive():
            self._queue.put(self._STOP)
            self._thread.join()
        drawn, self._drawn = self._drawn, {}
        return drawn

    def discard(self) -> None:
        """No report after all (the grading failed): remove what was drawn."""
        for check_id in self.finish():
            (self._folder / f"{check_id}-curves.png").unlink(missing_ok=True)

    def _work(self) -> None:
        if self._queue.get() == self._STOP:
            return
        preload()
        curves = CurveFigures()
        while (item := self._queue.get()) != self._STOP:
            if item == self._WAKE:
                continue
            check_id, data = item
            self._drawn.pop(check_id, None)
            try:
                self._folder.mkdir(parents=True, exist_ok=True)
                curves.draw(data, check_id, self._folder / f"{check_id}-curves.png")
            except Exception:  # noqa: BLE001 - drawn again, and its error raised, by render_figures
                continue
            self._drawn[check_id] = data


def _same_curves(drawn: dict[str, np.ndarray] | None, data: dict[str, np.ndarray]) -> bool:
    if drawn is None or set(drawn) != {k for k in CURVE_KEYS if k in data}:
        return False
    return all(np.array_equal(np.asarray(drawn[k], dtype=float), np.asarray(data[k], dtype=float), equal_nan=True)
               for k in drawn)


class CurveFigures:
    """Draws training curves, reusing one figure per layout (with or without accuracies): its
    axes, tick objects and laid-out tick labels are built once instead of once per check, which
    was a third of the drawing. A reused figure draws the same pixels as a new one
    (tests/test_plots.py)."""

    def __init__(self) -> None:
        self._figures: dict[tuple[str, ...], tuple] = {}

    def draw(self, data: dict[str, np.ndarray], title: str, path: Path) -> None:
        fig, axes, lines, suptitle = self._figure(tuple(key for key in CURVE_KEYS if key in data))
        for key, line in lines.items():
            values = np.asarray(data[key], dtype=float).ravel()
            line.set_data(np.arange(len(values)), values)
        for ax in axes:
            ax.relim()
            if not any(np.isfinite(line.get_ydata()).any() for line in ax.get_lines()):
                ax.set_xlim(0, 1)  # nothing to scale to: the limits of a new axes, not the last check's
                ax.set_ylim(0, 1)
                ax.set_autoscale_on(True)
            ax.autoscale_view()
        suptitle.set_text(title)
        fig.savefig(path, dpi=80, pil_kwargs=PNG_OPTIONS)

    def _figure(self, keys: tuple[str, ...]) -> tuple:
        """The figure for data with these history keys: the same axes, lines and legend as a
        figure drawn for it alone."""
        if keys in self._figures:
            return self._figures[keys]
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        has_acc = any(key in keys for key, _ in ACCURACIES)
        rows = 3 if has_acc else 2
        fig = Figure(figsize=(7, 2.4 * rows))
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, 1)
        fig.subplots_adjust(left=0.12, right=0.97, top=1 - 0.35 / rows, bottom=0.25 / rows, hspace=0.6)
        lines = {}
        for ax, (key, label, xlabel) in zip(axes, HISTORIES):
            if key in keys:
                lines[key] = ax.plot([])[0]
            ax.set_ylabel(label)
            ax.set_xlabel(xlabel)
        if has_acc:
            for key, label in ACCURACIES:
                if key in keys:
                    lines[key] = axes[2].plot([], label=label)[0]
            axes[2].set_ylabel("accuracy")
            axes[2].set_xlabel("epoch")
            axes[2].legend()
        self._figures[keys] = (fig, axes, lines, fig.suptitle(""))
        return self._figures[keys]


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
