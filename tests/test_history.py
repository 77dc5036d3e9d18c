"""The regrade history and `diff` on results made by hand (no grading): archived runs and their
index, students only on one side, the reasons a diff gives, a mixed batch's bank rows, and a
late input the batch refuses without a policy."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from grader.batching.history import archive, read_index
from grader.batching.late import LateOptions, LatePlan, plan_late
from grader.batching.layouts import Entry
from grader.latework.bank import read_bank
from grader.latework.inputs import LateInputError
from grader.reporting.diff import diff_runs, reasons
from grader.results import CheckResult, QuestionResult, Result
from grader.rubric import load_rubric

from conftest import REPO

NOW = datetime(2026, 12, 7, 1, 2, 3, tzinfo=timezone.utc)


def result(name: str, points: float, **fields) -> Result:
    check = CheckResult("c1", "Q1", "one", points, 2.0, "passed" if points == 2.0 else "failed", "")
    recorded = {"content_hash": "a" * 64, "rubric_hash": "r1", "grader_version": "0.2.0", "grading_hash": "g1",
                "sandbox": "process", "dataset": "digits", **fields}
    return Result(name, "pset4", [QuestionResult("Q1", "q", 2.0, False, points, [check])], **recorded)


def write_run(folder: Path, results: list[Result]) -> Path:
    for r in results:
        (folder / r.submission).mkdir(parents=True, exist_ok=True)
        r.write_json(folder / r.submission / "result.json")
        (folder / r.submission / "report.html").write_text(f"<p>{r.submission}</p>")
    return folder


def test_archive_copies_the_results_and_indexes_each_run(tmp_path):
    out = write_run(tmp_path / "out", [result("ann", 2.0), result("bob", 0.0)])
    first = archive(out, ["ann", "bob", "new-student"], NOW)
    second = archive(out, ["bob"], NOW)  # the same second: a new folder all the same
    assert (first.name, second.name) == ("20261207T010203Z", "20261207T010203Z-2")
    assert sorted(p.name for p in (first / "ann").iterdir()) == ["report.html", "result.json"]
    assert read_index(out) == [
        {"run": "20261207T010203Z", "archived_at": "2026-12-07T01:02:03+00:00", "grader_version": ["0.2.0"],
         "rubric_hash": ["r1"], "dataset": ["digits"], "sandbox": ["process"],
         "students": [{"folder": "ann", "student": "ann", "assignment": "pset4", "total_points": 2.0},
                      {"folder": "bob", "student": "bob", "assignment": "pset4", "total_points": 0.0}]},
        {"run": "20261207T010203Z-2", "archived_at": "2026-12-07T01:02:03+00:00", "grader_version": ["0.2.0"],
         "rubric_hash": ["r1"], "dataset": ["digits"], "sandbox": ["process"],
         "students": [{"folder": "bob", "student": "bob", "assignment": "pset4", "total_points": 0.0}]}]
    assert archive(out, ["nobody"], NOW) is None


def test_diff_lists_students_on_one_side_and_each_recorded_reason(tmp_path):
    old = write_run(tmp_path / "old", [result("ann", 2.0), result("bob", 0.0), result("dan", 1.0)])
    new = write_run(tmp_path / "new", [result("ann", 2.0), result("bob", 2.0, sandbox="bwrap", dataset="mnist"),
                                       result("eve", 1.0)])
    found = diff_runs(old, new)
    assert (found.only_old, found.only_new, found.unchanged) == (["dan"], ["eve"], 1)
    assert found.describe() == [
        "bob: 0 → 2 (dataset changed (digits → mnist); sandbox level changed (process → bwrap))",
        "  c1: 0 → 2",
        f"dan: only in {old}", f"eve: only in {new}", "1 changed, 1 unchanged"]
    base = result("x", 1.0)
    assert reasons(base, result("x", 1.0, grader_version="0.3.0")) == ["grader version changed (0.2.0 → 0.3.0)"]
    assert reasons(base, result("x", 1.0, grading_hash="g2")) == [
        "grader code, reference or grading options changed"]
    assert reasons(result("x", 1.0, late={"policy": "p1", "fraction": 0.0}),
                   result("x", 1.0, late={"policy": "p2", "fraction": 0.1})) == ["late policy changed"]
    assert reasons(base, result("x", 1.0)) == ["nothing the results record changed (a check that varies between runs?)"]
    # per check: its own rubric entry, from check_specs
    write_run(old, [result("fay", 1.0, rubric_hash="r1", check_specs={"c1": "s1"})])
    write_run(new, [result("fay", 2.0, rubric_hash="r2", check_specs={"c1": "s2"})])
    assert diff_runs(old, new).describe()[2:4] == ["fay: 1 → 2 (rubric changed)", "  c1: 1 → 2 (its rubric entry changed)"]
    # a history run holds only the students it replaced: the others are neither added nor removed
    assert diff_runs(write_run(tmp_path / "out" / "history" / "run1", [result("ann", 1.0)]), new).describe() == [
        "ann: 1 → 2 (nothing the results record changed (a check that varies between runs?))", "  c1: 1 → 2",
        "1 changed, 0 unchanged"]


def test_a_mixed_batch_keeps_both_assignments_bank_rows(tmp_path):
    bank = tmp_path / "bank.csv"
    bank.write_text("student,assignment,days\nann,pset3,1\n")
    first, second = LatePlan("pset4", bank, {"ann": 1}), LatePlan("modular", bank, {"bob": 2, "cat": 0})
    first.finish()
    second.finish()
    assert read_bank(bank) == {("ann", "pset3"): 1, ("ann", "pset4"): 1, ("bob", "modular"): 2}


def test_late_inputs_without_a_policy_are_refused(tmp_path):
    rubric = load_rubric(REPO / "rubrics" / "pset4.toml")
    assert rubric.late == {}
    entries = [Entry("ann", tmp_path, "folder")]
    ext = tmp_path / "ext.csv"
    ext.write_text("student,extra_days\nann,1\n")
    with pytest.raises(LateInputError) as err:
        plan_late(rubric, REPO / "rubrics" / "pset4.toml", entries, LateOptions(extensions=ext), tmp_path, {"ann"})
    assert str(err.value) == (f"{REPO / 'rubrics' / 'pset4.toml'}: no [late] table for pset4 and no --policy file: "
                              "extensions, submission times and a late-day bank need a due time")
    policy = tmp_path / "course.toml"
    policy.write_text("[late]\ndue = 2026-03-01T23:59:00Z\nlate_day_bank = 2\n")
    with pytest.raises(LateInputError, match=r"late_day_bank is set: pass --late-day-bank FILE"):
        plan_late(rubric, REPO / "rubrics" / "pset4.toml", entries, LateOptions(policy=policy), tmp_path, {"ann"})
    plan = plan_late(rubric, REPO / "rubrics" / "pset4.toml", entries, LateOptions(policy=policy, bank=tmp_path / "b.csv"),
                     tmp_path, {"ann"})
    assert entries[0].late["rule"] == "no submission time was given: no late penalty" and plan.used == {"ann": 0}
    with pytest.raises(LateInputError, match=r"^--at: '2026-03-01' has no time zone"):
        plan_late(rubric, REPO / "rubrics" / "pset4.toml", entries, LateOptions(at="2026-03-01"), tmp_path, {"ann"})
    assert json.dumps(entries[0].late)  # plain JSON: it goes into result.json
