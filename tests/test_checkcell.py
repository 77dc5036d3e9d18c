"""The notebook's check cells (`check("Q2.1")`, grader/delivery/checkcell.py): executed with
nbclient in a real kernel, they give the points of `mlp-grader check` and of the TA's grading
for every question's public checks; they name what they ran, warn about a stale import and an
unsaved notebook, show the student's traceback only, and never say "all tests passed".

Each check cell starts a separate process (about 1.5 s here), so the default set executes one
or two fixtures per assignment; every other fixture runs under `-m slow`."""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader.cli import TIMEOUT_SCALE_ENV
from grader.course import find_course
from grader.delivery.selfcheck import check_submission
from grader.delivery.template import check_anchors
from grader.grading.engine import GradeOptions
from grader.notebooks.checkcells import checked_question, import_cell, insert_check_cells, is_check_cell
from grader.notebooks.config import load_config
from grader.notebooks.kernel import plan_cells
from grader.rubric import load_rubric

from conftest import FIXTURES, OPTIONS, REPO, default_subset

COURSE = find_course()
TOTAL = re.compile(r"^public checks: (\S+)/(\S+) points", re.M)
ROW = re.compile(r"^(PASS|PARTIAL|FAIL|ERROR|TIMEOUT) +(\S+)/(\S+) +(\S+)", re.M)
# One fixture per assignment whose checks pass, fail and error; the others
# (tests/fixtures/<assignment>/*) run in test_every_fixture_check_cells_agree (slow), covered
# in class by this one. The default run takes a1's and modular's; pset4's is the same comparison
# again (slow), and pset4's cells run in the default run on the reference
# (test_the_reference_notebook_runs_top_to_bottom_with_every_check_cell_green), on a broken
# submission (test_one_question_cell_says_what_it_ran_warns_and_shows_the_students_traceback) and in
# the kit's own Jupyter (test_kit_install.py).
DEFAULT = [("pset4", "bug_sigmoid_math_exp"), ("a1", "bug_relu_derivative"), ("modular", "bug_gelu_backward_missing_term")]
DEFAULT_RUN = [pytest.param(*pair, marks=[pytest.mark.slow] if pair[0] == "pset4" else []) for pair in DEFAULT]
# The TA's grade, shared with the fixture tests (pset4, a1: conftest's OPTIONS); modular has no
# digits stand-in (and its notebook needs CIFAR-100): the options of test_modular_fixtures.py.
# Its training checks are left out (skip_data: the check cells do not run them either), and the
# default run grades only the question it checks (the hidden checks of all would cost a minute).
MODULAR_TA = GradeOptions(sandbox="process", dataset="synthetic-cifar", execute="none", skip_data=True)
# Modular has 14 check cells and its whole check takes long: the default run keeps the one of the
# fixture's bug (the slow set runs every cell and `check()` of every modular fixture).
ONLY = {"modular": ["gelu_backward"]}
# Not hostile_patch_grader: what it finds on the disk depends on the level (test_pset4_fixtures.py,
# BWRAP_ONLY), and the cell's `check` takes the strongest level where the TA's grade here is at `process`.
# Modular: one more fixture only. A modular `check()` costs about 40 s (its 14 questions' public
# checks), and every fixture's would add 9 minutes to CI's 30; the fixtures' own points are
# test_modular_fixtures.py's, and the cell-against-TA class is the default test's.
SLOW = [(a, p.name) for a in COURSE.assignments() for p in sorted((FIXTURES / a).iterdir())
        if p.is_dir() and (a, p.name) not in DEFAULT and (a, p.name) != ("pset4", "hostile_patch_grader")
        and (a != "modular" or p.name == "correct_variant")]


def check_cells_notebook(assignment: str, questions: list[str] | None = None) -> nbformat.NotebookNode:
    """The template's self-check cells alone (import, one per question, `check()`), in order."""
    rubric = load_rubric(COURSE.rubric(assignment))
    template = nbformat.read(COURSE.template(assignment) / rubric.notebook, as_version=4)
    cells = [c for c in template.cells if c.cell_type == "code" and is_check_cell(c.source)]
    if questions is not None:
        cells = [c for c in cells if checked_question(c.source) in (None, *questions)]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c.source) for c in cells]
    return nb


def execute(nb: nbformat.NotebookNode, folder: Path, name: str = "selfcheck_test.ipynb",
            timeout: float = 300, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Save `nb` in `folder` (a student saves before checking) and run it there, as Jupyter
    does: the kernel starts in the notebook's folder and knows the notebook's path. `env`: added
    to the kernel's environment (what a student exports before starting Jupyter)."""
    path = folder / name
    nbformat.write(nb, path)
    env = {**os.environ, **(env or {}), "JPY_SESSION_NAME": str(path)}
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute(env=env)
    return nb


def text_of(cell) -> str:
    return "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def html_of(cell) -> str:
    return "\n".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)


def cell_points(nb) -> dict[str, tuple[float, float]]:
    """question ("" for `check()`) -> (points, max) of each check cell's output."""
    points = {}
    for cell in nb.cells:
        question = checked_question(cell.source)
        if question is None:
            continue
        match = TOTAL.search(text_of(cell))
        assert match, f"cell {cell.source!r} printed no total:\n{text_of(cell)}"
        points[question] = (float(match[1]), float(match[2]))
    return points


def public_points(result, question: str | None = None) -> tuple[float, float]:
    """The public checks a notebook runs (training checks need `--full`), of one question or all."""
    checks = [c for q in result.questions if question in (None, q.id) for c in q.checks
              if c.public and c.id not in TRAINING[result.assignment]]
    return sum(c.points for c in checks), sum(c.max_points for c in checks)


TRAINING = {a: {c.id for c in load_rubric(COURSE.rubric(a)).checks() if c.needs_data} for a in COURSE.assignments()}


def agree(assignment: str, fixture: str, tmp_path: Path, shared_graders, only: list[str] | None = None) -> None:
    """Every check cell (or those of `only`, then without `check()`) against the TA's grade and
    against `mlp-grader check`'s engine call for the same questions."""
    folder, nb, ta = cells_and_ta_grade(assignment, fixture, tmp_path, shared_graders, only)
    cells = cell_points(nb)
    terminal = check_submission(folder, assignment, GradeOptions(sandbox="process", public_only=True, skip_data=True,
                                                                 execute="none", questions=tuple(only or ())))
    questions = [q for q in cells if q]
    assert questions == [q for q, _ in check_anchors(COURSE.rubric(assignment)).anchors if only is None or q in only]
    for question in questions:
        assert cells[question] == public_points(ta, question) == public_points(terminal, question), question
    if only is None:
        assert cells[""] == public_points(ta) == public_points(terminal)
    assert_no_claim_of_success(nb)


# Fixtures whose checks wait out their time limits: both sides run with the limits scaled down the
# same way (each looping check otherwise waits 10-20 s, twice: about 3 minutes of CI). The relu
# checks of the loop fixture take 0.02-0.2 s against limits of 1-6 s at this scale.
TIMEOUT_SCALE = {("pset4", "hostile_infinite_loop"): 0.2}


def cells_and_ta_grade(assignment: str, fixture: str, tmp_path: Path, shared_graders, only: list[str] | None):
    """(the fixture's copy, its check cells of `only` executed there, the TA's grade of the same
    questions)."""
    folder = tmp_path / fixture
    shutil.copytree(FIXTURES / assignment / fixture, folder)
    scale = TIMEOUT_SCALE.get((assignment, fixture), 1.0)
    # the check cells' `check --serve` takes its --timeout-scale from the kernel's environment
    nb = execute(check_cells_notebook(assignment, only), folder, env={TIMEOUT_SCALE_ENV: str(scale)})
    questions = tuple(q for q in only or () if q)
    options = replace(MODULAR_TA, questions=questions) if assignment == "modular" else OPTIONS
    options = replace(options, timeout_scale=scale)
    return folder, nb, shared_graders(assignment, options).grade(FIXTURES / assignment / fixture)


def assert_no_claim_of_success(nb) -> None:
    for cell in nb.cells:
        assert "all tests passed" not in (text_of(cell) + html_of(cell)).lower()


@pytest.mark.parametrize("assignment, fixture", DEFAULT_RUN)
def test_check_cells_give_the_points_of_check_and_of_the_ta_grade(assignment, fixture, tmp_path, shared_graders):
    agree(assignment, fixture, tmp_path, shared_graders, ONLY.get(assignment))


@pytest.mark.slow
@pytest.mark.parametrize("assignment, fixture", SLOW)
def test_every_fixture_check_cells_agree(assignment, fixture, tmp_path, shared_graders):
    # slow: test_check_cells_give_the_points_of_check_and_of_the_ta_grade covers the class (every
    # cell against `check` and the TA) with one fixture per assignment. Here every other fixture's
    # `check()` cell (all its public checks in one request) against the TA's grade: a cell per
    # question and a terminal run again for each would cost a minute and a half per modular fixture.
    _, nb, ta = cells_and_ta_grade(assignment, fixture, tmp_path, shared_graders, [""])  # import cell, `check()`
    assert cell_points(nb) == {"": public_points(ta)}
    assert_no_claim_of_success(nb)
    scale = TIMEOUT_SCALE.get((assignment, fixture))
    if scale:  # the cell's looping checks waited out the scaled limits, the TA's too (at 1: 5-20 s, 30 s digits training)
        for text in (text_of(nb.cells[-1]), " ".join(c.message for c in ta.checks())):
            limits = {float(s) for s in re.findall(r"did not finish within (\S+) s", text)}
            assert limits and max(limits) <= 30 * scale, text


def test_one_question_cell_says_what_it_ran_warns_and_shows_the_students_traceback(tmp_path):
    """A failing question: ERROR row with the student's frames (never the probe's), the file and
    its save time, the points left to the hand-in; then a stale import and an unsaved cell."""
    folder = tmp_path / "pset4"
    shutil.copytree(FIXTURES / "pset4" / "bug_sigmoid_math_exp", folder)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(import_cell("pset4")),
                nbformat.v4.new_code_cell('check("Q2.1")'),
                nbformat.v4.new_code_cell("import mlp"),
                # the student edits mlp.py after the import (mtime one second later) ...
                nbformat.v4.new_code_cell("import os, time\nlater = time.time() + 1\nos.utime('mlp.py', (later, later))"),
                # ... and runs a cell that is not in the saved notebook
                nbformat.v4.new_code_cell("x = 1  # typed after the last save"),
                nbformat.v4.new_code_cell('check("Q2.1")')]
    path = folder / "pset4.ipynb"
    saved = nbformat.v4.new_notebook()
    saved.cells = [nbformat.v4.new_code_cell(c.source) for c in nb.cells[:4]] + [nb.cells[5]]
    nbformat.write(saved, path)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute(
        env={**os.environ, "JPY_SESSION_NAME": str(path)})
    first, last = text_of(nb.cells[1]), text_of(nb.cells[5])
    saved_at = time.strftime("%H:%M:%S", time.localtime((folder / "mlp.py").stat().st_mtime))
    lines = first.splitlines()
    assert lines[0].startswith("public checks of Q2.1, on mlp.py as saved on disk at ")
    assert lines[1].startswith("ERROR       0/2    sigmoid_toy_loss  loss(X, y, reg=0.1) with activation='sigmoid' "
                               "on the handout's toy data raised an error: TypeError")
    assert lines[2:9] == ["        " + line for line in ['  File "mlp.py", line 33, in loss',
                                                          '    h1 = sigmoid(z1)',
                                                          '         ^^^^^^^^^^^',
                                                          '  File "mlp.py", line 9, in sigmoid',
                                                          '    return 1.0 / (1.0 + math.exp(-z))',
                                                          '                        ^^^^^^^^^^^^',
                                                          'TypeError: only 0-dimensional arrays can be converted '
                                                          'to Python scalars']]
    assert "probe" not in first and "runner.py" not in first and "mlp-grader-" not in first
    assert lines[-1] == "3 points remain to be decided after hand-in (hidden checks 3): passing here does not " \
                        "guarantee them."
    assert "warning" not in first
    warnings = [line for line in last.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, last
    assert warnings[0].startswith(f"warning: mlp.py was saved at {saved_at}, after this notebook imported it at ")
    assert warnings[0].endswith("the check used the saved file, your notebook's cells still use the old one "
                                "(restart the kernel, or re-run the import)")
    assert warnings[1].startswith("warning: 1 cell(s) you ran are not in pset4.ipynb as saved at ")
    assert f"on mlp.py as saved on disk at {saved_at}" in last
    page = html_of(nb.cells[5])
    assert '<td style="color:#cf222e;font-weight:bold">ERROR</td><td>0/2</td><td><code>sigmoid_toy_loss</code>' in page
    assert "your notebook&#x27;s cells still use the old one" in page and "<script" not in page


def test_bad_input_unknown_question_and_missing_file(tmp_path):
    """One line each: the valid ids for an unknown one; the missing file by name."""
    folder = tmp_path / "pset4"
    folder.mkdir()
    shutil.copy(FIXTURES / "pset4" / "correct_helpers" / "mlp.py", folder / "mlp.py")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(import_cell("pset4")), nbformat.v4.new_code_cell('check("Q2.9")'),
                nbformat.v4.new_code_cell("import os; os.remove('mlp.py')"), nbformat.v4.new_code_cell('check("Q2.1")')]
    execute(nb, folder)
    assert text_of(nb.cells[1]) == ("check: unknown question 'Q2.9' in pset4; valid: Q1.1, Q1.2, Q1.3, Q1.4, Q1.5, "
                                    "Q1.6, Q2.1, Q2.2, Q2.3, Q2.4, Q2.5.1, Q2.5.2, Q2.5.3, Q3.1, Q3.2")
    missing = text_of(nb.cells[3])
    assert "ERROR       0/2    sigmoid_toy_loss  not run: mlp.py missing from the submission" in missing


def test_a_syntax_error_shows_the_students_line(tmp_path):
    folder = tmp_path / "pset4"
    shutil.copytree(FIXTURES / "pset4" / "bug_syntax_error", folder)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(import_cell("pset4")), nbformat.v4.new_code_cell('check("Q2.1")')]
    out = text_of(execute(nb, folder).cells[1])
    assert "not run: mlp.py could not be imported: SyntaxError: expected ':' (mlp.py, line 77)" in out
    assert '          File "mlp.py", line 77\n            for it in range(iterations_per_epoch)\n' in out


def test_an_older_kit_and_a_missing_kit_degrade_to_one_line(tmp_path):
    """A notebook for a newer kit, and a kernel without the kit: one line with the command."""
    folder = tmp_path / "pset4"
    shutil.copytree(FIXTURES / "pset4" / "correct_helpers", folder)
    newer = import_cell("pset4").replace("version=1", "version=99")
    missing = import_cell("pset4").replace("grader.delivery.checkcell", "grader.delivery.no_such_module")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(newer), nbformat.v4.new_code_cell('check("Q2.1")'),
                nbformat.v4.new_code_cell(missing), nbformat.v4.new_code_cell('check("Q2.1")')]
    execute(nb, folder)
    assert text_of(nb.cells[1]) == ("this notebook expects self-check version 99, the installed kit has 1: reinstall "
                                    "the kit (pip install --force-reinstall ./selfcheck), or run `mlp-grader check` "
                                    "in a terminal\n")
    assert text_of(nb.cells[3]) == ("self-check not available in this Jupyter: install the kit in the environment of "
                                    "this kernel (pip install ./selfcheck), or run `mlp-grader check` in a terminal\n")


# a1's is the same run again with another notebook (slow): pset4's covers the class.
@pytest.mark.parametrize("assignment", default_subset(["pset4", "a1"], {"pset4"}))
def test_the_reference_notebook_runs_top_to_bottom_with_every_check_cell_green(assignment, tmp_path):
    """The reference notebook with the template's check cells, run as light grading runs it
    (the rubric's training and data cells, and what reads them, skipped): no error, and every
    check cell at full points. Modular's notebook needs CIFAR-100 for most cells: its check
    cells are green in the default test above on its fixtures' correct ones (slow set)."""
    rubric_path = COURSE.rubric(assignment)
    rubric = load_rubric(rubric_path)
    folder = tmp_path / assignment
    shutil.copytree(COURSE.reference(assignment), folder)
    nb = nbformat.read(folder / rubric.notebook, as_version=4)
    insert_check_cells(nb, assignment, check_anchors(rubric_path).anchors)
    config = load_config(rubric_path, rubric.notebook)
    skip = {i: "light" for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and any(p.light == "skip" and p.pattern.search(c.source) for p in config.cells)}
    run = {p.index for p in plan_cells(nb, skip, 60) if p.run}
    nb.cells = [c for i, c in enumerate(nb.cells) if c.cell_type != "code" or i in run]
    execute(nb, folder, rubric.notebook)  # raises CellExecutionError on any error
    points = cell_points(nb)
    assert len(points) == len(check_anchors(rubric_path).anchors) + 1
    for question, (earned, possible) in points.items():
        assert earned == possible > 0, question


def test_the_grader_never_runs_nor_counts_check_cells(shared_graders, tmp_path):
    """A notebook with the template's check cells, one edited and one deleted: graded as if
    they were not there (no fixed-cell flag, no added cell, no adjustment), none of them run;
    a notebook without them (every fixture: the original handout) is the other half."""
    shutil.copy(REPO / "reference" / "a1" / "a1.py", tmp_path / "a1.py")
    nb = nbformat.read(REPO / "student_template" / "a1" / "a1.ipynb", as_version=4)
    own = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and is_check_cell(c.source)]
    assert [nb.cells[i].source for i in own[1:]] == ['check("P3B_code")', 'check("P3C")', 'check("P3D")', "check()"]
    nb.cells[own[2]].source = "check('P3C')   # is my output right?"
    del nb.cells[own[3]]
    nbformat.write(nb, tmp_path / "a1.ipynb")
    result = shared_graders("a1").grade(tmp_path)
    info = result.notebook
    assert info["edits"] == [] and info["added_cells"] == [] and result.adjustments == []
    assert not [f for f in result.flags if "fixed cell" in f or "another version" in f], result.flags
    cells = {c["cell"] - 1: c for c in info["execution"]["cells"]}
    left_out = [i for i, c in cells.items() if c["reason"].startswith("self-check cell")]
    assert left_out == [i if i < own[3] else i - 1 for i in own if i != own[3]]
    assert all(cells[i]["status"] == "skipped" for i in left_out)
    assert "4 self-check cells left out" in info["execution"]["summary"]
    assert result.autograded_points == 59  # the reference's a1.py; P3A's fits need no notebook


def test_the_check_server_answers_each_request_by_its_id(tmp_path):
    """`check --serve`, what the cells talk to: one JSON line per request, the reply carries its
    id; bad input is a reply, not the end of the server; stdout holds nothing else."""
    import json
    import subprocess
    import sys

    requests = [{"id": 7, "folder": str(REPO / "reference" / "pset4"), "assignment": "pset4", "question": "Q2.9"},
                {"id": 8, "folder": str(REPO / "reference" / "pset4"), "assignment": "pset4", "question": "Q2.1"}]
    out = subprocess.run([sys.executable, "-m", "grader", "check", "--serve", "--sandbox", "process"],
                         input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in replies] == [7, 8]
    assert replies[0]["error"].startswith("unknown question 'Q2.9' in pset4; valid: Q1.1, ")
    checks = [c for q in replies[1]["result"]["questions"] for c in q["checks"] if c["status"] != "skipped"]
    assert [(c["id"], c["status"], c["points"]) for c in checks] == [("sigmoid_toy_loss", "passed", 2.0)]
    assert replies[1]["graded_later"]["Q2.1"] == 3.0 and replies[1]["questions"] == ["Q2.1"]
