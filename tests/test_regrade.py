"""A class graded, graded again after a rubric fix and after a resubmission: the history keeps
what each regrade replaced, and `mlp-grader diff` names exactly the students and checks that
changed and why. Then the late policy over the same graded class (its results reused, nothing
graded again): submission times from an LMS file, git clones (as of --at, without touching the
clone), Canvas's LATE marker, extensions, the late-day bank, the gradebook columns, and bad
input refused before anything is written.

Two fixtures grade (bug_missing_reg, ~4 s; bug_syntax_error, under 1 s): three runs grade five
submissions in all; every later run reuses their results."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from grader.cli import main
from grader.delivery.gradescope import to_gradescope
from grader.results import Result

from conftest import PSET4_FIXTURES, REPO, git

COMMON = ["--dataset", "digits", "--sandbox", "process", "--execute", "none", "--similarity", "off", "-j", "1"]
TOLERANCE = "  expected = 1.182248\n  tolerance = 1e-6\n"  # sigmoid_toy_loss: bug_missing_reg gives 1.144317141


def copy_student(fixture: str, dest: Path) -> Path:
    shutil.copytree(PSET4_FIXTURES / fixture, dest)
    return dest


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course whose rubric the test may edit, a class of two, and its three runs."""
    root = tmp_path_factory.mktemp("regrade")
    course = root / "course"
    (course / "rubrics").mkdir(parents=True)
    shutil.copy(REPO / "rubrics" / "pset4.toml", course / "rubrics")
    for folder in ("reference", "student_template"):
        (course / folder).symlink_to(REPO / folder, target_is_directory=True)
    klass, out = root / "class", root / "out"
    copy_student("bug_missing_reg", klass / "bob")
    copy_student("bug_syntax_error", klass / "cat")
    args = ["grade", str(klass), "--out", str(out), *COMMON]
    logs = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLP_GRADER_COURSE_DIR", str(course))
        assert main(args) == 0
        rubric = course / "rubrics" / "pset4.toml"
        text = rubric.read_text()
        assert text.count(TOLERANCE) == 1
        rubric.write_text(text.replace(TOLERANCE, "  expected = 1.182248\n  tolerance = 0.05\n"))  # the "fix"
        assert main(args) == 0
        logs.append(json.loads((out / "history" / "index.json").read_text()))
        shutil.rmtree(klass / "cat")
        copy_student("bug_missing_reg", klass / "cat")  # cat resubmits (bob's code, hmm)
        assert main(args) == 0
        yield {"root": root, "class": klass, "out": out, "course": course, "mp": mp}


def runs(out: Path) -> list[dict]:
    return json.loads((out / "history" / "index.json").read_text())


def test_history_keeps_what_each_regrade_replaced(graded):
    out = graded["out"]
    index = runs(out)
    assert [sorted(s["folder"] for s in run["students"]) for run in index] == [["bob", "cat"], ["cat"]]
    first, second = index
    assert first["grader_version"] == second["grader_version"] and len(first["grader_version"]) == 1
    assert first["rubric_hash"] != second["rubric_hash"] and first["sandbox"] == ["process"]
    assert first["dataset"] == second["dataset"] and "digits" in first["dataset"][0]
    assert {s["folder"]: s["total_points"] for s in first["students"]} == {"bob": 37.4167, "cat": 0.0}
    assert {s["folder"]: s["total_points"] for s in second["students"]} == {"cat": 0.0}
    for run in index:
        for s in run["students"]:
            kept = out / "history" / run["run"] / s["folder"]
            assert sorted(p.name for p in kept.iterdir()) == ["report.html", "result.json"]
    assert json.loads((out / "history" / first["run"] / "bob" / "result.json").read_text())["total_points"] == 37.4167
    assert json.loads((out / "bob" / "result.json").read_text())["total_points"] == 39.4167


def test_diff_after_the_rubric_fix_names_the_one_check_it_touched(graded, capsys, tmp_path):
    out = graded["out"]
    first = out / "history" / runs(out)[0]["run"]
    second = out / "history" / runs(out)[1]["run"]
    # first run -> second run: the second run's results are OUT's bob and second/cat
    mixed = tmp_path / "after-fix"
    shutil.copytree(out / "bob", mixed / "bob")
    shutil.copytree(second / "cat", mixed / "cat")
    assert main(["diff", str(first), str(mixed), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "bob: 37.42 → 39.42 (rubric changed)",
        "  sigmoid_toy_loss: 0 → 2 (its rubric entry changed)",
        "1 changed, 1 unchanged",
        f"wrote {tmp_path / 'diff.html'} and diff.csv",
    ]
    with (tmp_path / "diff.csv").open(newline="") as fh:
        assert list(csv.reader(fh)) == [
            ["student", "total before", "total after", "check", "points before", "points after", "status before",
             "status after", "why"],
            ["bob", "37.42", "39.42", "sigmoid_toy_loss", "0", "2", "failed", "passed",
             "its rubric entry changed; rubric changed"]]
    html = (tmp_path / "diff.html").read_text()
    assert "1 student changed, 1 unchanged" in html and "sigmoid_toy_loss" in html and "cat" not in html


def test_diff_after_a_resubmission_says_submission_changed(graded, capsys):
    out = graded["out"]
    second = out / "history" / runs(out)[1]["run"]
    assert main(["diff", str(second), str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "cat: 0 → 39.42 (submission changed)"
    assert printed[-2:] == ["1 changed, 0 unchanged", f"wrote {out / 'diff.html'} and diff.csv"]
    changed = [line.strip().split(":")[0] for line in printed[1:-2]]
    assert not any("(" in line for line in printed[1:-2])  # no check's own rubric entry changed
    before, after = ({c["id"]: (c["points"], c["status"]) for q in json.loads(path.read_text())["questions"]
                      for c in q["checks"]} for path in (second / "cat" / "result.json", out / "cat" / "result.json"))
    assert set(before.values()) == {(0.0, "error")}  # a syntax error: every check
    assert changed == [check for check, got in after.items() if got != (0.0, "error")]
    assert "sigmoid_toy_loss" in changed and "relu_toy_loss" in changed  # 0 points either way: failed, not error


def test_diff_of_a_run_with_itself_is_empty(graded, capsys, tmp_path):
    out = graded["out"]
    assert main(["diff", str(out), str(out), "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "0 changed, 2 unchanged"
    with (tmp_path / "diff.csv").open(newline="") as fh:
        assert len(list(csv.reader(fh))) == 1  # the header alone
    assert main(["diff", str(out), str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"mlp-grader: error: no such folder: {tmp_path / 'nowhere'}\n"


# ---------------------------------------------------------------- the late policy, on reused results

POLICY = """[late]
due = 2026-03-01T23:59:00+01:00
timezone = "Europe/Zurich"
grace_minutes = 10
penalty_per_day = 0.1
max_late_days = 3
"""


def commit(repo: Path, when: str) -> str:
    if not (repo / ".git").exists():
        git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", when, when=when)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def late_class(graded, tmp_path):
    """OUT copied (its results are reused: nothing is graded again), and the class as git clones:
    bob's last commit 20 h after the due time, cat's the day before it."""
    out = tmp_path / "out"
    shutil.copytree(graded["out"], out)
    shutil.rmtree(out / "history")
    klass = tmp_path / "class"
    shutil.copytree(graded["class"], klass)
    commit(klass / "bob", "2026-03-02T19:59:00+01:00")
    commit(klass / "cat", "2026-02-28T12:00:00+01:00")
    policy = tmp_path / "course.toml"
    policy.write_text(POLICY)
    return klass, out, policy


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as fh:
        return list(csv.reader(fh))


LATE_COLUMNS = ["autograded", "raw", "late days", "bank days used", "bank days left", "late penalty", "total",
                "status", "late rule"]


def late_cells(gradebook: Path) -> dict[str, list[str]]:
    table = rows(gradebook)
    at = table[0].index("autograded")
    assert table[0][at:] == LATE_COLUMNS
    return {row[0]: row[at:] for row in table[1:]}


def test_git_times_extensions_and_the_gradebook(late_class, capsys, tmp_path):
    klass, out, policy = late_class
    extensions = tmp_path / "ext.csv"
    extensions.write_text("student,due,extra_days,multiplier\nbob,,1,\n")
    args = ["grade", str(klass), "--out", str(out), *COMMON, "--policy", str(policy)]
    assert main(args) == 0
    printed = capsys.readouterr()
    assert "nothing to grade: 2 kept from an earlier run" in printed.err
    assert "bob                              39.42/45 autograded; late: submitted 20 h late, one started day: −10 %\n" \
        in printed.out
    assert late_cells(out / "gradebook.csv") == {
        "Points Possible": ["45", "100", "", "", "", "", "100", "", ""],
        "bob": ["39.4167", "39.4167", "1", "", "", "3.9417", "35.475", "graded",
                "submitted 20 h late, one started day: −10 %"],
        "cat": ["39.4167", "39.4167", "0", "", "", "0", "39.4167", "graded", "submitted on time"]}
    bob = json.loads((out / "bob" / "result.json").read_text())
    assert (bob["raw_points"], bob["late_penalty"], bob["total_points"]) == (39.4167, 3.9417, 35.475)
    assert [c["points"] for q in bob["questions"] for c in q["checks"] if c["id"] == "sigmoid_toy_loss"] == [2]
    assert bob["late"]["source"].startswith("the date of commit ") and "set by whoever made the commit" in \
        bob["late"]["source"]
    graded_bob = Result.read_json(out / "bob" / "result.json")
    gradescope = to_gradescope(graded_bob, 1.0)
    assert gradescope["score"] == 35.475  # the final points; the checks keep theirs
    assert [t["score"] for t in gradescope["tests"] if t["name"] == "Q2.1 Toy loss, sigmoid, reg=0.1 (handout value)"
            ] == [2]
    report = (out / "bob" / "report.html").read_text()
    assert "Late work: submitted 20 h late, one started day: −10 % (−3.94 of 39.42 points)." in report
    index = (out / "index.html").read_text()
    assert "Late work (1 student)" in index
    # the late decision changed, the grading did not: the results it replaced are in the history
    assert [sorted(s["folder"] for s in run["students"]) for run in runs(out)] == [["bob", "cat"]]
    # an extra day for bob: on time; only bob's result is re-decided (and archived)
    assert main([*args, "--extensions", str(extensions)]) == 0
    assert late_cells(out / "gradebook.csv")["bob"][-3:] == ["39.4167", "graded", "submitted on time"]
    assert [sorted(s["folder"] for s in run["students"]) for run in runs(out)] == [["bob", "cat"], ["bob"]]
    capsys.readouterr()
    assert main(["diff", str(out / "history" / runs(out)[1]["run"]), str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "bob: 35.48 → 39.42 (late decision changed (submission time, extension or bank))", "1 changed, 0 unchanged"]


def test_the_bank_is_spent_once_and_lms_times_override_git(late_class, capsys, tmp_path):
    klass, out, policy = late_class
    policy.write_text(POLICY + "late_day_bank = 2\n")
    bank = tmp_path / "bank.csv"
    bank.write_text("student,assignment,days\nbob,pset3,1\n")
    times = tmp_path / "times.csv"
    times.write_text("student,time\ncat,2026-03-04T08:00:00+01:00\n")  # 2 days 8 h late: 3 started days
    args = ["grade", str(klass), "--out", str(out), *COMMON, "--policy", str(policy), "--late-day-bank", str(bank),
            "--submitted-at", str(times)]
    for _ in range(2):  # the same grading twice spends nothing twice
        assert main(args) == 0
        assert rows(bank) == [["student", "assignment", "days"], ["bob", "pset3", "1"], ["bob", "pset4", "1"],
                              ["cat", "pset4", "2"]]
        assert late_cells(out / "gradebook.csv") == {
            "Points Possible": ["45", "100", "", "", "", "", "100", "", ""],
            "bob": ["39.4167", "39.4167", "1", "1", "0", "0", "39.4167", "graded",
                    "submitted 20 h late, one started day: one late day spent, 0 left"],
            "cat": ["39.4167", "39.4167", "3", "2", "0", "3.9417", "35.475", "graded",
                    "submitted 2 days 8 h late, three started days: two late days spent, 0 left, 1 more at −10 %"]}
    cat = json.loads((out / "cat" / "result.json").read_text())["late"]
    assert cat["source"] == "times.csv, line 2"
    assert "nothing to grade: 2 kept" in capsys.readouterr().err


def test_a_clone_is_graded_as_of_at_without_touching_it(late_class, capsys, tmp_path):
    klass, out, policy = late_class
    cat = klass / "cat"
    first = git(cat, "rev-parse", "HEAD")
    (cat / "mlp.py").write_text("# started on the next assignment\n")
    second = commit(cat, "2026-03-03T09:00:00+01:00")
    (cat / "notes.txt").write_text("uncommitted")
    shutil.rmtree(klass / "bob")
    assert main(["grade", str(klass), "--out", str(out), *COMMON, "--policy", str(policy),
                 "--at", "2026-03-01T23:59:00+01:00"]) == 0
    assert "nothing to grade: 1 kept from an earlier run" in capsys.readouterr().err  # the first commit's files
    result = json.loads((out / "cat" / "result.json").read_text())
    assert result["late"]["rule"] == "submitted on time" and result["total_points"] == 39.4167
    assert result["late"]["source"] == (f"the date of commit {first[:10]} (set by whoever made the commit; the last "
                                        "commit not after 2026-03-01T23:59:00+01:00)")
    assert git(cat, "rev-parse", "HEAD") == second and (cat / "mlp.py").read_text().startswith("# started")
    assert git(cat, "status", "--porcelain") == "?? notes.txt"


def test_a_canvas_late_marker_is_late_by_an_unknown_time(graded, capsys, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded["out"], out)
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(graded["class"] / "cat" / "mlp.py", export / "cat_LATE_111_222_mlp.py")
    shutil.copy(graded["class"] / "bob" / "mlp.py", export / "bob_333_444_mlp.py")
    policy = tmp_path / "course.toml"
    policy.write_text(POLICY)
    assert main(["grade", str(export), "--out", str(out), *COMMON, "--policy", str(policy)]) == 0
    assert "nothing to grade: 2 kept" in capsys.readouterr().err
    cells = late_cells(out / "gradebook.csv")
    assert cells["cat"] == ["39.4167", "39.4167", "", "", "", "0", "39.4167", "graded",
                            "marked late with no time: late by an unknown time, no penalty applied (to check)"]
    assert cells["bob"][-1] == "no submission time was given: no late penalty"
    index = (out / "index.html").read_text()
    assert 'Late by an unknown time, to check: <a href="cat/report.html">cat</a>' in index
    policy.write_text(POLICY + "unknown_late_days = 1\n")
    assert main(["grade", str(export), "--out", str(out), *COMMON, "--policy", str(policy)]) == 0
    assert rows(out / "canvas-gradebook.csv")[2:] == [["bob", "333", "", "", "", "39.4167"],
                                                      ["cat", "111", "", "", "", "35.475"]]


@pytest.mark.parametrize("file, text, message", [
    ("ext.csv", "student,extra_days\nbob,1\nzed,2\n", "{path}:3: unknown student 'zed' (not in this batch)"),
    ("ext.csv", "student,extra_days\nbob,-1\n", "{path}:2: extra_days must be zero or more, not -1"),
    ("times.csv", "student,time\nbob,2026-03-02T10:00\n",
     "{path}:2: '2026-03-02T10:00' has no time zone (add one, e.g. +01:00 or Z)"),
])
def test_bad_input_is_one_line_and_nothing_is_written(late_class, capsys, tmp_path, file, text, message):
    klass, out, policy = late_class
    path = tmp_path / file
    path.write_text(text)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    option = "--extensions" if file == "ext.csv" else "--submitted-at"
    assert main(["grade", str(klass), "--out", str(out), *COMMON, "--policy", str(policy), option, str(path)]) == 2
    assert capsys.readouterr().err == f"mlp-grader: error: {message.format(path=path)}\n"
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
