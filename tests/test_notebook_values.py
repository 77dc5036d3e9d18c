"""Values read from a student's notebook without executing it."""
from __future__ import annotations

import nbformat
import pytest

from grader.notebook_values import NotebookValueError, read_values


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
