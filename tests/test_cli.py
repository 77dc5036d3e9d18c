"""The command line as a TA and a student use it: outputs on disk, exit statuses, clear errors."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from grader.cli import main

from conftest import PSET4_FIXTURES, REPO

COMMON = ["--dataset", "digits", "--sandbox", "process"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A small class: the reference, the template, a bug, and a folder that is not a submission."""
    root = tmp_path_factory.mktemp("class")
    shutil.copytree(REPO / "reference" / "pset4", root / "alice")
    shutil.copytree(REPO / "student_template" / "pset4", root / "bob")
    shutil.copytree(PSET4_FIXTURES / "bug_predict_scores", root / "carol <script>")
    (root / "dave").mkdir()
    (root / "dave" / "README.txt").write_text("no code here")
    out = tmp_path_factory.mktemp("out")
    code = main(["grade", str(root), "--out", str(out), *COMMON])
    return code, out


def test_grade_writes_results_reports_gradebook_and_index(graded):
    code, out = graded
    assert code == 0
    for name in ("alice", "bob", "carol_script", "dave"):
        assert (out / name / "result.json").is_file()
        assert (out / name / "report.html").is_file()
    assert (out / "index.html").is_file()
    alice = json.loads((out / "alice" / "result.json").read_text())
    assert alice["autograded_points"] == 45
    check = alice["questions"][6]["checks"][0]
    assert {"points", "max_points", "status", "message", "visibility"} <= set(check)


def test_gradebook_has_points_possible_and_one_row_per_student(graded):
    _, out = graded
    rows = list(csv.reader((out / "gradebook.csv").open()))
    header, possible, *students = rows
    assert header[0] == "student" and header[-3:] == ["autograded", "total", "status"]
    assert possible[0] == "Points Possible" and possible[-2] == "100"
    by_name = {r[0]: r for r in students}
    assert set(by_name) == {"alice", "bob", "carol <script>", "dave"}
    assert by_name["alice"][header.index("Q2.2")] == "10"
    assert by_name["alice"][header.index("Q1.1")] == ""  # manual: not graded yet
    assert by_name["bob"][header.index("autograded")] == "0"
    assert by_name["carol <script>"][header.index("autograded")] == "23"


def test_report_escapes_student_controlled_text_and_hides_hidden_details(graded):
    _, out = graded
    html = (out / "carol_script" / "report.html").read_text()
    assert "<script>" not in html and "carol &lt;script&gt;" in html
    assert "it looks like the scores, not their argmax" in html
    assert "to be graded by hand" in html
    alice = (out / "alice" / "report.html").read_text()
    assert "figures/sigmoid_data_accuracy-curves.png" in alice
    assert (out / "alice" / "figures" / "sigmoid_data_accuracy-weights.png").is_file()
    assert "(students: after published, outcome only)" in alice and "seed = 111" not in alice


def test_folder_without_code_is_a_row_with_the_reason(graded):
    _, out = graded
    dave = json.loads((out / "dave" / "result.json").read_text())
    assert "mlp.py is missing from the submission" in dave["notes"]
    assert dave["autograded_points"] == 0


def test_check_passes_for_the_reference_and_fails_for_the_template(capsys):
    assert main(["check", str(REPO / "reference" / "pset4"), *COMMON]) == 0
    text = capsys.readouterr().out
    assert "PASS" in text and "public checks: 12/12 points" in text
    assert "hidden checks" in text
    assert main(["check", str(REPO / "student_template" / "pset4"), *COMMON]) == 1
    assert "NotImplementedError" in capsys.readouterr().out


def test_check_full_runs_the_training_checks(capsys):
    assert main(["check", str(REPO / "reference" / "pset4"), "--full", *COMMON]) == 0
    assert "sigmoid_data_accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["grade", "/no/such/folder"], "no such file or folder"),
    (["grade", str(REPO / "pyproject.toml")], "not a folder"),
    (["grade", str(REPO / "tests")], "cannot tell which assignment"),
    (["grade", str(REPO / "reference" / "pset4"), "--dataset", "mnist", "--data-dir", "/nonexistent"],
     "mnist.npz not found"),
    (["grade", str(REPO / "reference" / "pset4"), "--assignment", "nope"], "unknown assignment 'nope'"),
])
def test_bad_input_is_a_clear_error_not_a_traceback(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


REF = str(REPO / "reference" / "pset4")
A_FILE = str(REPO / "pyproject.toml")


@pytest.mark.parametrize("args, message", [
    (["grade", REF, "--out", A_FILE], f"--out {A_FILE} is a file, not a folder"),
    (["grade", REF, "--out", A_FILE + "/out"], f"{A_FILE} is a file, not a folder"),
    (["grade", REF, "--out", "OUT", "--manual", "/no/such/manual.csv"], "--manual /no/such/manual.csv: no such file"),
    (["grade", REF, "--out", "OUT", "--manual", str(REPO)], "is a folder, not a CSV file"),
    (["grade", REF, "--out", "OUT", "--boilerplate", "/no/such/handout"], "--boilerplate /no/such/handout: no such folder"),
    (["grade", REF, "--out", "OUT", "--boilerplate", A_FILE], "not a folder"),
    (["grade", REF, "--out", "OUT", "--data-dir", A_FILE], f"--data-dir {A_FILE} is a file, not a folder"),
    (["summary", "/no/such/out"], "no such folder: /no/such/out"),
    (["summary", A_FILE], "is not a folder of graded results"),
    (["release", "--assignment", "pset4", "--out", A_FILE], f"--out {A_FILE} is a file, not a folder"),
    (["data", "fetch", "mnist", "--data-dir", A_FILE], f"--data-dir {A_FILE} is a file, not a folder"),
    (["gradescope", "build", "--assignment", "pset4", "--out", A_FILE], f"--out {A_FILE} is a file, not a folder"),
    (["check", "/no/such/submission"], "no such file or folder: /no/such/submission"),
])
def test_bad_paths_end_in_one_clear_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "OUT" is created nowhere that matters
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "OUT").exists()  # refused before any work


@pytest.mark.parametrize("option, value, message", [
    ("--jobs", "abc", "'abc' is not a whole number"),
    ("--jobs", "0", "must be at least 1"),
    ("--timeout-scale", "0", "must be a positive number"),
    ("--timeout-scale", "fast", "'fast' is not a number"),
    ("--similarity", "maybe", "invalid choice: 'maybe'"),
    ("--execute", "some", "invalid choice: 'some'"),
])
def test_bad_options_are_refused_by_the_parser_in_one_line(option, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade", REF, option, value])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err.strip().splitlines()[-1] and "Traceback" not in err


def test_the_timeout_scale_defaults_to_the_environment_which_the_option_overrides(monkeypatch, capsys):
    """$MLP_GRADER_TIMEOUT_SCALE: how the check cells' server (started without arguments) gets a
    slow machine's scale; a bad value is refused naming the variable."""
    from grader.cli import TIMEOUT_SCALE_ENV, build_parser

    monkeypatch.delenv(TIMEOUT_SCALE_ENV, raising=False)
    assert build_parser().parse_args(["check", REF]).timeout_scale == 1.0
    monkeypatch.setenv(TIMEOUT_SCALE_ENV, "2.5")
    assert build_parser().parse_args(["check", REF]).timeout_scale == 2.5
    assert build_parser().parse_args(["grade", REF, "--timeout-scale", "3"]).timeout_scale == 3.0
    monkeypatch.setenv(TIMEOUT_SCALE_ENV, "slow")
    with pytest.raises(SystemExit) as exc:
        main(["check", REF])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"'slow' is not a number (${TIMEOUT_SCALE_ENV} is 'slow')")


def test_unknown_sandbox_level_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["grade", str(REPO / "reference" / "pset4"), "--sandbox", "chroot"])
    assert exc.value.code == 2 and "invalid choice: 'chroot'" in capsys.readouterr().err


def test_grading_others_without_a_sandbox_is_refused(capsys, tmp_path):
    assert main(["grade", str(REPO / "reference" / "pset4"), "--sandbox", "none", "--out", str(tmp_path)]) == 2
    assert "never for grading others" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "grader", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("mlp-grader ")


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[1] in (REPO / ".ci" / "run").read_text()
