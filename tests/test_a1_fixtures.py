"""Realistic Assignment 1 submissions, each with the exact points it must get (a1 is graded
with the generic check kinds only; rubrics/a1.toml).

For every fixture: the autograded total, and for each check that does not earn full points its
exact points and a phrase of its message that names the problem. Checks not listed must pass
with full points."""
from __future__ import annotations

import shutil

import pytest


from conftest import FIXTURES, OPTIONS, REPO, check_result

A1_FIXTURES = FIXTURES / "a1"
ALL = ("fit_dataset_1", "fit_dataset_2", "loss_grad_numeric", "loss_grad_reference", "output_handout",
       "output_hidden", "loss_grad_handout", "loss_grad_hidden")
GRADIENT = ("loss_grad_numeric", "loss_grad_reference", "loss_grad_handout", "loss_grad_hidden")

# fixture -> (autograded points of 59, {check: (points, phrase of the message)})
EXPECTED = {
    # Loops instead of vectors, a float for a scalar x, and the seed's own solver fits (≈1e-7
    # from the targets, not ours): full points.
    "correct_loops": (59, {}),
    # Dataset 2's kinks one step late: 11 of 13 targets, credit per target (12 · 11/13).
    "bug_fit_misses_points": (57.1538, {
        "fit_dataset_2": (10.1538, "misses 2 of 13 targets (within 0.0001): x = 4: 4 instead of 2; x = 5: 3 instead of 1"),
    }),
    # ∂ReLU(z)/∂z written as max(0, z) (as in the seed's derivation): every gradient check fails,
    # the output and the fits are right.
    "bug_relu_derivative": (34, {
        "loss_grad_numeric": (0, "(wrong: w1, w2, w3, b1, b2, b3, b4) (relative error 7.96e-01 > 1e-06) "
                                 "(vs the central difference of your loss)"),
        "loss_grad_reference": (0, "on hidden inputs: it differs"),
        "loss_grad_handout": (0, "gives [0, 48, 16, 0, 0, 24, 8, 0, 0, -24, -8, 0, -8]; expected [0, 16, 16, 0, 0, "
                                 "8, 8, 0, 0, -24, -8, 0, -8] (wrong: w2, b2)"),
        "loss_grad_hidden": (0, "(vs the reference solution) (3 of 3 inputs wrong)"),
    }),
    # forward forgets the output bias b0. The fits are evaluated with the reference's forward,
    # so they keep their 24 points; everything that uses the student's forward fails.
    "bug_forward_no_output_bias": (24, {
        "output_handout": (0, "at x = 2 with the handout's parameters: it gives -4; expected -3"),
        "output_hidden": (0, "(vs the reference solution) (3 of 3 inputs wrong)"),
        "loss_grad_numeric": (0, "(wrong: b0) (relative error 1.00e+00 > 1e-06) (vs the central difference of your loss)"),
        "loss_grad_reference": (0, "on hidden inputs: it differs"),
        "loss_grad_handout": (0, "expected [0, 16, 16, 0, 0, 8, 8, 0, 0, -24, -8, 0, -8]"),
        "loss_grad_hidden": (0, "(vs the reference solution) (3 of 3 inputs wrong)"),
    }),
    # A test line left at the bottom of a1.py: the module does not import.
    "bug_crash_at_import": (0, {c: (0, "not run: a1.py could not be imported: NameError: name 'params' is not "
                                       "defined (a1.py, line 17)") for c in ALL}),
}


@pytest.fixture(scope="module")
def a1_grader(shared_graders):
    return shared_graders("a1", OPTIONS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gets_exact_points(a1_grader, name):
    check_result(a1_grader.grade(A1_FIXTURES / name), *EXPECTED[name], every=ALL)


def test_reference_gets_every_autograded_point_and_its_notebook_agrees(a1_grader):
    result = a1_grader.grade(REPO / "reference" / "a1")
    assert result.autograded_points == result.autograded_max == 59
    assert result.max_points == 100
    assert all(q.points is None for q in result.questions if q.manual)
    assert [(q.id, q.answer_state) for q in result.questions if q.manual] == [
        (q, "answered") for q in ("P1A", "P1B", "P2A", "P2B", "P2C", "P3B")]
    assert result.flags == []
    claim = result.notebook["claims"][0]
    assert (claim["check"], claim["claimed"], claim["reproduced"], claim["status"]) == ("output_handout", -3.0, -3.0, "match")


def test_template_gets_nothing_and_says_what_to_implement(a1_grader):
    result = a1_grader.grade(REPO / "student_template" / "a1")
    assert result.autograded_points == 0
    checks = {c.id: c for c in result.checks()}
    assert all(c.status == "error" for c in checks.values())
    assert "FIT_1 is None: it is not set yet" in checks["fit_dataset_1"].message
    assert "NotImplementedError: compute the network's output" in checks["output_handout"].message
    assert "NotImplementedError: the 13 partial derivatives" in checks["loss_grad_numeric"].message


def test_a_fit_of_the_wrong_size_is_named_before_any_evaluation(a1_grader, tmp_path):
    source = (REPO / "reference" / "a1" / "a1.py").read_text()
    (tmp_path / "a1.py").write_text(source + "\nFIT_1 = FIT_1[:12]  # forgot b0\n"
                                             "def FIT_2():\n    return [0.0] * 13\n")
    checks = {c.id: c for c in a1_grader.grade(tmp_path).checks()}
    assert (checks["fit_dataset_1"].points, checks["fit_dataset_1"].message) == (0, "FIT_1 has 12 values, expected 13")
    # a zero-argument function is called; all-zero parameters reproduce only the targets that are 0
    assert checks["fit_dataset_2"].points == pytest.approx(12 / 13, abs=1e-3)
    assert "misses 12 of 13 targets" in checks["fit_dataset_2"].message


def test_the_seeds_answer_to_p2b_is_flagged_for_the_ta(a1_grader, tmp_path):
    # Seed 003 answers "No, because L1 norm isn't differentiable at zero ..." without saying why:
    # a flag beside the model answer, never points (P2B is graded by hand).
    import nbformat

    shutil.copy(REPO / "reference" / "a1" / "a1.py", tmp_path / "a1.py")
    nb = nbformat.read(REPO / "student_template" / "a1" / "a1.ipynb", as_version=4)
    heading = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "### P2B" in c.source)
    nb.cells[heading + 1].source = ("No, because L1 norm isn't differentiable at zero therefore gradient "
                                    "optimization cannot be used.")
    nbformat.write(nb, tmp_path / "a1.ipynb")
    result = a1_grader.grade(tmp_path)
    assert result.autograded_points == 59
    p2b = next(q for q in result.questions if q.id == "P2B")
    assert p2b.answer_state == "answered" and p2b.points is None
    assert any("P2B" in f and "does not say why the derivative fails at 0" in f for f in result.flags), result.flags
