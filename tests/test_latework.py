"""The late policy without grading anything: the [late] table and the course file, extensions,
submission times, the late-day bank, git clones as of a time, and the one decision per student
(exactly at the due time, a grace period, started days across a daylight-saving change, the
bank, too late, a Canvas marker without a time)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from grader.latework.bank import read_bank, spent_elsewhere, write_bank
from grader.latework.decide import NO_TIMES, decide, started_days
from grader.latework.extensions import read_extensions
from grader.latework.inputs import LateInputError, parse_time
from grader.latework.policy import load_policy
from grader.latework.times import SubmissionTime, commit_time, read_submitted_at, snapshot

from conftest import git

ZURICH = ZoneInfo("Europe/Zurich")
NEW_YORK = ZoneInfo("America/New_York")
RUBRIC_LATE = {"due": "2026-03-01T23:59:00+01:00", "timezone": "Europe/Zurich", "grace_minutes": 10,
               "penalty_per_day": 0.1, "max_late_days": 3}


def policy(tmp_path, **override):
    table = {**RUBRIC_LATE, **override}
    return load_policy(table, tmp_path / "pset4.toml", None)


def at(text: str) -> SubmissionTime:
    return SubmissionTime(parse_time(text, "test"), "times.csv, line 2")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- times and the policy

def test_a_z_suffix_is_utc_and_a_time_without_a_zone_is_refused():
    assert parse_time("2026-03-01T22:59:00Z", "x") == datetime(2026, 3, 1, 22, 59, tzinfo=timezone.utc)
    with pytest.raises(LateInputError) as err:
        parse_time("2026-03-01T23:59:00", "times.csv:3")
    assert str(err.value) == ("times.csv:3: '2026-03-01T23:59:00' has no time zone (add one, e.g. +01:00 or Z)")
    with pytest.raises(LateInputError, match=r"^times.csv:4: 'yesterday' is not an ISO 8601 time"):
        parse_time("yesterday", "times.csv:4")


def test_the_course_file_overrides_the_rubric_key_by_key_and_errors_name_the_line(tmp_path):
    rubric = write(tmp_path / "pset4.toml", "[assignment]\nid = 'pset4'\n\n[late]\npenalty_per_day = 0.1\n")
    course = write(tmp_path / "course.toml", "[late]\n# the course's rules\ndue = 2026-03-01T23:59:00+01:00\n"
                                             "penalty_per_day = 0.25\nmax_late_days = 2\n")
    got = load_policy({"penalty_per_day": 0.1}, rubric, course)
    assert (got.penalty_per_day, got.max_late_days, got.due.isoformat()) == (0.25, 2, "2026-03-01T23:59:00+01:00")
    assert got.source == f"{rubric} + {course}"
    write(course, "[late]\ndue = 2026-03-01T23:59:00\n")  # a TOML local datetime: no zone
    with pytest.raises(LateInputError) as err:
        load_policy({}, rubric, course)
    assert str(err.value) == f"{course}:2: '2026-03-01 23:59:00' has no time zone (add one, e.g. +01:00 or Z)"
    write(course, "[late]\ndue = 2026-03-01T23:59:00Z\nmax_late_days = -1\n")
    with pytest.raises(LateInputError, match=rf"^{course}:3: max_late_days must be zero or more, not -1$"):
        load_policy({}, rubric, course)
    write(course, "[late]\ndue = 2026-03-01T23:59:00Z\npenalty_per_day = 10\n")
    with pytest.raises(LateInputError, match=rf"^{course}:3: penalty_per_day is a fraction of the points"):
        load_policy({}, rubric, course)
    write(course, "[late]\ndue = 2026-03-01T23:59:00Z\nlate_days = 2\n")
    with pytest.raises(LateInputError, match=rf"^{course}:3: unknown key 'late_days' in \[late\]"):
        load_policy({}, rubric, course)
    write(course, "[late]\ndue = 2026-03-09T23:59:00Z\ncloses = 2026-03-08T23:59:00Z\n")
    with pytest.raises(LateInputError, match=rf"^{course}:2: due 2026-03-09T23:59:00\+00:00 is after the "
                                             r"submission window closes \(2026-03-08T23:59:00\+00:00\)$"):
        load_policy({}, rubric, course)
    assert load_policy({}, rubric, None) is None


# ---------------------------------------------------------------- the decision

def test_exactly_at_the_due_time_is_on_time_and_the_grace_period_is_no_penalty(tmp_path):
    p = policy(tmp_path)
    assert decide(p, at("2026-03-01T23:59:00+01:00"), None, 0)["rule"] == "submitted on time"
    assert decide(p, at("2026-03-01T22:59:00Z"), None, 0)["fraction"] == 0.0  # the same moment in UTC
    graced = decide(p, at("2026-03-02T00:09:00+01:00"), None, 0)
    assert (graced["rule"], graced["fraction"], graced["days"]) == (
        "submitted 10 min late, within the 10-minute grace period: no penalty", 0.0, 0)
    late = decide(p, at("2026-03-02T00:09:01+01:00"), None, 0)
    assert (late["rule"], late["fraction"], late["days"]) == ("submitted 11 min late, one started day: −10 %", 0.1, 1)


def test_started_days_the_issues_sentence_and_too_late_is_zero(tmp_path):
    p = policy(tmp_path)
    record = decide(p, at("2026-03-02T19:59:00+01:00"), None, 0)
    assert record["rule"] == "submitted 20 h late, one started day: −10 %"
    assert (record["days"], record["fraction"], record["late_seconds"]) == (1, 0.1, 72000.0)
    assert record["submitted"] == "2026-03-02T19:59:00+01:00" and record["source"] == "times.csv, line 2"
    three = decide(p, at("2026-03-04T23:59:00+01:00"), None, 0)  # the end of day 3 exactly
    assert (three["days"], three["fraction"]) == (3, 0.3)
    assert three["rule"] == "submitted 3 days late, three started days: −30 %"
    four = decide(p, at("2026-03-05T00:30:00+01:00"), None, 0)
    assert (four["days"], four["fraction"]) == (4, 1.0)
    assert four["rule"] == "submitted 3 days 31 min late, four started days, more than the 3 allowed: zero"


def test_days_are_counted_on_the_course_clock_across_a_daylight_saving_change(tmp_path):
    # New York leaves daylight-saving time on 2026-11-01: that day has 25 hours
    p = policy(tmp_path, due="2026-10-31T23:59:00-04:00", timezone="America/New_York", grace_minutes=0)
    submitted = datetime(2026, 11, 1, 23, 30, tzinfo=NEW_YORK)  # 24 h 31 min after the due time
    assert (submitted.astimezone(timezone.utc) - p.due.astimezone(timezone.utc)) == timedelta(hours=24, minutes=31)
    record = decide(p, SubmissionTime(submitted, "x"), None, 0)
    assert (record["days"], record["rule"]) == (1, "submitted 24 h late, one started day: −10 %")
    assert started_days(p.due, datetime(2026, 11, 2, 0, 0, tzinfo=NEW_YORK)) == 2
    # and on 2026-03-08 it enters it (a 23-hour day): two extra days still end at 23:59
    spring = policy(tmp_path, due="2026-03-07T23:59:00-05:00", timezone="America/New_York")
    ext = read_extensions(write(tmp_path / "ext.csv", "student,extra_days\nann,2\n"), spring, {"ann"})["ann"]
    assert ext.due.isoformat() == "2026-03-09T23:59:00-04:00" and ext.why == "2 extra days"
    assert decide(spring, SubmissionTime(datetime(2026, 3, 9, 23, 59, tzinfo=NEW_YORK), "x"), ext,
                  0)["rule"] == "submitted on time"


def test_the_bank_is_spent_first_and_unknown_times_follow_the_policy(tmp_path):
    p = policy(tmp_path, late_day_bank=2)
    one = decide(p, at("2026-03-02T19:59:00+01:00"), None, 2)
    assert (one["rule"], one["bank_used"], one["bank_left"], one["fraction"]) == (
        "submitted 20 h late, one started day: one late day spent, 1 left", 1, 1, 0.0)
    mixed = decide(p, at("2026-03-04T12:00:00+01:00"), None, 1)
    assert (mixed["rule"], mixed["bank_used"], mixed["bank_left"], mixed["fraction"]) == (
        "submitted 2 days 12 h late, three started days: one late day spent, 0 left, 2 more at −20 %", 1, 0, 0.2)
    marker = SubmissionTime(None, "Canvas's LATE marker (the export gives no time)")
    unknown = decide(p, marker, None, 0)
    assert (unknown["unknown"], unknown["fraction"], unknown["days"]) == (True, 0.0, 0)
    assert unknown["rule"] == "marked late with no time: late by an unknown time, no penalty applied (to check)"
    counted = decide(policy(tmp_path, unknown_late_days=1), marker, None, 0)
    assert (counted["rule"], counted["fraction"]) == (
        "marked late with no time, counted as one late day (the policy's unknown_late_days): −10 %", 0.1)
    assert decide(p, None, None, 2)["rule"] == NO_TIMES == "no submission time was given: no late penalty"


def test_a_standing_multiplier_stretches_grace_and_days(tmp_path):
    p = policy(tmp_path)
    ext = read_extensions(write(tmp_path / "ext.csv", "student,due,extra_days,multiplier\ncarol,,,1.5\n"),
                          p, {"carol"})["carol"]
    assert (ext.due, ext.multiplier, ext.why) == (p.due, 1.5, "late days ×1.5")
    assert decide(p, at("2026-03-02T00:14:00+01:00"), ext, 0)["fraction"] == 0.0  # 15 min of grace
    record = decide(p, at("2026-03-03T11:00:00+01:00"), ext, 0)  # 35 h late: within one 36-hour day
    assert (record["days"], record["rule"]) == (1, "submitted 35 h late, one started day: −10 %")


# ---------------------------------------------------------------- the CSV files

@pytest.mark.parametrize("rows, message", [
    ("ann,,2,\nzed,,1,\n", "{f}:3: unknown student 'zed' (not in this batch)"),
    ("ann,,-2,\n", "{f}:2: extra_days must be zero or more, not -2"),
    ("ann,,two,\n", "{f}:2: extra_days must be a number, not 'two'"),
    ("ann,2026-03-04T23:59:00,,\n", "{f}:2: '2026-03-04T23:59:00' has no time zone (add one, e.g. +01:00 or Z)"),
    ("ann,2026-03-09T23:59:00+01:00,,\n", "{f}:2: due 2026-03-09T23:59:00+01:00 is after the submission window "
                                          "closes (2026-03-05T23:59:00+01:00)"),
    ("ann,,,\n", "{f}:2: no due, extra_days or multiplier for 'ann'"),
])
def test_a_bad_extensions_file_is_one_line_naming_file_and_line(tmp_path, rows, message):
    p = policy(tmp_path, closes="2026-03-05T23:59:00+01:00")
    path = write(tmp_path / "ext.csv", "student,due,extra_days,multiplier\n" + rows)
    with pytest.raises(LateInputError) as err:
        read_extensions(path, p, {"ann", "bob"})
    assert str(err.value) == message.format(f=path)


def test_submission_times_file(tmp_path):
    path = write(tmp_path / "times.csv", "student,time\nann,2026-03-02T19:59:00+01:00\nbob,2026-03-01T20:00:00Z\n")
    got = read_submitted_at(path, {"ann", "bob"})
    assert got["ann"] == SubmissionTime(datetime(2026, 3, 2, 19, 59, tzinfo=ZURICH).astimezone(
        timezone(timedelta(hours=1))), "times.csv, line 2")
    assert got["bob"].time == datetime(2026, 3, 1, 20, 0, tzinfo=timezone.utc)
    write(path, "student,time\nann,2026-03-02 19:59\n")
    with pytest.raises(LateInputError, match=rf"^{path}:2: '2026-03-02 19:59' has no time zone"):
        read_submitted_at(path, {"ann"})
    write(path, "name,time\n")
    with pytest.raises(LateInputError, match=rf"^{path}:1: the header needs the column student"):
        read_submitted_at(path, {"ann"})


def test_the_bank_replaces_an_assignments_rows_so_nothing_is_spent_twice(tmp_path):
    bank = tmp_path / "bank.csv"
    assert read_bank(bank) == {}
    write_bank(bank, {}, "pset3", {"ann": 1, "bob": 0})
    spent = read_bank(bank)
    write_bank(bank, spent, "pset4", {"ann": 1})
    write_bank(bank, read_bank(bank), "pset4", {"ann": 1})  # the same grading again
    assert bank.read_text().splitlines() == ["student,assignment,days", "ann,pset3,1", "ann,pset4,1"]
    assert spent_elsewhere(read_bank(bank), "ann", "pset4") == 1
    write(bank, "student,assignment,days\nann,pset3,1\nbob,pset3,x\n")
    with pytest.raises(LateInputError, match=rf"^{bank}:3: days must be a number, not 'x'$"):
        read_bank(bank)


# ---------------------------------------------------------------- git clones

def make_clone(repo: Path) -> dict[str, str]:
    repo.mkdir()
    git(repo, "init", "-q")
    commits = {}
    for text, when in (("v1", "2026-03-01T20:00:00+01:00"), ("v2", "2026-03-02T10:00:00+01:00")):
        (repo / "mlp.py").write_text(text)
        git(repo, "add", "mlp.py")
        git(repo, "commit", "-q", "-m", text, when=when)
        commits[text] = git(repo, "rev-parse", "HEAD")
    (repo / "mlp.py").write_text("uncommitted")  # the student's working tree: never touched
    return commits


def test_a_snapshot_runs_nothing_the_clone_configures(tmp_path):
    repo = tmp_path / "mallory"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "helpers.py").write_text("x = 1\n")
    (repo / ".gitattributes").write_text("* filter=evil\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one", when="2026-03-01T20:00:00+01:00")
    ran = tmp_path / "ran"
    git(repo, "config", "filter.evil.smudge", f"touch {ran}; cat")
    git(repo, "config", "log.showSignature", "true")
    git(repo, "config", "gpg.program", f"touch {ran}")
    commit, _ = commit_time(repo, None)
    snapshot(repo, commit, tmp_path / "copy")
    assert sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*")
                  if p.is_file()) == [".gitattributes", "lib/helpers.py"]
    assert (tmp_path / "copy" / "lib" / "helpers.py").read_text() == "x = 1\n"
    assert not ran.exists()


def test_a_clone_as_of_a_time_is_read_from_its_history_without_touching_it(tmp_path):
    repo = tmp_path / "ann"
    commits = make_clone(repo)
    assert commit_time(repo, None) == (commits["v2"], datetime(2026, 3, 2, 10, tzinfo=timezone(timedelta(hours=1))))
    found = commit_time(repo, parse_time("2026-03-01T23:59:00+01:00", "--at"))
    assert found == (commits["v1"], datetime(2026, 3, 1, 20, tzinfo=timezone(timedelta(hours=1))))
    assert commit_time(repo, parse_time("2026-02-01T00:00:00Z", "--at")) is None
    snapshot(repo, found[0], tmp_path / "copy")
    assert (tmp_path / "copy" / "mlp.py").read_text() == "v1"
    assert (repo / "mlp.py").read_text() == "uncommitted" and git(repo, "rev-parse", "HEAD") == commits["v2"]
    assert git(repo, "status", "--porcelain") == "M mlp.py"
