"""Realistic modular submissions, each with the exact points it must get and a phrase of the
message that names the problem (tests/fixtures/modular/SCENARIOS.md describes each one).

The exact-points table runs without the TinyNet training (skip_data: 32 autograded points);
TinyNet itself is tested on the fixtures where it tells something."""
from __future__ import annotations

from dataclasses import replace

import pytest

from grader.engine import GradeOptions, Grader

from conftest import FIXTURES

MODULAR = FIXTURES / "modular"
OPTIONS = GradeOptions(sandbox="process", dataset="synthetic-cifar", execute="none")  # notebooks: test_notebook*.py
SGD_WD = "SGD with weight decay: w off by relative error"
L2_WD = "L2 and weight decay 0.0001 at lr 0.01 end"

EXPECTED = {
    "correct_variant": (32, {}),  # other names (hidden_w, out_w), loops, lambda as an expression
    "correct_adam_t_per_layer": (32, {}),  # accepted: the handout cannot tell the conventions apart
    "correct_outside_todo": (32, {}),
    # Decision (rubrics/modular.toml): the handout specifies the tanh approximation; the exact
    # erf form keeps the numeric-gradient checks and loses those against published/reference values.
    "correct_gelu_erf": (26.5, {
        "gelu_forward_handout": (0, "gelu forward: out off by relative error 1.08e-03"),
        "gelu_forward_hidden": (0, "differs from the reference for out"),
        "gelu_backward_hidden": (0, "differs from the reference for dx"),
        "fc_gelu_hidden": (0, "TestFCGeLU: differs from the reference for out"),
        "small_fcn_handout": (0.5, "scores off by relative error"),
    }),
    "bug_wd_twice": (27, {
        "sgd_wd_handout": (0, SGD_WD),
        "sgd_wd_steps_hidden": (0, "SGD with weight decay: parameters after several steps differ"),
        # by the definition: the student's own SGD with weight decay on one side
        "l2_equals_weight_decay": (0, L2_WD),
    }),
    "bug_wd_times_lr": (27, {
        "sgd_wd_handout": (0, SGD_WD),
        "sgd_wd_steps_hidden": (0, "differ from the reference"),
        "l2_equals_weight_decay": (0, L2_WD),
    }),
    "bug_adam_t_per_param": (29, {
        "adam_steps_hidden": (0, "Adam: parameters after several steps differ from the reference"),
        "adam_wd_steps_hidden": (0, "Adam with weight decay: parameters after several steps differ"),
    }),
    "bug_adam_wd_sign": (30, {
        "adam_wd_steps_hidden": (0, "Adam with weight decay: parameters after several steps differ"),
    }),
    "bug_l1_l2_pass": (28, {
        "l1_gradients": (0, "the gradients are unchanged: is the method still `pass`?"),
        "l2_equals_weight_decay": (0, "with l2_lambda = 0.005 from the notebook, " + L2_WD),
    }),
    "bug_l2_lambda_wrong": (30, {
        "l2_equals_weight_decay": (0, "with l2_lambda = 0.0001 from the notebook, " + L2_WD),
    }),
    "bug_dropout_no_rescale": (31.5, {
        "dropout_forward_stats": (1.5, "the training-time mean is 0.25× the input's (inverted dropout divides"),
    }),
    "bug_dropout_test_time": (31.5, {
        "dropout_forward_stats": (1.5, "changes the input at test time (is_training=False)"),
    }),
    "bug_softmax_no_max": (31.6667, {
        "softmax_ce_hidden": (0.6667, "cross_entropy: differs from the reference for dx (1 of 2 inputs)"),
    }),
    "bug_fc_backward_transposed": (28.5834, {
        "fc_backward_numeric": (0.6667, "fc backward: dw off by relative error"),
        "fc_backward_hidden": (0.6667, "differs from the reference for dw (2 of 2 inputs)"),
        "fc_gelu_hidden": (0.75, "TestFCGeLU: differs from the reference for dw"),
        "small_fcn_handout": (1.5, "gradient dw1 off by relative error"),
        "dropout_net_numeric": (0, "DropoutNet keep_prob=0: largest relative error"),
    }),
    "bug_gelu_backward_missing_term": (25.75, {
        "gelu_backward_numeric": (0, "gelu backward: dx off by relative error"),
        "gelu_backward_hidden": (0, "differs from the reference for dx"),
        "fc_gelu_numeric": (0, "TestFCGeLU backward: dx off by relative error"),
        "fc_gelu_hidden": (0.25, "differs from the reference for dx"),
        "small_fcn_handout": (1.5, "gradient dw1 off by relative error"),
        "dropout_net_numeric": (0, "DropoutNet keep_prob=0"),
    }),
    "bug_tinynet_hparams_unreadable": (32, {}),  # its lib is correct; the TinyNet test covers it
}


@pytest.fixture(scope="module")
def grader():
    with Grader("modular", replace(OPTIONS, skip_data=True)) as g:
        yield g


@pytest.mark.parametrize("name", list(EXPECTED))
def test_fixture_gets_exact_points(grader, name):
    total, failing = EXPECTED[name]
    result = grader.grade(MODULAR / name)
    for check in result.checks():
        if check.status == "skipped":
            assert check.id == "tinynet_accuracy"
        elif check.id in failing:
            points, phrase = failing[check.id]
            assert check.points == pytest.approx(points, abs=1e-3), (check.id, check.message)
            assert phrase in check.message, (check.id, check.message)
        else:
            assert check.status == "passed", (check.id, check.message)
    assert result.autograded_points == pytest.approx(total, abs=1e-3)


@pytest.fixture(scope="module")
def tinynet_grader():
    with Grader("modular", OPTIONS) as g:
        yield g


def tinynet(grader, name):
    return next(c for c in grader.grade(MODULAR / name).checks() if c.id == "tinynet_accuracy")


def test_tinynet_of_a_correct_variant_earns_full_points(tinynet_grader):
    check = tinynet(tinynet_grader, "correct_variant")
    assert check.points == 5, check.message
    assert "batch_size=128, epochs=8, lr_decay=0.7, lr_decay_every=2" in check.message


def test_tinynet_with_a_broken_backward_pass_stays_at_chance(tinynet_grader):
    check = tinynet(tinynet_grader, "bug_fc_backward_transposed")
    assert check.points == 0 and "held-out accuracy 0.0" in check.message


def test_unreadable_tinynet_hyper_parameters_are_an_error_with_the_reason(tinynet_grader):
    check = tinynet(tinynet_grader, "bug_tinynet_hparams_unreadable")
    assert check.status == "error" and check.points == 0
    assert "cannot read the TinyNet hyper-parameters" in check.message
