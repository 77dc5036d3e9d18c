"""The notebook step of grading: hand-edited outputs, a fake accuracy printed by an edited fixed
cell, and every kind of bad notebook — each a clear message and a graded-as-far-as-possible
result, never a crash. Full grades use the session's pset4 grader (process level, digits,
--execute light); the bad-notebook cases run only the notebook step."""
from __future__ import annotations

import importlib.util

import dataclasses
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from grader.kinds.base import Context
from grader.grading.engine import Grader
from grader.notebooks.claims import _compare
from grader.notebooks.config import Claim, load_config
from grader.notebooks.matching import match_cells, template_cells
from grader.notebooks.reading import load_notebook
from grader.notebooks.step import _edits, grade_notebook
from grader.reporting.report import write_report
from grader.results import CheckResult, QuestionResult, Result
from grader.submission import load_submission

from conftest import OPTIONS, PSET4_FIXTURES, REPO

NOTEBOOKS = REPO / "tests" / "fixtures" / "notebooks"
REFERENCE_MLP = REPO / "examples" / "submissions" / "pset4-reference" / "mlp.py"


def submission(tmp_path: Path, name: str, notebook: str | None, mlp: Path = REFERENCE_MLP,
               as_name: str = "pset4.ipynb") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(mlp, folder / "mlp.py")
    if notebook:
        shutil.copy(NOTEBOOKS / notebook, folder / as_name)
    return folder


def claims_by_label(result: Result) -> dict[str, dict]:
    return {c["label"]: c for c in result.notebook["claims"]}


# ---------------------------------------------------------------------- full grades


def test_hand_edited_outputs_are_flagged_not_trusted(pset4_grader, tmp_path):
    """Saved outputs claim the handout's numbers; the code has the inverted ReLU mask."""
    folder = submission(tmp_path, "carol", "pset4_fabricated_outputs.ipynb",
                        PSET4_FIXTURES / "bug_relu_mask_inverted" / "mlp.py")
    result = pset4_grader.grade(folder, tmp_path / "out")
    claims = claims_by_label(result)
    assert claims["toy loss, sigmoid, reg=0.1"]["status"] == "match"
    relu_train = claims["final toy training loss, ReLU"]
    assert relu_train["status"] == "mismatch" and relu_train["claimed"] == pytest.approx(0.0178562, rel=1e-5)
    assert relu_train["reproduced"] > 0.1 and relu_train["executed"] == pytest.approx(relu_train["reproduced"])
    assert claims["gradient check, ReLU (W1)"]["status"] == "mismatch"
    assert claims["gradient check, ReLU (W2)"]["status"] == "match"
    accuracy = claims["MNIST test accuracy, ReLU"]
    assert accuracy["status"] == "not compared" and "digits" in accuracy["note"] and "mnist" in accuracy["note"]
    assert any(f.startswith("notebook cell 28 shows final toy training loss, ReLU 0.0178562; the submitted code "
                            "reproduces") for f in result.flags)
    assert not result.adjustments
    execution = result.notebook["execution"]
    assert execution["mode"] == "light" and execution["counts"]["skipped"] == 3
    assert {c["cell"] for c in execution["cells"] if c["status"] == "skipped"} == {30, 34, 36}
    # the saved figure of a skipped cell is shown, marked as not re-run; re-run figures too
    assert "notebook cell 36, as saved in the submission (not re-run)" in result.figures
    assert "notebook cell 24, re-run by the grader" in result.figures
    assert (tmp_path / "out" / result.figures["notebook cell 36, as saved in the submission (not re-run)"]).is_file()
    assert (tmp_path / "out" / "pset4.executed.ipynb").is_file()
    assert all(q.answer_state == "answered" for q in result.questions if q.manual)


def test_fixed_cell_edited_to_print_a_fake_accuracy(pset4_grader, tmp_path):
    folder = submission(tmp_path, "dave", "pset4_edited_fixed_cell.ipynb")
    result = pset4_grader.grade(folder, tmp_path / "out")
    edits = {e["template_cell"]: e for e in result.notebook["edits"]}
    assert edits[36]["kind"] == "edited" and "+test_acc = 0.97" in edits[36]["diff"]
    assert edits[32]["kind"] == "deleted" and edits[18]["kind"] == "cosmetic"
    flags = "\n".join(result.flags)
    assert "fixed cell edited: template cell 36" in flags and "fixed cell deleted: template cell 32" in flags
    assert "template cell 18" not in flags  # a comment only: listed, not flagged
    assert "fixed cell moved" in flags
    assert result.notebook["added_cells"] == [28]  # print('my own experiment')
    assert result.autograded_points == 45  # flags do not cost points (the rubric's deduct is 0)
    write_report(result, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Fixed cells changed" in html and "+test_acc = 0.97" in html and "Flags for the TA" in html


def test_not_json_notebook_still_gets_the_probe_checks(pset4_grader, tmp_path):
    result = pset4_grader.grade(submission(tmp_path, "erin", "not_json.ipynb"), tmp_path / "out")
    assert result.autograded_points == 45 and not result.error
    assert result.notebook["status"] == "unreadable"
    assert any("not valid JSON" in n for n in result.notes)
    assert {q.answer_state for q in result.questions if q.manual} == {"no notebook"}


# ---------------------------------------------------------------------- the notebook step alone


@pytest.fixture(scope="module")
def step(tmp_path_factory):
    """Runs only the notebook step (no probes) with execution off, or light."""
    graders = {mode: Grader("pset4", replace(OPTIONS, execute=mode)) for mode in ("none", "light", "full")}

    def run(folder: Path, mode: str = "none", ctx: Context | None = None) -> Result:
        grader = graders[mode]
        result = Result(folder.name, "pset4", [QuestionResult(q.id, q.title, q.points, q.manual,
                                                              None if q.manual else 0.0, model_answer=q.model_answer)
                                               for q in grader.rubric.questions])
        grade_notebook(grader, load_submission(folder), ctx or Context(), result, folder.parent / f"out-{folder.name}")
        return result

    yield run
    for grader in graders.values():
        grader.close()


def test_no_notebook_at_all(step, tmp_path):
    result = step(submission(tmp_path, "a", None))
    assert result.notebook["status"] == "missing" and "no notebook" in result.notes[0]
    assert {q.answer_state for q in result.questions if q.manual} == {"no notebook"}


def test_notebook_under_another_name(step, tmp_path):
    result = step(submission(tmp_path, "b", "pset4_split_answers.ipynb", as_name="PSet4 final.ipynb"))
    assert result.notebook["file"] == "PSet4 final.ipynb"
    assert "pset4.ipynb is missing; using PSet4 final.ipynb" in result.notes[0]
    q32 = next(q for q in result.questions if q.id == "Q3.2")
    assert q32.answer_state == "answered" and "sign" in q32.flags[0]
    assert "Q3.2: the answer does not mention sign(θ): compare with the model answer" in result.flags
    assert any("Q1.3" in f and "Q1.4" in f for f in result.flags)  # placeholder and empty answers listed


def test_truncated_notebook(step, tmp_path):
    result = step(submission(tmp_path, "c", "truncated.ipynb"))
    assert result.notebook["status"] == "truncated" and any("truncated" in n for n in result.notes)
    assert not any(e["kind"] == "deleted" for e in result.notebook["edits"])  # lost, not deleted
    assert next(q for q in result.questions if q.id == "Q1.1").answer_state == "answered"


def test_nbformat3_notebook_is_converted_and_executed(step, tmp_path):
    result = step(submission(tmp_path, "d", "nbformat3.ipynb"), mode="light")
    assert result.notebook["status"] == "converted" and any("nbformat 3" in n for n in result.notes)
    counts = result.notebook["execution"]["counts"]
    assert counts.get("ok", 0) >= 7 and not counts.get("error") and not counts.get("died")
    assert all(q.answer_state == "answered" for q in result.questions if q.manual)


def test_notebook_of_the_wrong_assignment(step, tmp_path):
    result = step(submission(tmp_path, "e", "wrong_assignment.ipynb"), mode="light")
    assert result.notebook["status"] == "wrong_assignment"
    message = result.notebook["messages"][-1]
    assert "does not look like the pset4 notebook" in message and "looks like the modular notebook" in message
    assert result.notebook["edits"] == [] and result.notebook["execution"]["summary"].startswith("not executed")
    assert {q.answer_state for q in result.questions if q.manual} == {"missing"}


def test_notebook_naming_another_language(step, tmp_path):
    result = step(submission(tmp_path, "f", "r_kernel.ipynb"), mode="light")
    assert result.notebook["status"] == "other_language"
    assert "names a r kernel (ir)" in result.notebook["messages"][-1]
    assert "cells" not in result.notebook["execution"]  # not executed, answers still shown
    assert all(q.answer_state == "answered" for q in result.questions if q.manual)


def test_full_mode_without_the_notebooks_dataset_skips_what_needs_it(step, tmp_path):
    digits = Context(dataset=type("D", (), {"name": "digits"})())
    result = step(submission(tmp_path, "g", "pset4_split_answers.ipynb"), mode="full", ctx=digits)
    cells = {c["cell"]: c for c in result.notebook["execution"]["cells"]}
    load = next(c for c in cells.values() if c["excerpt"].startswith("from utils import get_MNIST_data"))
    assert load["status"] == "skipped" and "the grader has no mnist here (it uses digits)" in load["reason"]
    trains = [c for c in cells.values() if c["excerpt"].startswith(("sigmoid_net", "relu_net"))]
    assert [c["status"] for c in trains] == ["skipped", "skipped"] and "X_train" in trains[0]["reason"]
    # 8 template cells, and the student's added `import sympy` where sympy is installed (not a dependency)
    has_sympy = importlib.util.find_spec("sympy") is not None
    assert result.notebook["execution"]["counts"]["ok"] == 8 + has_sympy


# ---------------------------------------------------------------------- units


def test_deduction_for_edited_fixed_cells_is_capped():
    template = template_cells(REPO / "reference" / "pset4" / "pset4.ipynb")
    config = dataclasses.replace(load_config(REPO / "rubrics" / "pset4.toml", "pset4.ipynb"), deduct=2, deduct_max=3)
    nb = load_notebook(NOTEBOOKS / "pset4_edited_fixed_cell.ipynb").nb
    result = Result("x", "pset4", [QuestionResult("Q2.1", "t", 5, False, 5.0)], notebook={"messages": []})
    _edits(result, config, template, nb.cells, match_cells(template, nb.cells), {})
    assert result.adjustments == [{"reason": "2 fixed notebook cell(s) edited or deleted (2 each, at most 3)",
                                   "points": -3}]
    assert result.autograded_points == 2 and result.total_points == 2
    assert Result.from_dict(result.to_dict()).autograded_points == 2



def test_no_deduction_per_cell_for_another_version_of_the_handout():
    # 9 edited cells at 2 points each would cost 18 points for having downloaded the notebook early
    template = template_cells(REPO / "reference" / "pset4" / "pset4.ipynb")
    config = dataclasses.replace(load_config(REPO / "rubrics" / "pset4.toml", "pset4.ipynb"), deduct=2)
    nb = load_notebook(NOTEBOOKS / "pset4_older_version.ipynb").nb
    result = Result("x", "pset4", [QuestionResult("Q2.1", "t", 5, False, 5.0)], notebook={"messages": []})
    _edits(result, config, template, nb.cells, match_cells(template, nb.cells), {})
    assert result.adjustments == []
    assert result.flags == ["the notebook follows another version of the handout (or was heavily edited): only 2 of "
                            "the template's 11 fixed code cells match; the per-cell diffs are in the report's notebook "
                            "section; no deduction for edited cells"]

def test_accuracy_claim_against_mnist_reproduction():
    claim = Claim("MNIST test accuracy, ReLU", None, None, "relu_data_accuracy", compare="absolute", tolerance=0.02,
                  dataset="mnist")
    check = CheckResult("relu_data_accuracy", "Q2.5.2", "t", 5.0, 8.0, "partial", "m", details={"got": 0.87})
    mnist = Context(dataset=type("D", (), {"name": "mnist"})())
    row = _compare(claim, "", 0.97, None, check, mnist, 36)
    assert row["status"] == "mismatch"
    assert row["note"] == ("notebook cell 36 shows MNIST test accuracy, ReLU 0.97; the submitted code reproduces "
                           "0.87 (check relu_data_accuracy)")
    assert _compare(claim, "", 0.875, None, check, mnist, 36)["status"] == "match"
    crashed = dataclasses.replace(check, status="error", details={})
    assert "raises an error" in _compare(claim, "", 0.97, None, crashed, mnist, 36)["note"]


def test_old_results_without_notebook_fields_still_load():
    old = {"schema_version": 1, "submission": "s", "assignment": "pset4", "questions": [
        {"id": "Q1.1", "title": "t", "max_points": 5, "manual": True, "points": None, "model_answer": "m",
         "checks": []}]}
    result = Result.from_dict(old)
    assert result.flags == [] and result.notebook == {} and result.questions[0].answer_state == ""


# ---------------------------------------------------------------------- another version of the handout


def test_older_handout_gets_one_flag_not_one_per_cell(step, tmp_path):
    """Real submissions written against an earlier notebook got 9-22 flags each (one per fixed
    cell, plus "not found" answers). Now: one flag that says so, the diffs in the report."""
    result = step(submission(tmp_path, "olga", "pset4_older_version.ipynb"))
    assert result.flags == ["the notebook follows another version of the handout (or was heavily edited): only 2 "
                            "of the template's 11 fixed code cells match; the per-cell diffs are in the report's "
                            "notebook section"]
    assert result.notebook["other_version"] == {"fixed_cells": 11, "matching": 2, "edited": 9, "deleted": 0}
    assert sum(e["kind"] == "edited" and bool(e["diff"]) for e in result.notebook["edits"]) == 9
    answered = {q.id: q for q in result.questions if q.manual}
    assert all(q.answer_state == "answered" for q in answered.values())
    assert "theta_t - \\eta (g_t + 2 \\lambda \\theta_t)" in answered["Q3.1"].answer
    assert ("written answers found by the question's text, since no heading names the question (the notebook "
            "words it differently, e.g. another version of the handout): Q1.1, Q1.2, Q1.3, Q1.4, Q1.5, Q1.6, "
            "Q2.5.3, Q3.1, Q3.2") in result.notebook["messages"]
    html = write_report(result, tmp_path / "report")
    assert "-print(&#39;Difference between your loss and correct loss:&#39;)" in html.read_text()


def test_a_few_edited_cells_are_still_flagged_one_by_one(step, tmp_path):
    result = step(submission(tmp_path, "dave2", "pset4_edited_fixed_cell.ipynb"))
    assert "other_version" not in result.notebook
    assert sum(f.startswith("fixed cell edited: template cell 36") for f in result.flags) == 1
    assert sum(f.startswith("fixed cell deleted:") for f in result.flags) == 1
