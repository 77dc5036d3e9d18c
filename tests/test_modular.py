"""The modular assignment graded by the same engine: reference, template, and what the TinyNet
and L2 checks read from the notebook."""
from __future__ import annotations

import shutil

import pytest

from grader.grading.engine import GradeOptions, Grader

from conftest import REPO

OPTIONS = GradeOptions(sandbox="process", dataset="synthetic-cifar", execute="none")  # notebooks: test_notebook*.py


@pytest.fixture(scope="module")
def modular_grader():
    with Grader("modular", OPTIONS) as grader:
        yield grader


@pytest.fixture(scope="module")
def modular_fast():
    """Without the TinyNet training (seconds per submission instead of ~15)."""
    from dataclasses import replace

    with Grader("modular", replace(OPTIONS, skip_data=True)) as grader:
        yield grader


def test_reference_gets_every_autograded_point(modular_grader):
    result = modular_grader.grade(REPO / "reference" / "modular")
    assert result.autograded_points == result.autograded_max == 37
    tiny = next(c for c in result.checks() if c.id == "tinynet_accuracy")
    assert "batch_size=100, epochs=10" in tiny.message and "synthetic-cifar" in tiny.message
    assert result.dataset.startswith("synthetic CIFAR-shaped data")


def test_template_gets_nothing_and_names_each_todo(modular_fast):
    result = modular_fast.grade(REPO / "student_template" / "modular")
    assert result.autograded_points == 0
    messages = {c.id: c.message for c in result.checks()}
    assert "NotImplementedError: compute feat @ w + b" in messages["fc_forward_handout"]
    assert "leaves l2_lambda = None (the TODO is not done)" in messages["l2_equals_weight_decay"]


def one_question_grade(question: str, sub):
    """`sub` graded on `question`'s checks alone (without the TinyNet training): what a test of one
    check reads, without the DropoutNet gradient check and the other questions' tasks."""
    from dataclasses import replace

    with Grader("modular", replace(OPTIONS, skip_data=True, questions=(question,))) as grader:
        return grader.grade(sub)


def with_notebook_value(tmp_path, old: str, new: str):
    sub = tmp_path / "sub"
    shutil.copytree(REPO / "reference" / "modular", sub)
    nb_path = sub / "Problem_1.ipynb"
    text = nb_path.read_text()
    assert old in text
    nb_path.write_text(text.replace(old, new))
    return sub


def test_l2_lambda_is_read_from_the_notebook_and_checked_for_consistency(tmp_path):
    sub = with_notebook_value(tmp_path, "l2_lambda = 0.005", "l2_lambda = 1e-4")
    check = next(c for c in one_question_grade("sgd_l2", sub).checks() if c.id == "l2_equals_weight_decay")
    assert check.points == 0 and "with l2_lambda = 0.0001 from the notebook" in check.message


def test_unreadable_tinynet_hyper_parameters_are_reported(modular_grader, tmp_path):
    sub = with_notebook_value(tmp_path, "batch_size = 100", "batch_size = pick_batch_size()")
    check = next(c for c in modular_grader.grade(sub).checks() if c.id == "tinynet_accuracy")
    assert check.status == "error" and check.points == 0
    assert "`batch_size = pick_batch_size()` cannot be read without running the notebook" in check.message


def test_parameter_names_are_discovered_not_assumed(modular_fast, tmp_path):
    sub = tmp_path / "renamed"
    shutil.copytree(REPO / "reference" / "modular", sub)
    fc = sub / "lib" / "mlp" / "fully_conn.py"
    fc.write_text(fc.read_text().replace('name="fc1"', 'name="hidden"').replace('name="fc2"', 'name="output"'))
    result = modular_fast.grade(sub)
    failing = [c.id for c in result.checks() if c.status not in ("passed", "skipped")]
    assert failing == []


def test_a_softmax_that_refuses_huge_logits_costs_nothing_and_is_flagged(tmp_path):
    sub = tmp_path / "strict"
    shutil.copytree(REPO / "reference" / "modular", sub)
    lu = sub / "lib" / "mlp" / "layer_utils.py"
    text = lu.read_text()
    old = "    shifted = feat - np.max(feat, axis=-1, keepdims=True)\n    exps"
    assert old in text
    lu.write_text(text.replace(old, "    if np.max(np.abs(feat)) > 500:\n        raise FloatingPointError('logits too large')\n"
                                    + old))
    result = one_question_grade("softmax_ce", sub)
    check = next(c for c in result.checks() if c.id == "softmax_ce_hidden")
    assert check.points == check.max_points, check.message
    flags = [f for f in result.flags if f.startswith("softmax_ce_hidden: ")]
    assert len(flags) == 1 and "FloatingPointError: logits too large" in flags[0], result.flags
