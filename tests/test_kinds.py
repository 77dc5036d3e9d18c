"""The generic check kinds beside an assignment's own kinds in one rubric: each task runs in the
probe of its kind (pset4's probe and the generic one), each probe behind its own import gate."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from grader.course import CourseDir
from grader.engine import Grader
from grader.errors import RubricError
from grader.kinds import GENERIC, kinds_for
from grader.kinds.common import case_inputs
from grader.rubric import load_rubric

from conftest import OPTIONS, PSET4_FIXTURES, REPO

# pset4's own ReLU gradient check, and its hidden-scores check written with the generic kind.
MIXED = '''
[assignment]
id = "pset4"
title = "pset4 with a generic check"
probe = "pset4"
owned = ["mlp.py"]
provided = ["utils.py"]
detect = ["mlp.py"]
total_points = 5

[[questions]]
id = "Q"
title = "ReLU network"
points = 5

  [[questions.checks]]
  id = "relu_gradcheck"
  kind = "gradcheck"
  points = 1
  activation = "relu"
  reg = 0.1
  tolerance = 1e-5

  [[questions.checks]]
  id = "relu_scores_generic"
  kind = "function"
  points = 4
  visibility = "hidden"
  module = "mlp"
  function = "TwoLayerMLP.loss"
  init = [6, 9, 4, 0.1]
  init_seed = 0
  args = ["X"]
  generate = { X = { normal = [0, 2], shape = [7, 6] } }
  cases = [{ seed = 1 }, { seed = 2 }]
  compare = "reference"
  tolerance = 1e-7
'''


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    rubrics = tmp_path_factory.mktemp("rubrics")
    (rubrics / "pset4.toml").write_text(MIXED)
    course = CourseDir(REPO / "reference", REPO / "student_template", rubrics)
    with Grader("pset4", OPTIONS, course) as grader:
        yield grader


def points(result):
    return {c.id: (c.points, c.message) for c in result.checks()}


def test_both_probes_run_and_the_reference_passes(mixed):
    assert mixed.kinds["function"] is GENERIC["function"]
    result = mixed.grade(REPO / "reference" / "pset4")
    assert result.autograded_points == 5, points(result)


def test_a_backward_bug_fails_the_gradient_check_only(mixed):
    got = points(mixed.grade(PSET4_FIXTURES / "bug_relu_mask_inverted"))
    assert got["relu_scores_generic"] == (4, "TwoLayerMLP.loss(X) is right on hidden inputs")
    assert got["relu_gradcheck"][0] == 0.5 and "gradient of W1 does not match" in got["relu_gradcheck"][1]


def test_a_forward_bug_fails_the_generic_check(mixed, tmp_path):
    source = (REPO / "reference" / "pset4" / "mlp.py").read_text()
    assert "h1 = np.maximum(0, a1)" in source
    (tmp_path / "mlp.py").write_text(source.replace("h1 = np.maximum(0, a1)", "h1 = np.maximum(0.01 * a1, a1)"))
    got = points(mixed.grade(tmp_path))
    assert got["relu_scores_generic"][0] == 0
    assert got["relu_scores_generic"][1].startswith("TwoLayerMLP.loss(X) on hidden inputs: it differs (relative error ")
    assert got["relu_scores_generic"][1].endswith("(vs the reference solution) (2 of 2 inputs wrong)")
    # the leak below zero is not in the backward pass either: W1 and b1 miss their numerical gradient
    assert got["relu_gradcheck"][0] == 0.5 and "the gradient of b1 does not match" in got["relu_gradcheck"][1]


def test_each_probe_has_its_own_import_gate_and_one_note(mixed):
    result = mixed.grade(PSET4_FIXTURES / "bug_syntax_error")
    notes = [n for n in result.notes if "could not be imported" in n]
    assert notes == ["mlp.py could not be imported: SyntaxError: expected ':' (mlp.py, line 77)"]
    for check in result.checks():
        assert check.points == 0 and check.message == "not run: " + notes[0]


def test_generated_inputs_depend_on_the_seed_only():
    rubric = load_rubric(REPO / "rubrics" / "a1.toml")
    spec = next(c for c in rubric.checks() if c.id == "output_hidden")
    first, again = (case_inputs(spec, spec.params["cases"][0], ["x", "theta"]) for _ in range(2))
    other = case_inputs(spec, spec.params["cases"][1], ["x", "theta"])
    assert first["theta"].shape == (13,) and first["x"].shape == (7,)
    assert np.array_equal(first["theta"], again["theta"]) and not np.array_equal(first["theta"], other["theta"])
    with pytest.raises(RubricError, match="argument 'y' is in neither inputs, generate nor the case"):
        case_inputs(spec, spec.params["cases"][0], ["x", "y"])


def test_an_assignment_without_its_own_kinds_gets_the_generic_ones():
    assert kinds_for("generic") == GENERIC
    assert {"function", "gradcheck", "data_accuracy"} <= set(kinds_for("pset4"))
