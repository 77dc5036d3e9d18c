"""The report's figures (grader/reporting/plots.py): reusing one figure for several checks' curves, and
drawing a check's curves while the probe's later tasks run, must not change a pixel of any of
them, and a figure drawn early from numbers the check did not end up with is not kept."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.image import imread

from grader.reporting import plots
from grader.grading.engine import Grader
from grader.reporting.plots import CurveFigures, EarlyCurves, render_figures

from conftest import OPTIONS, REPO

RNG = np.random.default_rng(0)
CHECKS = {  # drawn in this order by one CurveFigures, so each reuses what the ones before built
    "toy": {"loss_history": np.linspace(2.3, 0.1, 100), "grad_magnitude_history": RNG.random(100),
            "train_acc_history": np.linspace(0.1, 1, 100), "val_acc_history": np.linspace(0.1, 0.9, 100)},
    "data": {"loss_history": 2.3 * np.exp(-np.arange(2000) / 300) + RNG.random(2000) * 0.1,
             "grad_magnitude_history": RNG.random(2000) * 1e-3,
             "train_acc_history": np.linspace(0.5, 0.98, 20), "val_acc_history": np.linspace(0.5, 0.96, 20)},
    "no_accuracy": {"loss_history": np.array([3.0, 2.0, 1.5]), "grad_magnitude_history": np.array([5.0, 1e4, 2.0])},
    "only_val": {"loss_history": np.array([1.0, 2.0]), "val_acc_history": np.array([0.3, 0.2, 0.9])},
    "empty_loss": {"loss_history": np.array([]), "grad_magnitude_history": np.array([1e-3, 2e-3])},
    "toy_again": {"loss_history": np.linspace(5, 4, 7), "grad_magnitude_history": np.full(7, np.nan),
                  "train_acc_history": np.array([0.5]), "val_acc_history": np.array([0.25])},
}


def test_a_reused_figure_draws_the_same_pixels_as_a_new_one(tmp_path):
    reused = CurveFigures()
    for name, data in CHECKS.items():
        reused.draw(data, name, tmp_path / f"{name}-reused.png")
        CurveFigures().draw(data, name, tmp_path / f"{name}-new.png")
        new, again = imread(tmp_path / f"{name}-new.png"), imread(tmp_path / f"{name}-reused.png")
        assert new.shape == again.shape and np.array_equal(new, again), name


def test_every_check_with_a_loss_history_gets_curves_and_square_weights_get_a_grid(tmp_path):
    artifacts = {"a": CHECKS["toy"], "b": {**CHECKS["data"], "W1": RNG.random((64, 10))},
                 "c": {"W1": RNG.random((10, 3))}, "d": {"accuracy": np.array(0.9)}}
    figures = render_figures(artifacts, tmp_path)
    assert figures == {"a: training curves": "figures/a-curves.png", "b: training curves": "figures/b-curves.png",
                       "b: first-layer weights": "figures/b-weights.png"}
    assert all(imread(tmp_path / path).size for path in figures.values())


@pytest.fixture
def drawn_by(monkeypatch):
    """check id -> the threads that drew its curves."""
    calls: dict[str, list[str]] = {}
    draw = CurveFigures.draw

    def spy(self, data, title, path):
        calls.setdefault(title, []).append(threading.current_thread().name)
        return draw(self, data, title, path)
    monkeypatch.setattr(CurveFigures, "draw", spy)
    return calls


def test_curves_drawn_early_are_kept_only_when_the_check_ends_with_those_numbers(tmp_path, drawn_by):
    early = EarlyCurves(tmp_path)
    early.submit("same", CHECKS["toy"])  # the check's final numbers: kept, not drawn again
    early.submit("changed", CHECKS["toy"])  # the check ended with other numbers: drawn again
    early.submit("gone", CHECKS["data"])  # the check ended without curves: its file is removed
    figures = render_figures({"same": CHECKS["toy"], "changed": CHECKS["no_accuracy"],
                              "gone": {"accuracy": np.array(0.5)}}, tmp_path, early)
    assert figures == {"same: training curves": "figures/same-curves.png",
                       "changed: training curves": "figures/changed-curves.png"}
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["changed-curves.png", "same-curves.png"]
    main = threading.current_thread().name
    assert drawn_by == {"same": ["early-curves"], "changed": ["early-curves", main], "gone": ["early-curves"]}
    CurveFigures().draw(CHECKS["no_accuracy"], "changed", tmp_path / "fresh.png")
    assert np.array_equal(imread(tmp_path / "figures" / "changed-curves.png"), imread(tmp_path / "fresh.png"))


def test_a_failed_grading_leaves_no_early_figure_behind(tmp_path):
    early = EarlyCurves(tmp_path)
    early.submit("toy", CHECKS["toy"])
    early.discard()
    assert list((tmp_path / "figures").iterdir()) == []


def test_a_grading_draws_its_training_curves_while_the_probe_runs_with_the_same_pixels(
        tmp_path, drawn_by, monkeypatch):
    given = {}

    def keep(artifacts, out_dir, early=None):
        given.update(artifacts)
        return render_figures(artifacts, out_dir, early)
    monkeypatch.setattr(plots, "render_figures", keep)
    options = replace(OPTIONS, execute="none", skip_data=True)  # the toy trainings: two checks with curves
    with Grader("pset4", options) as grader:
        result = grader.grade(REPO / "reference" / "pset4", out_dir=tmp_path / "report")
    curves = {name: path for name, path in result.figures.items() if name.endswith("training curves")}
    assert len(curves) == 2 and len(drawn_by) == 2, result.figures
    assert all(threads == ["early-curves"] for threads in drawn_by.values()), drawn_by
    again = render_figures(given, tmp_path / "again")  # drawn after the probe, as before
    for name, path in curves.items():
        assert np.array_equal(imread(tmp_path / "report" / path), imread(tmp_path / "again" / again[name])), name
