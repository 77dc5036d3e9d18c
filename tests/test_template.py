"""The student template is generated from the reference, and the committed copy is in sync."""
from __future__ import annotations

import nbformat
import pytest

from grader.errors import GraderError
from grader.rubric import load_rubric
from grader.regions import ANSWER_PLACEHOLDER, strip_code, strip_notebook
from grader.delivery.template import check_anchors, template_differences

from conftest import REPO


@pytest.mark.parametrize("assignment", sorted(p.stem for p in (REPO / "rubrics").glob("*.toml")))
def test_committed_template_is_in_sync_with_the_reference(assignment):
    rubric = load_rubric(REPO / "rubrics" / f"{assignment}.toml")
    files = list(rubric.owned) + list(rubric.provided)
    problems = template_differences(REPO / "reference" / assignment, files, REPO / "student_template" / assignment,
                                    check_anchors(REPO / "rubrics" / f"{assignment}.toml"))
    assert problems == [], "run `mlp-grader assign` and commit student_template/: " + "; ".join(problems)


def test_region_becomes_todo_and_raise():
    source = ("def f(x):\n    y = 1\n    # BEGIN SOLUTION: compute the answer\n    y = x * 2\n"
              "    # END SOLUTION\n    return y\n")
    assert strip_code(source) == ("def f(x):\n    y = 1\n    # TODO: compute the answer\n"
                                  "    raise NotImplementedError('compute the answer')\n    return y\n")


def test_stub_lines_replace_the_region():
    source = "# BEGIN SOLUTION: pick a learning rate\nlr = 0.1\n# STUB: lr = None\n# END SOLUTION\n"
    assert strip_code(source) == "lr = None\n"


@pytest.mark.parametrize("source, problem", [
    ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n# END SOLUTION\n", "without BEGIN"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "nested"),
])
def test_malformed_regions_are_reported_with_the_line(source, problem):
    with pytest.raises(GraderError, match=problem):
        strip_code(source, "mlp.py")


def test_notebook_loses_model_answers_and_outputs():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("### Q3.2\n<!-- BEGIN MODEL ANSWER -->\nθ ← θ − η(g + λ sign θ)\n"
                                      "<!-- END MODEL ANSWER -->"),
        nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")],
                                  execution_count=3),
    ]
    stripped = nbformat.reads(strip_notebook(nbformat.writes(nb)), as_version=4)
    assert stripped.cells[0].source == f"### Q3.2\n{ANSWER_PLACEHOLDER}"
    assert stripped.cells[1].outputs == [] and stripped.cells[1].execution_count is None


def test_template_has_no_solution_left():
    for path in (REPO / "student_template").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "BEGIN SOLUTION" not in text and "BEGIN MODEL ANSWER" not in text, path
