"""The notebook read without executing it: loading whatever Jupyter saved, edited fixed cells,
written answers, claimed numbers. Fixture notebooks: tests/fixtures/notebooks/ (generated with
nbformat from the student template):

- pset4_fabricated_outputs: saved outputs claiming the handout's numbers and 0.97 accuracy
- pset4_edited_fixed_cell: the ReLU MNIST cell edited to print 0.97, a comment added to the toy
  data cell, the ReLU check moved, plot_stats deleted, a cell added; nbformat 4.2 without ids
- pset4_split_answers: answers split over cells, written into the question cell, placeholder,
  empty, a sub-heading and a code cell inside an answer, Q3.2 without sign(θ)
- not_json, truncated (the previous one cut at 45 %), nbformat3, wrong_assignment (the modular
  notebook), r_kernel (an R kernel spec)
- pset4_older_version, modular_older_version: answered notebooks from an earlier version of the
  handout: most fixed code cells differ, the question headings are worded differently
  (make_older_versions.py writes them from the templates)
"""
from __future__ import annotations

import json

import nbformat
import pytest

from grader.errors import RubricError
from grader.notebooks.checkcells import is_check_cell
from grader.notebooks.answers import find_answers
from grader.notebooks.claims import agrees, claim_cell, read_claim
from grader.notebooks.config import Claim, load_config
from grader.notebooks.matching import edited_cells, match_cells, template_cells, wrong_assignment
from grader.notebooks.reading import find_notebook, load_notebook, notebook_language

from conftest import REPO

NOTEBOOKS = REPO / "tests" / "fixtures" / "notebooks"


@pytest.fixture(scope="module")
def pset4():
    template = template_cells(REPO / "reference" / "pset4" / "pset4.ipynb")
    config = load_config(REPO / "rubrics" / "pset4.toml", "pset4.ipynb")
    return template, config


def analyse(name: str, template):
    loaded = load_notebook(NOTEBOOKS / name)
    matches = match_cells(template, loaded.nb.cells)
    return loaded, matches


# ---------------------------------------------------------------------- template and rubric


@pytest.mark.parametrize("assignment, notebook", [("pset4", "pset4.ipynb"), ("modular", "Problem_1.ipynb")])
def test_template_cells_equal_the_committed_template(assignment, notebook):
    """The TA's view of the template is the committed template without its self-check cells:
    those are never fixed cells (a notebook may lack or edit them: no flag)."""
    cells = template_cells(REPO / "reference" / assignment / notebook)
    committed = nbformat.read(REPO / "student_template" / assignment / notebook, as_version=4).cells
    checks = [c for c in committed if c.cell_type == "code" and is_check_cell(c.source)]
    assert len(checks) == {"pset4": 6, "modular": 16}[assignment]  # import, one per question, check()
    committed = [c for c in committed if c not in checks]
    assert len(cells) == len(committed)
    for mine, theirs in zip(cells, committed):
        assert mine.source == "\n".join(line.rstrip() for line in theirs.source.splitlines()).strip("\n")


def test_modular_regions_are_the_solution_regions():
    cells = template_cells(REPO / "reference" / "modular" / "Problem_1.ipynb")
    hyper = next(c for c in cells if "TinyNet training hyper-parameters" in c.source)
    assert [line for line, region in zip(hyper.lines, hyper.region) if region] == [
        "batch_size = None", "epochs = None", "lr_decay = None", "lr_decay_every = None"]
    assert not any(hyper.region[:1])


def test_rubric_notebook_settings_load():
    config = load_config(REPO / "rubrics" / "modular.toml", "Problem_1.ipynb")
    assert [a.question for a in config.answers] == ["adam_wd_vs_l2_answer"]
    assert config.data == "cifar100" and any(c.light == "skip" for c in config.cells)


def test_bad_notebook_settings_are_a_rubric_error(tmp_path):
    rubric = tmp_path / "r.toml"
    rubric.write_text('[notebook]\n[[notebook.claims]]\nlabel = "x"\noutput = "(NUM"\ncheck = "c"\n')
    with pytest.raises(RubricError, match="notebook"):
        load_config(rubric, "x.ipynb")


# ---------------------------------------------------------------------- loading


def test_other_jupyter_versions_load():
    v3 = load_notebook(NOTEBOOKS / "nbformat3.ipynb")
    assert v3.status == "converted" and v3.version.startswith("3") and "nbformat 3" in v3.messages[0]
    old = load_notebook(NOTEBOOKS / "pset4_edited_fixed_cell.ipynb")
    assert old.status == "ok" and old.version == "4.2"
    assert "id" not in json.loads((NOTEBOOKS / "pset4_edited_fixed_cell.ipynb").read_text())["cells"][0]


def test_not_json_is_a_clear_message():
    loaded = load_notebook(NOTEBOOKS / "not_json.ipynb")
    assert loaded.nb is None and loaded.status == "unreadable"
    assert "not valid JSON" in loaded.messages[0]


def test_truncated_notebook_is_salvaged_cell_by_cell():
    loaded = load_notebook(NOTEBOOKS / "truncated.ipynb")
    assert loaded.status == "truncated" and "truncated" in loaded.messages[0]
    assert 10 < len(loaded.nb.cells) < 40


def test_json_that_is_not_a_notebook(tmp_path):
    (tmp_path / "x.ipynb").write_text('{"cells": "no"}')
    assert load_notebook(tmp_path / "x.ipynb").status == "unreadable"


def test_kernel_language():
    assert notebook_language(load_notebook(NOTEBOOKS / "r_kernel.ipynb").nb) == "r"
    assert notebook_language(load_notebook(NOTEBOOKS / "pset4_split_answers.ipynb").nb) == "python"


def test_find_notebook_under_another_name(tmp_path):
    assert find_notebook(tmp_path, ["mlp.py", "pset4.ipynb"], "pset4.ipynb") == ("pset4.ipynb", [])
    name, notes = find_notebook(tmp_path, ["mlp.py", "pset4 (1).ipynb", "scratch.ipynb"], "pset4.ipynb")
    assert name == "pset4 (1).ipynb" and "missing" in notes[0]
    name, notes = find_notebook(tmp_path, ["mlp.py"], "pset4.ipynb")
    assert name == "" and "no notebook" in notes[0]


def test_wrong_assignment_is_recognised(pset4):
    template, _ = pset4
    _, matches = analyse("wrong_assignment.ipynb", template)
    assert wrong_assignment(template, matches)
    _, matches = analyse("pset4_fabricated_outputs.ipynb", template)
    assert not wrong_assignment(template, matches)


# ---------------------------------------------------------------------- edited fixed cells


def test_edited_moved_deleted_and_cosmetic_cells(pset4):
    template, _ = pset4
    loaded, matches = analyse("pset4_edited_fixed_cell.ipynb", template)
    edits = {e["template_cell"]: e for e in edited_cells(template, loaded.nb.cells, matches)}
    assert edits[36]["kind"] == "edited" and "+test_acc = 0.97" in edits[36]["diff"]
    assert "-test_acc = (relu_net.predict(X_test) == y_test).mean()" in edits[36]["diff"]
    assert edits[32]["kind"] == "deleted"  # plot_stats
    assert edits[18]["kind"] == "cosmetic"  # a comment added
    assert [e["kind"] for e in edits.values()].count("moved") == 1
    assert set(edits) == {18, 32, 36} | {n for n, e in edits.items() if e["kind"] == "moved"}


def test_unchanged_notebooks_have_no_edits(pset4):
    template, _ = pset4
    for name in ("pset4_fabricated_outputs.ipynb", "pset4_split_answers.ipynb", "nbformat3.ipynb"):
        loaded, matches = analyse(name, template)
        assert edited_cells(template, loaded.nb.cells, matches) == [], name


def test_modular_code_inside_solution_regions_is_not_an_edit():
    template = template_cells(REPO / "reference" / "modular" / "Problem_1.ipynb")
    for folder in ("examples/submissions/modular-reference", "tests/fixtures/modular/correct_variant"):
        nb = load_notebook(REPO / folder / "Problem_1.ipynb").nb
        assert edited_cells(template, nb.cells, match_cells(template, nb.cells)) == [], folder
    nb = load_notebook(REPO / "examples/submissions/modular-reference/Problem_1.ipynb").nb
    cell = next(c for c in nb.cells if "TinyNet training hyper-parameters" in c.source)
    cell.source += "\nepochs = 1  # outside the region? no: appended after it, at the end of the cell"
    # the region is the end of this cell, so an appended line is still next to it: allowed
    assert edited_cells(template, nb.cells, match_cells(template, nb.cells)) == []
    fc = next(c for c in nb.cells if "Test the fc forward function" in c.source)
    fc.source = fc.source.replace("print (\"Difference: \", rel_error(out, correct_out))", "print('Difference: 0.0')")
    edits = edited_cells(template, nb.cells, match_cells(template, nb.cells))
    assert [e["kind"] for e in edits] == ["edited"] and "+print('Difference: 0.0')" in edits[0]["diff"]


# ---------------------------------------------------------------------- written answers


def test_answers_split_over_cells_placeholders_and_the_sign_hint(pset4):
    template, config = pset4
    loaded, matches = analyse("pset4_split_answers.ipynb", template)
    answers = find_answers(loaded.nb.cells, template, matches, config)
    assert answers["Q1.1"].state == "answered" and len(answers["Q1.1"].cells) == 2
    assert "f(z)(1 - f(z))" in answers["Q1.1"].text and "h^2 - y" in answers["Q1.1"].text
    assert answers["Q1.2"].state == "answered" and "**Answer:**" in answers["Q1.2"].text  # in the question cell
    assert answers["Q1.3"].state == "placeholder"  # "Double click here to add a solution."
    assert answers["Q1.4"].state == "empty"
    q15 = answers["Q1.5"]
    assert q15.state == "answered" and "My derivation" in q15.text and "import sympy" in q15.text
    assert len(q15.cells) == 3  # an added sub-heading does not end the answer
    assert answers["Q3.2"].state == "answered" and answers["Q3.2"].flags == [
        "the answer does not mention sign(θ): compare with the model answer"]
    assert answers["Q3.1"].flags == []
    template_nb = load_notebook(REPO / "student_template" / "pset4" / "pset4.ipynb").nb
    blank = find_answers(template_nb.cells, template, match_cells(template, template_nb.cells), config)
    assert {a.state for a in blank.values()} == {"placeholder"}


def test_truncated_notebook_answers_after_the_cut_are_missing(pset4):
    template, config = pset4
    loaded, matches = analyse("truncated.ipynb", template)
    answers = find_answers(loaded.nb.cells, template, matches, config)
    assert answers["Q1.1"].state == "answered" and answers["Q3.2"].state == "missing"


def test_modular_inline_question_answer():
    template = template_cells(REPO / "reference" / "modular" / "Problem_1.ipynb")
    config = load_config(REPO / "rubrics" / "modular.toml", "Problem_1.ipynb")
    for folder, state in (("examples/submissions/modular-reference", "answered"),
                          ("examples/submissions/modular-template", "placeholder")):
        nb = load_notebook(REPO / folder / "Problem_1.ipynb").nb
        answers = find_answers(nb.cells, template, match_cells(template, nb.cells), config)
        assert answers["adam_wd_vs_l2_answer"].state == state, folder


# ---------------------------------------------------------------------- claimed numbers


def test_claims_are_read_from_the_saved_outputs(pset4):
    template, config = pset4
    loaded, matches = analyse("pset4_fabricated_outputs.ipynb", template)
    found = {}
    for claim in config.claims:
        index = claim_cell(loaded.nb.cells, template, matches, claim)
        found[claim.label] = read_claim(loaded.nb.cells[index], claim)
    assert found["toy loss, sigmoid, reg=0.1"] == {"": 1.1822479803941373}
    assert found["gradient check, ReLU"]["W1"] == pytest.approx(3.561318e-09)
    assert found["final toy training loss, ReLU"] == {"": 0.017856220486983883}
    assert found["MNIST test accuracy, ReLU"] == {"": 0.97}


def test_claim_comparisons():
    rel = Claim("x", None, None, "c", compare="relative", tolerance=1e-4)
    assert agrees(rel, 0.10926, 0.109268) and not agrees(rel, 0.0178, 0.66)
    err = Claim("x", None, None, "c", compare="error", tolerance=1e-5)
    assert agrees(err, 3e-9, 4e-11)  # both pass: sizes of tiny errors vary run to run
    assert not agrees(err, 3e-9, 0.9)
    acc = Claim("x", None, None, "c", compare="absolute", tolerance=0.02)
    assert agrees(acc, 0.963, 0.955) and not agrees(acc, 0.97, 0.87)
    assert not agrees(acc, float("nan"), 0.9)


# ---------------------------------------------------------------------- another version of the handout


def test_older_handout_answers_are_found_by_the_questions_text(pset4):
    """Headings such as "#### 1.1 (5 points) Derive ∇a² J" name no question id: each answer is
    found by the question's words, and similar questions (∇a² J, ∇b² J) are not swapped."""
    template, config = pset4
    loaded, matches = analyse("pset4_older_version.ipynb", template)
    answers = find_answers(loaded.nb.cells, template, matches, config)
    assert {a.state for a in answers.values()} == {"answered"}
    assert {a.found_by for a in answers.values()} == {"question text"}
    expected = {"Q1.1": "With the sigmoid output, $\\nabla_{a^2} J = h^2 - y$.",
                "Q1.2": "$\\nabla_{b^2} J = h^2 - y$ because",
                "Q1.6": "Without the stored activations",
                "Q2.5.3": "ReLU: it does not saturate",
                "Q3.1": "2 \\lambda \\theta_t",
                "Q3.2": "\\mathrm{sign}(\\theta_t)"}
    for question, phrase in expected.items():
        assert phrase in answers[question].text, (question, answers[question].text)
    # the reworded question is not taken for the answer, and one answer does not run into the next
    assert answers["Q2.5.3"].text.startswith("ReLU") and len(answers["Q2.5.3"].cells) == 1
    assert answers["Q3.2"].flags == []  # it mentions sign(θ)


def test_older_handout_modular_inline_question_found_by_its_text():
    template = template_cells(REPO / "reference" / "modular" / "Problem_1.ipynb")
    config = load_config(REPO / "rubrics" / "modular.toml", "Problem_1.ipynb")
    nb = load_notebook(NOTEBOOKS / "modular_older_version.ipynb").nb
    answer = find_answers(nb.cells, template, match_cells(template, nb.cells), config)["adam_wd_vs_l2_answer"]
    assert (answer.state, answer.found_by) == ("answered", "question text")
    assert answer.text.startswith("**Answer:** No. Adam divides the L2 gradient")


def test_a_deleted_question_is_still_missing(pset4):
    """The text search must not hand a question another question's cell."""
    template, config = pset4
    loaded, _ = analyse("pset4_older_version.ipynb", template)
    cells = [c for c in loaded.nb.cells if "What if there were no forward pass" not in c.source]
    answers = find_answers(cells, template, match_cells(template, cells), config)
    assert answers["Q1.6"].state == "missing"
    assert answers["Q1.5"].state == answers["Q2.5.3"].state == "answered"


def test_a_sentence_that_mentions_the_question_is_not_its_heading():
    # "...and your answer to the\n   inline question." in the submission notes is not the question
    template = template_cells(REPO / "reference" / "modular" / "Problem_1.ipynb")
    config = load_config(REPO / "rubrics" / "modular.toml", "Problem_1.ipynb")
    nb = load_notebook(REPO / "examples/submissions/modular-reference/Problem_1.ipynb").nb
    nb.cells = [c for c in nb.cells if "Inline question" not in c.source and "**Answer:**" not in c.source]
    answer = find_answers(nb.cells, template, match_cells(template, nb.cells), config)["adam_wd_vs_l2_answer"]
    assert answer.state == "missing"


def test_older_handout_most_fixed_cells_differ(pset4):
    template, _ = pset4
    loaded, matches = analyse("pset4_older_version.ipynb", template)
    edits = edited_cells(template, loaded.nb.cells, matches)
    fixed = [t for t in template if t.cell_type == "code" and t.lines]
    assert len(fixed) == 11 and sum(e["kind"] == "edited" for e in edits) == 9
