"""Values read from a student's notebook without executing it."""
from __future__ import annotations

import nbformat
import pytest

from grader.notebooks.values import NotebookValueError, read_values


def notebook(tmp_path, *cells: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# TinyNet")] + [nbformat.v4.new_code_cell(c) for c in cells]
    path = tmp_path / "Problem_1.ipynb"
    nbformat.write(nb, path)
    return path


def test_constants_and_arithmetic_are_read_and_the_last_assignment_wins(tmp_path):
    path = notebook(tmp_path, "%matplotlib inline\nbatch_size = 64\nl2_lambda = None",
                    "batch_size, epochs = 128, 8\nl2_lambda = 1e-4 / (2 * 0.01)\nlr_decay: float = 0.5")
    assert read_values(path, ("batch_size", "epochs", "l2_lambda", "lr_decay")) == {
        "batch_size": 128, "epochs": 8, "l2_lambda": pytest.approx(0.005), "lr_decay": 0.5}


@pytest.mark.parametrize("source, message", [
    ("batch_size = get_bs()", "`batch_size = get_bs()` cannot be read without running the notebook"),
    ("batch_size = None", "leaves batch_size = None (the TODO is not done)"),
    ("epochs = 3", "never sets batch_size"),
])
def test_unreadable_values_say_why(tmp_path, source, message):
    with pytest.raises(NotebookValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_values(notebook(tmp_path, source), ("batch_size",))


def test_broken_or_missing_notebook_is_a_clear_error(tmp_path):
    (tmp_path / "Problem_1.ipynb").write_text("{not json")
    with pytest.raises(NotebookValueError, match="not a readable notebook"):
        read_values(tmp_path / "Problem_1.ipynb", ("x",))
    with pytest.raises(NotebookValueError, match="missing from the submission"):
        read_values(tmp_path / "nope.ipynb", ("x",))


def test_a_truncated_notebook_is_read_as_far_as_the_report_salvages_it(tmp_path):
    """The same reader as the notebook step: an upload cut off in the last cell still gives the
    values set in the cells before it (the strict reader called the whole file unreadable)."""
    path = notebook(tmp_path, "l2_lambda = 0.005\nbatch_size = 64", "epochs = 8\nprint('training ...')")
    text = path.read_text()
    path.write_text(text[:text.index("training")])
    assert read_values(path, ("l2_lambda", "batch_size")) == {"l2_lambda": 0.005, "batch_size": 64}


def test_names_bound_earlier_resolve_to_their_values(tmp_path):
    path = notebook(tmp_path, "weight_decay = 1e-4\nlr = 0.01",
                    "l2_lambda = weight_decay / (2 * lr)\nbatch_size = 64\nbatch_size *= 2",
                    "epochs = n = 4\nlr = 0.5  # rebinding later does not change l2_lambda")
    assert read_values(path, ("l2_lambda", "batch_size", "epochs")) == {
        "l2_lambda": pytest.approx(0.005), "batch_size": 128, "epochs": 4}


def test_a_function_body_does_not_leak_its_locals(tmp_path):
    path = notebook(tmp_path, "lr = 0.01", "def f():\n    lr = 5\n    return lr", "l2_lambda = 1e-4 / (2 * lr)")
    assert read_values(path, ("l2_lambda",))["l2_lambda"] == pytest.approx(0.005)


@pytest.mark.parametrize("cells, message", [
    (["l2_lambda = weight_decay / (2 * lr)", "weight_decay, lr = 1e-4, 0.01"],
     "`l2_lambda = weight_decay / (2 * lr)` cannot be read without running the notebook "
     "(`weight_decay` is not set earlier in the notebook)"),
    (["lr = pick_lr()", "l2_lambda = 1e-4 / (2 * lr)"],
     "(`lr` comes from `lr = pick_lr()`)"),
    (["lr = 0.01", "for lr in [0.1, 0.01]:\n    pass", "l2_lambda = 1e-4 / (2 * lr)"],
     "(`lr` comes from `for lr in [0.1, 0.01]:`)"),
    (["lr = None", "l2_lambda = 1e-4 / (2 * lr)"], "(`lr` is None)"),
    (["lr = 0", "l2_lambda = 1e-4 / (2 * lr)"], "(ZeroDivisionError in 0.0001 / (2 * lr))"),
])
def test_what_cannot_be_resolved_is_named(tmp_path, cells, message):
    with pytest.raises(NotebookValueError) as info:
        read_values(notebook(tmp_path, *cells), ("l2_lambda",))
    assert message in str(info.value)
