"""The generic check kinds (grader/kinds/): beside an assignment's own kinds in one rubric (each
task runs in the probe of its kind, pset4's or the generic one, each probe behind its own import
gate), and in a small course of their own for the options a1 does not use."""
from __future__ import annotations

import numpy as np
import pytest

from grader.course import CourseDir
from grader.grading.engine import Grader
from grader.errors import RubricError
from grader.grading.engine import kinds_for
from grader.kinds import GENERIC
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
total_points = 7

[[questions]]
id = "Q"
title = "ReLU network"
points = 7

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

  # pset4's reference_loss + reference_grads, written with the generic kind: the network's
  # parameters set from hidden inputs, (loss, grads) compared entry by entry.
  [[questions.checks]]
  id = "relu_loss_grads_generic"
  kind = "function"
  points = 2
  visibility = "hidden"
  module = "mlp"
  function = "TwoLayerMLP.loss"
  init = [5, 7, 4, 0.1, "relu"]
  attributes = { "params.W1" = "W1", "params.b1" = "b1", "params.W2" = "W2", "params.b2" = "b2" }
  args = ["X", "y", "reg"]
  generate = { W1 = { normal = [0, 0.45], shape = [5, 7] }, b1 = { normal = [0, 0.1], shape = [7] }, W2 = { normal = [0, 0.4], shape = [7, 4] }, b2 = { normal = [0, 0.1], shape = [4] }, X = { normal = [0, 2], shape = [9, 5] }, y = { integers = [0, 4], shape = [9] } }
  inputs = { reg = 0.05 }
  cases = [{ seed = 11 }, { seed = 12, reg = 0.0 }]
  returns = 2
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
    assert result.autograded_points == 7, points(result)


def test_an_activation_compared_with_is_works_in_the_generic_kind(mixed):
    # init strings are interned in the probe, as pset4's own probe does
    assert mixed.grade(PSET4_FIXTURES / "correct_is_compare").autograded_points == 7


def test_a_backward_bug_fails_the_gradient_check_only(mixed):
    got = points(mixed.grade(PSET4_FIXTURES / "bug_relu_mask_inverted"))
    assert got["relu_scores_generic"] == (4, "TwoLayerMLP.loss(X) is right on hidden inputs")
    assert got["relu_loss_grads_generic"] == (0, "TwoLayerMLP.loss(X, y, reg) on hidden inputs: its value 2['W1'] "
                                                 "differs " + got["relu_loss_grads_generic"][1].split("differs ")[1])
    assert got["relu_loss_grads_generic"][1].endswith("(vs the reference solution) (2 of 2 inputs wrong)")
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


# A course of one small assignment, in a temporary folder: what a1 does not use of the generic
# kinds (several returned values, a numerical gradient of the reference's function, values
# compared as they are, absolute errors).
TOY_REFERENCE = '''import numpy as np


def stats(v):
    v = np.asarray(v, dtype=float)
    return v.mean(), v.std()


def square(x):
    return float(np.sum(x ** 2))


def square_grad(x):
    return 2 * x


SCALE = 3.0


def weights():
    return [1.0, 2.0, 3.0]
'''
TOY_RUBRIC = '''
[assignment]
id = "toy"
title = "toy"
probe = "generic"
owned = ["toy.py"]
detect = ["toy.py"]
total_points = 10

[[questions]]
id = "Q1"
title = "everything"
points = 10

  [[questions.checks]]
  id = "stats_published"
  kind = "function"
  points = 2
  module = "toy"
  function = "stats"
  args = ["v"]
  inputs = { v = [1, 2, 3, 4] }
  returns = 2
  expected = [2.5, 1.118033988749895]
  tolerance = 1e-9

  [[questions.checks]]
  id = "stats_hidden"
  kind = "function"
  points = 2
  visibility = "hidden"
  module = "toy"
  function = "stats"
  args = ["v"]
  generate = { v = { uniform = [-1, 1], shape = [10] } }
  cases = [{ seed = 7 }, { seed = 8 }]
  returns = 2
  compare = "reference"
  tolerance = 1e-9

  [[questions.checks]]
  id = "grad_vs_reference"
  kind = "numeric_gradient"
  points = 3
  module = "toy"
  function = "square"
  gradient = "square_grad"
  args = ["x"]
  wrt = "x"
  numeric_of = "reference"
  generate = { x = { normal = [0, 1], shape = [4] } }
  cases = [{ seed = 3 }]
  tolerance = 1e-6

  [[questions.checks]]
  id = "constants"
  kind = "returned_values"
  points = 3
  module = "toy"
  names = ["SCALE", "weights"]
  expected = [3, 1, 2, 3]
  tolerance = 0.01
  error = "absolute"
  credit = "per_element"
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    for folder in ("reference/toy", "student_template/toy", "rubrics"):
        (root / folder).mkdir(parents=True)
    (root / "reference" / "toy" / "toy.py").write_text(TOY_REFERENCE)
    (root / "student_template" / "toy" / "toy.py").write_text(TOY_REFERENCE)
    (root / "rubrics" / "toy.toml").write_text(TOY_RUBRIC)
    course = CourseDir(root / "reference", root / "student_template", root / "rubrics")
    with Grader("toy", OPTIONS, course) as grader:
        yield grader, root


def test_toy_reference_gets_every_point(toy):
    grader, root = toy
    assert grader.grade(root / "reference" / "toy").autograded_points == 10


def test_toy_bugs_cost_exactly_their_checks(toy, tmp_path):
    grader, root = toy
    source = (TOY_REFERENCE.replace("return v.mean(), v.std()", "return v.mean(), v.var()")
              .replace("return 2 * x", "return x")  # forgot the 2, and square is right
              .replace("return [1.0, 2.0, 3.0]", "return [1.0, 2.0, 4.0]"))
    (tmp_path / "toy.py").write_text(source)
    got = points(grader.grade(tmp_path))
    assert got["stats_published"] == (0, "stats(v) on the rubric's inputs: its value 2 gives 1.25; expected "
                                          "1.118033989 (relative error 5.57e-02 > 1e-09): off by a constant "
                                          "factor of 1.118")
    assert got["stats_hidden"] == (0, "stats(v) on hidden inputs: its value 2 differs (relative error "
                                      + got["stats_hidden"][1].split("relative error ")[1])
    assert got["stats_hidden"][1].endswith("(vs the reference solution) (2 of 2 inputs wrong)")
    assert got["grad_vs_reference"][0] == 0
    assert "off by a constant factor of 0.5 (vs the central difference of the reference's square)" \
        in got["grad_vs_reference"][1]
    assert got["constants"] == (2.25, "SCALE, weights misses 1 of 4 targets (within 0.01): element = 3: "
                                      "4 instead of 3")


def test_toy_module_without_the_names_is_an_error_that_names_them(toy, tmp_path):
    grader, _ = toy
    (tmp_path / "toy.py").write_text("import numpy as np\n")
    got = points(grader.grade(tmp_path))
    assert got["constants"] == (0, "reading SCALE, weights raised an error: AttributeError: module 'toy' has "
                                   "no attribute 'SCALE'")
    assert got["stats_published"][1].startswith("stats(v) raised an error: AttributeError")


def test_a_missing_regularisation_fails_only_the_case_with_reg(mixed):
    got = points(mixed.grade(PSET4_FIXTURES / "bug_missing_reg"))
    assert got["relu_loss_grads_generic"][0] == 1.0  # the case with reg = 0 passes
    assert got["relu_loss_grads_generic"][1].startswith("TwoLayerMLP.loss(X, y, reg) on hidden inputs: its value 1 "
                                                        "differs (relative error 1.08e-01 > 1e-07)")
    assert got["relu_loss_grads_generic"][1].endswith("(vs the reference solution) (1 of 2 inputs wrong)")
    assert got["relu_gradcheck"][0] == 1 and got["relu_scores_generic"][0] == 4


# ---------------------------------------------------------------- how tolerances scale

def test_a_gradient_entry_near_zero_is_judged_against_the_arrays_scale():
    """A correct finite-difference gradient (error ~3e-8 of the scale) where the true gradient
    is ~0: element-wise it is off by a relative error near 1; against the scale it is right."""
    from grader.kinds.base import gradient_error, rel_error

    true = np.array([1.2, -0.8, 3e-9, 0.5])
    fd = true + np.array([2e-8, -3e-8, 3e-8, 1e-8])
    assert rel_error(fd, true) > 0.5
    assert gradient_error(fd, true) < 1e-5
    # where every entry is of the array's size it is the handout's relative error
    assert gradient_error(fd[[0, 1, 3]], true[[0, 1, 3]]) == rel_error(fd[[0, 1, 3]], true[[0, 1, 3]])
    # a real mistake on a small entry still fails: 1e-3 of the scale off where the truth is 0
    wrong = true.copy()
    wrong[2] = 3.6e-3
    assert gradient_error(wrong, true) > 1e-2
    # and NaN, infinity or another shape never pass
    assert gradient_error(np.array([np.nan, 1.0]), np.array([0.0, 1.0])) == np.inf
    assert gradient_error(true[:3], true) == np.inf


def test_the_function_kind_compares_a_returned_gradient_against_its_scale():
    from grader.kinds import common

    want = np.array([0.0, 16.0, 16.0, 0.0, -24.0])
    got = want + np.array([1e-9, 0.0, 0.0, -1e-9, 0.0])  # ~0 where the truth is exactly 0
    assert common.mismatch("it", got, want, 1e-8, "relative", True) != ""  # 1e-9 / 1e-9: relative error 1
    assert common.mismatch("it", got, want, 1e-8, "gradient", True) == ""
    assert "relative error" in common.mismatch("it", want * 1.01, want, 1e-8, "gradient", True)
