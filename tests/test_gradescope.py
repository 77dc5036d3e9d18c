"""Gradescope: the autograder zip has what Gradescope needs at its root, and its run_autograder,
run against a fake /autograder folder, writes a results.json that follows Gradescope's schema."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from grader.delivery.gradescope import to_gradescope
from grader.results import CheckResult, QuestionResult, Result
from grader.rubric import load_rubric

from conftest import PSET4_FIXTURES, REPO

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}


def validate_results(data: dict) -> None:
    """Gradescope's results.json (autograder specification): top-level score, execution_time,
    output, visibility, stdout_visibility, tests[]; each test name, number, score, max_score,
    status, output, visibility. Numbers are numbers, statuses and visibilities from the spec."""
    allowed_top = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
                   "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
    assert set(data) <= allowed_top, set(data) - allowed_top
    assert isinstance(data["score"], (int, float)) and not isinstance(data["score"], bool)
    assert isinstance(data["execution_time"], int) and data["execution_time"] >= 0
    assert isinstance(data["output"], str)
    assert data["visibility"] in VISIBILITIES and data["stdout_visibility"] in VISIBILITIES
    assert isinstance(data["tests"], list)
    numbers = set()
    for test in data["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "status", "output", "visibility"}, test
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["number"], str) and test["number"] not in numbers
        numbers.add(test["number"])
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITIES and isinstance(test["output"], str)
    if data["tests"]:  # the top-level score overrides the tests' sum: it can only hold deductions
        assert 0 <= data["score"] <= sum(t["score"] for t in data["tests"]) + 1e-6


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gs")
    assert main(["gradescope", "build", "--assignment", "pset4", "--out", str(out), "--dataset", "digits",
                 "--sandbox", "process", "--data-dir", str(out / "no-data")]) == 0
    return out / "autograder-pset4.zip"


def test_zip_has_setup_and_run_autograder_at_its_root(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        config = json.loads(zf.read("autograder.json"))
        setup = zf.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "autograder.json", "mlp-grader/pyproject.toml",
            "mlp-grader/grader/delivery/gradescope.py", "course/rubrics/pset4.toml", "course/reference/pset4/mlp.py",
            "course/student_template/pset4/utils.py"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert config == {"assignment": "pset4", "dataset": "digits", "data_dir": "data", "sandbox": "process",
                      "timeout_scale": 1.0}
    assert 'pip" install --quiet "$SOURCE/mlp-grader"' in setup and "bubblewrap" in setup
    assert subprocess.run(["bash", "-n"], input=setup, text=True).returncode == 0


def test_mnist_is_baked_in_when_present_and_downloaded_otherwise(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist.npz").write_bytes(b"stand-in for the real file")
    assert main(["gradescope", "build", "--assignment", "pset4", "--out", str(tmp_path / "a"),
                 "--data-dir", str(data)]) == 0
    with zipfile.ZipFile(tmp_path / "a" / "autograder-pset4.zip") as zf:
        assert zf.read("data/mnist.npz") == b"stand-in for the real file"
        assert json.loads(zf.read("autograder.json"))["dataset"] == "mnist"
        assert "data fetch" not in zf.read("setup.sh").decode()
    assert main(["gradescope", "build", "--assignment", "pset4", "--out", str(tmp_path / "b"),
                 "--data-dir", str(tmp_path / "empty")]) == 0
    with zipfile.ZipFile(tmp_path / "b" / "autograder-pset4.zip") as zf:
        assert "data/mnist.npz" not in zf.namelist()
        assert 'mlp-grader" data fetch mnist --data-dir "$SOURCE/data"' in zf.read("setup.sh").decode()


def test_build_refuses_auto_and_unknown_assignments(tmp_path, capsys):
    assert main(["gradescope", "build", "--assignment", "pset4", "--dataset", "auto", "--out", str(tmp_path)]) == 2
    assert "needs a named dataset" in capsys.readouterr().err
    assert main(["gradescope", "build", "--assignment", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown assignment 'nope'" in capsys.readouterr().err


def fake_autograder_root(tmp_path: Path, autograder_zip: Path) -> Path:
    """What Gradescope makes: /autograder/source (the zip), /autograder/run_autograder, /autograder/submission."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLP_GRADER_AUTOGRADER_ROOT": str(root),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("MLP_GRADER_COURSE_DIR", None)
    return subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)


def test_run_autograder_grades_the_submission_and_writes_results_json(tmp_path, autograder_zip):
    root = fake_autograder_root(tmp_path, autograder_zip)
    # students upload a folder as often as its files
    shutil.copytree(PSET4_FIXTURES / "bug_predict_scores", root / "submission" / "my_pset4")
    run = run_autograder(root)
    assert run.returncode == 0, run.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 23
    tests = {t["name"].split(" ", 1)[1]: t for t in data["tests"]}
    predict = next(t for t in data["tests"] if t["name"].startswith("Q2.3") and "predict" in t["name"].lower())
    assert predict["status"] == "failed" and predict["score"] == 0 and predict["visibility"] == "after_published"
    assert "it looks like the scores, not their argmax" in predict["output"]
    visible = [t for t in data["tests"] if t["visibility"] == "visible"]
    assert visible and all(t["status"] == "passed" for t in visible if t["name"].startswith("Q2.1"))
    assert {t["visibility"] for t in data["tests"]} == {"visible", "after_published"}
    # each test has its check's level from the rubric (pset4's old `hidden` is after_published)
    levels = {f"{c.title}": c.visibility for c in load_rubric(REPO / "rubrics" / "pset4.toml").checks()}
    assert {name: t["visibility"] for name, t in tests.items()} == levels
    assert len(tests) == len(data["tests"]) == 16
    assert "Autograded: 23 / 45 points." in data["output"] and "graded by hand" in data["output"]
    assert "score 23, 16 tests" in run.stdout


def test_a_submission_that_cannot_be_graded_still_gets_results_json(tmp_path, autograder_zip):
    root = fake_autograder_root(tmp_path, autograder_zip)
    (root / "submission" / "notes.txt").write_text("I forgot the code")
    run = run_autograder(root)
    assert run.returncode == 0, run.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 0 and "mlp.py is missing from the submission" in data["output"]
    # and when the autograder itself is broken (no config), results.json says so
    (root / "source" / "autograder.json").unlink()
    assert run_autograder(root).returncode == 0
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 0 and data["tests"] == [] and "could not grade" in data["output"]


def test_hidden_checks_are_after_published_and_statuses_map(pset4_grader):
    result = pset4_grader.grade(REPO / "reference" / "pset4")
    data = to_gradescope(result, 12.4)
    validate_results(data)
    assert data["score"] == 45 and data["execution_time"] == 12
    hidden = {c.id for c in result.checks() if c.visibility == "after_published"}
    assert hidden
    by_title = {t["name"]: t for t in data["tests"]}
    for c in result.checks():
        test = next(t for name, t in by_title.items() if name.endswith(c.title))
        assert test["visibility"] == ("after_published" if c.id in hidden else "visible")
        assert test["status"] == "passed" and test["max_score"] == c.max_points


def test_every_level_and_what_each_test_shows():
    """Gradescope's levels are the rubric's; the output is what a student may read: the whole
    message in full, the kind's safe part when outcome-only, the course's hint on a failure."""
    message = "f(x) on hidden inputs: it differs (relative error 3.1e-01 > 1e-08): the sign is flipped"
    safe = "f(x) on hidden inputs: it differs: the sign is flipped"
    checks = [CheckResult(f"c{i}", "Q1", f"check {i}", 0, 1, "failed", message, level, detail_level=details,
                          student_message="mind the sign" if i == 3 else "", safe_message=safe)
              for i, (level, details) in enumerate([("visible", "full"), ("after_due_date", "outcome"),
                                                    ("after_published", "full"), ("hidden", "outcome")])]
    result = Result("s", "a", [QuestionResult("Q1", "Q", 4, False, 0, checks)])
    tests = to_gradescope(result, 1)["tests"]
    assert [(t["visibility"], t["output"]) for t in tests] == [
        ("visible", message), ("after_due_date", safe), ("after_published", message),
        ("hidden", safe + "\nHint: mind the sign")]


def test_without_mnist_the_other_checks_are_graded_and_the_data_checks_say_why(tmp_path):
    """setup.sh could not fetch MNIST (offline, OpenML down): the autograder still grades every
    check that does not train on it, and the training checks say why they have no points."""
    assert main(["gradescope", "build", "--assignment", "pset4", "--out", str(tmp_path), "--dataset", "mnist",
                 "--no-bake", "--sandbox", "process", "--data-dir", str(tmp_path / "no-data")]) == 0
    root = fake_autograder_root(tmp_path, tmp_path / "autograder-pset4.zip")
    shutil.copytree(PSET4_FIXTURES / "correct_helpers", root / "submission", dirs_exist_ok=True)
    run = run_autograder(root)
    assert run.returncode == 0, run.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    from grader.rubric import load_rubric

    checks = load_rubric(REPO / "rubrics" / "pset4.toml").checks()
    data_titles = [c.title for c in checks if c.needs_data]
    assert data_titles and data["score"] == sum(c.points for c in checks if not c.needs_data)
    for test in data["tests"]:
        if any(test["name"].endswith(t) for t in data_titles):
            assert test["score"] == 0 and test["status"] == "failed"
            assert "not graded: the autograder could not load the mnist dataset" in test["output"]
        else:
            assert test["status"] == "passed", test
    assert "mnist dataset was not available to the autograder" in data["output"]


def _venv_bin(venv: Path, name: str) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / name)


@pytest.mark.slow
def test_build_works_from_a_non_editable_install_in_a_fresh_environment(tmp_path):
    """The README's `pip install .` (not editable) in a new virtual environment, then
    `gradescope build` outside any checkout; the zip's package installs and grades."""
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env.update(PATH=f"{Path(_venv_bin(venv, 'python')).parent}:/usr/bin:/bin", HOME=str(tmp_path), LANG="C.UTF-8")
    run = lambda cmd, cwd: subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    shutil.copytree(REPO, tmp_path / "clone", ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                                           "build", "grading-output"))
    out = run([_venv_bin(venv, "pip"), "install", "-q", "."], tmp_path / "clone")
    assert out.returncode == 0, out.stderr[-3000:]
    shutil.rmtree(tmp_path / "clone")  # nothing of a checkout is left to build from
    out = run([_venv_bin(venv, "mlp-grader"), "gradescope", "build", "--assignment", "pset4", "--out", ".",
               "--dataset", "digits", "--sandbox", "process"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "needs a source checkout" not in out.stderr
    zip_path = tmp_path / "autograder-pset4.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    assert {"mlp-grader/pyproject.toml", "mlp-grader/grader/grading/engine.py", "mlp-grader/grader/probes/runner.py",
            "mlp-grader/grader/reporting/templates/report.html.j2", "mlp-grader/grader_course/rubrics/pset4.toml",
            "mlp-grader/grader_course/reference/pset4/mlp.py", "course/rubrics/pset4.toml"} <= names
    root = fake_autograder_root(tmp_path, zip_path)
    # setup.sh's install step, into the fresh environment (its dependencies are there already)
    out = run([_venv_bin(venv, "pip"), "install", "-q", "--no-deps", "--force-reinstall",
               str(root / "source" / "mlp-grader")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (root / "venv").symlink_to(venv)
    shutil.copytree(PSET4_FIXTURES / "bug_predict_scores", root / "submission", dirs_exist_ok=True)
    grade = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=1200,
                           env={**env, "MLP_GRADER_AUTOGRADER_ROOT": str(root)})
    assert grade.returncode == 0, grade.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate_results(data)
    assert data["score"] == 23, data["output"]
