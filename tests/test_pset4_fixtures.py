"""Realistic Problem Set 4 submissions, each with the exact points it must get.

For every fixture: the autograded total, and for each check that does not earn full points its
exact points and a phrase of its message that names the problem. Checks not listed must pass
with full points. (Offline digits data; thresholds in rubrics/pset4.toml.)
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from grader.grading.engine import Grader

from conftest import OPTIONS, PSET4_FIXTURES, REPO, check_result, default_subset

ALL_FAIL = ("sigmoid_toy_loss", "sigmoid_scores_hidden", "sigmoid_loss_hidden", "sigmoid_gradcheck",
            "sigmoid_grads_hidden", "predict_hidden", "sigmoid_toy_training", "history_format",
            "relu_toy_loss", "relu_gradcheck", "relu_loss_hidden", "relu_grads_hidden", "relu_toy_training",
            "sigmoid_data_accuracy", "relu_data_accuracy", "relu_beats_sigmoid")
TRAINING = ("sigmoid_toy_training", "history_format", "relu_toy_training", "sigmoid_data_accuracy",
            "relu_data_accuracy", "relu_beats_sigmoid")

# fixture -> (autograded points, {check: (points, phrase of the message)})
EXPECTED = {
    "correct_loops": (45, {}),
    "correct_is_compare": (45, {}),
    "correct_helpers": (45, {}),
    "correct_unstable_predict": (45, {}),  # + a flag: test_predict_overflow_is_a_flag_not_a_deduction
    "correct_softmax_no_shift": (45, {}),  # + two flags: test_softmax_without_the_max_shift_is_flagged
    "bug_relu_mask_inverted": (42.75, {
        "relu_gradcheck": (0.5, "gradient of W1 does not match the numerical gradient"),
        "relu_grads_hidden": (0.75, "relu gradients differ from the reference for W1"),
        "relu_toy_training": (0, "outside the accepted band"),
    }),
    "bug_sigmoid_derivative": (28, {
        "sigmoid_gradcheck": (2, "gradient of b1 does not match the numerical gradient"),
        "sigmoid_grads_hidden": (3, "differ from the reference for W1"),
        "sigmoid_toy_training": (0, "outside the accepted band"),
        "sigmoid_data_accuracy": (0, "held-out test accuracy 0.0850"),
    }),
    "bug_grad_divided_twice": (24.85, {
        "sigmoid_gradcheck": (2, "gradient of W2 does not match the numerical gradient"),
        "sigmoid_grads_hidden": (3, "differ from the reference for W1"),
        "sigmoid_toy_training": (0, "outside the accepted band"),
        "relu_gradcheck": (0.5, "gradient of W1 does not match"),
        "relu_grads_hidden": (0.75, "W2"),
        "relu_toy_training": (0, "outside the accepted band"),
        "sigmoid_data_accuracy": (0, "held-out test accuracy 0.2100"),
        # digits: full points from 0.91 (the reference's 0.94 − 0.03), none below 0.71
        "relu_data_accuracy": (7.1, "held-out test accuracy 0.8875"),
    }),
    "bug_reg_grad_twice": (39.75, {
        "sigmoid_gradcheck": (2, "gradient of W1 does not match the numerical gradient"),
        "sigmoid_grads_hidden": (4, "W1 (2 of 3 inputs)"),  # the hidden case with reg=0 passes
        "relu_gradcheck": (0.5, "gradient of W2 does not match"),
        "relu_grads_hidden": (0.75, "W1 (2 of 2 inputs)"),
    }),
    # Its digits accuracy (0.7325) is within what correct code reaches with another random-draw
    # order (0.730..0.8425): the missing regularisation is charged in the loss and gradient checks.
    "bug_missing_reg": (37.4167, {
        "sigmoid_toy_loss": (0, "gives 1.144317141; expected 1.182248"),
        "sigmoid_loss_hidden": (0.6667, "(2 of 3 failed)"),
        "sigmoid_grads_hidden": (4, "W1 (2 of 3 inputs)"),
        "relu_toy_loss": (0, "expected 1.3037878913298206"),
        "relu_loss_hidden": (0, "relu loss differs from the reference"),
        "relu_grads_hidden": (0.75, "W2 (2 of 2 inputs)"),
    }),
    "bug_predict_scores": (23, {
        "predict_hidden": (0, "it looks like the scores, not their argmax"),
        "sigmoid_data_accuracy": (0, "returned shape (400, 10), expected (400,)"),
        "relu_data_accuracy": (0, "returned shape (400, 10)"),
        "relu_beats_sigmoid": (0, "returned shape (400, 10)"),
    }),
    "bug_xrange": (21, {c: (0, "xrange is Python 2; use range in Python 3") for c in TRAINING}),
    "bug_np_float": (3, {c: (0, "np.float was removed in NumPy 1.24")
                         for c in ALL_FAIL if c not in ("sigmoid_scores_hidden", "predict_hidden")}),
    "bug_hardcoded_loss": (9, {
        "sigmoid_loss_hidden": (0, "loss differs from the reference on hidden inputs with other shapes and reg values (3 of 3 failed)"),
        "sigmoid_gradcheck": (0, "the loss does not depend on W1"),
        "sigmoid_grads_hidden": (0, "differ from the reference for W1"),
        "sigmoid_toy_training": (0, "outside the accepted band"),
        "relu_gradcheck": (0, "the loss does not depend on b2"),
        "relu_loss_hidden": (0, "(2 of 2 failed)"),
        "relu_grads_hidden": (0, "differ from the reference"),
        "relu_toy_training": (0, "outside the accepted band"),
        "sigmoid_data_accuracy": (0, "held-out test accuracy 0.1350"),
        "relu_data_accuracy": (0, "held-out test accuracy 0.1650"),
    }),
    "bug_syntax_error": (0, {c: (0, "not run: mlp.py could not be imported: SyntaxError: expected ':' "
                                    "(mlp.py, line 77)") for c in ALL_FAIL}),
    "bug_import_crash": (0, {c: (0, "could not be imported: FileNotFoundError") for c in ALL_FAIL}),
    "hostile_infinite_loop": (15, {
        **{c: (0, "did not finish within") for c in ALL_FAIL if c.startswith("sigmoid")},
        "predict_hidden": (0, "did not finish"),  # predict is probed with a sigmoid network
        "history_format": (0, "did not finish"),
    }),
    # The sigmoid path crashes (math.exp on an array): every sigmoid behaviour fails, and so do the
    # checks probed with a sigmoid network (predict, history); ReLU beating sigmoid is not charged
    # again: the student's ReLU network is compared with a correct sigmoid network's accuracy.
    "bug_sigmoid_math_exp": (15, {
        **{c: (0, "converted to Python scalars") for c in ALL_FAIL
           if c.startswith("sigmoid") or c in ("predict_hidden", "history_format")},
    }),
    "hostile_os_exit": (21, {c: (0, "does the code call os._exit()") for c in TRAINING}),
    "hostile_memory_blowup": (30, {c: (0, "more memory than the grader allows")
                                   for c in ALL_FAIL if "relu" in c}),
    # Prints "PASSED" and fake JSON results everywhere; only its zero-filled histories have the
    # right lengths.
    "hostile_fake_print": (1, {c: (0, "") for c in ALL_FAIL if c != "history_format"}),
    # Tries to import and patch the grader and to find the reference on disk; under bwrap neither
    # is reachable, so its zero fallback is what gets graded.
    "hostile_patch_grader": (1, {c: (0, "") for c in ALL_FAIL if c != "history_format"}),
}


# Run at the bwrap level only: at the process level the filesystem is visible, and whether the
# fixture finds a copy of the reference depends on what else is on the disk.
BWRAP_ONLY = ("hostile_patch_grader",)


# The default run keeps one fixture of each kind: a correct variant (correct_helpers), a wrong
# gradient (bug_grad_divided_twice), a missing regularisation term (bug_missing_reg), a wrong
# predict (bug_predict_scores), code that crashes on today's numpy (bug_np_float), a submission that
# does not import (bug_syntax_error) and printed fake results (hostile_fake_print). Slow: the same
# kinds again in other code: other correct variants, other gradient bugs (bug_relu_mask_inverted,
# bug_sigmoid_derivative...), other crashes (bug_sigmoid_math_exp), the Python 2 and hard-coded-loss
# bugs, and the hostile fixtures the hostile suite runs at every level (os._exit: test_os_exit;
# the memory blow-up: test_memory_blowup).
@pytest.mark.parametrize("name", default_subset(
    [n for n in EXPECTED if n not in ("hostile_infinite_loop", *BWRAP_ONLY)],
    {"correct_helpers", "bug_grad_divided_twice", "bug_missing_reg", "bug_predict_scores", "bug_np_float",
     "bug_syntax_error", "hostile_fake_print"}))
def test_fixture_gets_exact_points(pset4_grader, name):
    result = pset4_grader.grade(PSET4_FIXTURES / name)
    check_result(result, *EXPECTED[name])


@pytest.mark.slow  # the class in the default run: test_hostile.py's test_infinite_loop[bwrap]
def test_infinite_loop_costs_only_the_checks_that_loop():
    # Shorter time limits keep the test fast (each looping task waits out its limit); the relu
    # checks, 0.02-0.2 s each, still finish well within theirs (0.5-3 s).
    with Grader("pset4", replace(OPTIONS, timeout_scale=0.1)) as grader:
        result = grader.grade(PSET4_FIXTURES / "hostile_infinite_loop")
    check_result(result, *EXPECTED["hostile_infinite_loop"])
    assert {c.status for c in result.checks() if c.points == 0} == {"timeout"}


@pytest.mark.parametrize("name", BWRAP_ONLY)
def test_hostile_fixture_gets_exact_points_under_bwrap(bwrap_sandbox, name):
    with Grader("pset4", replace(OPTIONS, sandbox="bwrap")) as grader:
        result = grader.grade(PSET4_FIXTURES / name)
    assert result.sandbox == "bwrap"
    check_result(result, *EXPECTED[name])


def test_reference_gets_every_autograded_point(pset4_grader):
    result = pset4_grader.grade(REPO / "reference" / "pset4")
    assert result.autograded_points == result.autograded_max == 45
    assert not [f for f in result.flags if "every score raised by" in f]
    assert all(q.points is None for q in result.questions if q.manual)


def test_template_gets_nothing_and_says_what_to_implement(pset4_grader):
    result = pset4_grader.grade(REPO / "student_template" / "pset4")
    assert result.autograded_points == 0
    assert all(c.status == "error" for c in result.checks())
    assert any("NotImplementedError" in c.message for c in result.checks())


def test_missing_mlp_is_a_clear_result_not_a_crash(pset4_grader, tmp_path):
    (tmp_path / "notes.txt").write_text("I forgot my code")
    result = pset4_grader.grade(tmp_path)
    assert result.autograded_points == 0
    assert "mlp.py is missing from the submission" in result.notes
    assert all("mlp.py missing" in c.message for c in result.checks())


def test_students_utils_is_replaced_by_the_trusted_copy(pset4_grader, tmp_path):
    # A student who "fixes" the course file to make their code pass gets the course's copy.
    import shutil

    shutil.copy(REPO / "reference" / "pset4" / "mlp.py", tmp_path / "mlp.py")
    (tmp_path / "utils.py").write_text("raise RuntimeError('student utils imported')\n")
    (tmp_path / "mlp.py").write_text("import utils\n" + (tmp_path / "mlp.py").read_text())
    result = pset4_grader.grade(tmp_path)
    assert result.autograded_points == 45


def test_sigmoid_crash_is_charged_once(pset4_grader):
    """Issue 11: the crash costs the sigmoid questions; "ReLU beats sigmoid" compares the
    student's ReLU network with what a correct sigmoid network reaches with the same settings."""
    result = pset4_grader.grade(PSET4_FIXTURES / "bug_sigmoid_math_exp")
    checks = {c.id: c for c in result.checks()}
    compare = checks["relu_beats_sigmoid"]
    assert compare.points == compare.max_points == 2
    assert compare.message.startswith("ReLU (0.9400) beats a correct sigmoid network with the same settings "
                                      "(0.8275, the reference's)")
    assert "training the sigmoid network failed" in compare.message and "TypeError" in compare.message
    assert "charged in the sigmoid questions, not here" in compare.message
    q252 = next(q for q in result.questions if q.id == "Q2.5.2")
    assert q252.points == q252.max_points == 10
    assert checks["sigmoid_data_accuracy"].points == 0


def test_a_relu_crash_still_costs_the_comparison():
    # Without a ReLU network there is nothing to compare: Q2.5.2 is the question about it (graded
    # alone: the fixture's other questions blow up the memory limit once per task).
    with Grader("pset4", replace(OPTIONS, questions=("Q2.5.2",))) as grader:
        result = grader.grade(PSET4_FIXTURES / "hostile_memory_blowup")
    compare = next(c for c in result.checks() if c.id == "relu_beats_sigmoid")
    assert compare.points == 0 and compare.message.startswith("training the relu network raised an error")


STRESS = "predict_hidden: predict() with every score raised by 1000 (which changes neither the softmax nor the labels)"


def test_predict_overflow_is_a_flag_not_a_deduction(pset4_grader):
    """exp of the raw scores without the max shift: right labels on every graded input (45 of 45
    points) and a flag that names the overflow; the MNIST checks score the labels it returns."""
    result = pset4_grader.grade(PSET4_FIXTURES / "correct_unstable_predict")
    assert result.autograded_points == 45
    flags = [f for f in result.flags if f.startswith(STRESS)]
    assert len(flags) == 1, result.flags
    assert "returns wrong labels on 60 of 60 rows: exp of the raw scores overflows" in flags[0]
    assert "subtract each row's maximum before exp" in flags[0] and "not graded" in flags[0]


def test_softmax_without_the_max_shift_is_flagged(pset4_grader):
    """exp of the raw scores in loss() and predict(): every graded number is right (45 of 45),
    and the TA sees where it overflows."""
    result = pset4_grader.grade(PSET4_FIXTURES / "correct_softmax_no_shift")
    assert result.autograded_points == 45
    overflow = sorted(f for f in result.flags if "every score raised by" in f)
    assert len(overflow) == 2, result.flags
    assert overflow[0].startswith(STRESS) and "returns wrong labels on 60 of 60 rows" in overflow[0]
    assert overflow[1].startswith("sigmoid_loss_hidden: loss() with every score raised by 1000 (which changes "
                                  "neither the softmax nor the labels) gives nan instead of 1.76989: exp of the "
                                  "raw scores overflows")
    assert overflow[1].endswith("not graded: the handout never tests it")


@pytest.mark.parametrize("name", ["correct_loops", "correct_helpers", "bug_relu_mask_inverted", "bug_predict_scores"])
def test_no_overflow_flag_for_a_max_shifted_softmax_or_an_already_failing_predict(pset4_grader, name):
    # bug_relu_mask_inverted and bug_predict_scores shift by the maximum and then take log(probs):
    # log(0) on scores far apart is not what this flag is about, and a constant offset never
    # produces it. bug_predict_scores' predict already fails (it returns the scores).
    result = pset4_grader.grade(PSET4_FIXTURES / name)
    assert not [f for f in result.flags if "every score raised by" in f], result.flags


def test_standin_rule_is_named_and_uses_the_references_own_accuracy(pset4_grader):
    """On digits the training checks compare with the reference trained with the same settings,
    data and seeds; the rubric's stored reference accuracies are what the reference really gets."""
    result = pset4_grader.grade(REPO / "reference" / "pset4")
    checks = {c.id: c for c in result.checks()}
    for check_id, reference, full in (("sigmoid_data_accuracy", 0.8275, 0.7275), ("relu_data_accuracy", 0.94, 0.91)):
        details = checks[check_id].details
        assert details["got"] == details["reference_accuracy"] == reference
        assert details["rule"] == "reference"
        assert "digits is an offline stand-in" in checks[check_id].message
        assert f"full points from {full:g} (reference − " in checks[check_id].message


def test_real_mnist_keeps_the_handouts_thresholds(pset4_grader):
    from grader.assignments.pset4 import accuracy_rule
    from grader.kinds.base import Context

    class Mnist:
        name = "mnist"

    ctx = Context(dataset=Mnist(), thresholds=pset4_grader.rubric.thresholds("mnist"))
    rule = accuracy_rule("relu", ctx)
    assert (rule.name, rule.full, rule.zero) == ("handout", 0.95, 0.80)
    assert "mnist is the handout's dataset, so its absolute thresholds apply" in rule.why
    assert rule.fraction(0.96) == 1.0 and rule.fraction(0.875) == pytest.approx(0.5)
    assert rule.reference == 0.963 and "the reference reaches about 0.963" in rule.why
    # a course's own rubric need not state the reference's accuracy for the handout rule
    bare = Context(dataset=Mnist(), thresholds={"relu": {"full": 0.9, "zero": 0.5}})
    assert accuracy_rule("relu", bare).why.endswith("(full points from 0.9, none below 0.5)")


@pytest.mark.slow
def test_fashion_mnist_reference_accuracies_are_what_the_reference_reaches():
    """The rubric's stored Fashion-MNIST reference accuracies (~5 min: two 50,000-image runs)."""
    from grader.data import FASHION_DIR

    if not FASHION_DIR.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist")
    with Grader("pset4", replace(OPTIONS, dataset="fashion-mnist", execute="none")) as grader:
        result = grader.grade(REPO / "reference" / "pset4")
    checks = {c.id: c for c in result.checks()}
    for check_id in ("sigmoid_data_accuracy", "relu_data_accuracy"):
        details = checks[check_id].details
        assert details["rule"] == "reference"
        assert details["got"] == details["reference_accuracy"], (check_id, details)
