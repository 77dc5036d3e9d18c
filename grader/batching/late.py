"""The late policy over a batch: every input read and checked before anything is graded or
written (the policy, extensions, submission times, the bank), git clones snapshotted at `--at`
into the scratch folder, each entry's decision set on it, and the bank written back when the
batch is done (this assignment's rows replaced: a re-run spends nothing twice)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.batching.layouts import Entry
from grader.errors import GraderError
from grader.latework.bank import read_bank, spent_elsewhere, write_bank
from grader.latework.decide import decide
from grader.latework.extensions import read_extensions
from grader.latework.inputs import LateInputError, parse_time
from grader.latework.policy import load_policy
from grader.latework.times import SubmissionTime, commit_time, is_git_clone, read_submitted_at, snapshot
from grader.rubric import Rubric
from grader.submission import load_submission


@dataclass(frozen=True)
class LateOptions:
    """What the TA gave: see grader.api.grade_folder."""
    policy: Path | None = None
    extensions: Path | None = None
    submitted_at: Path | None = None
    at: str | None = None
    bank: Path | None = None

    def at_time(self) -> datetime | None:
        return parse_time(self.at, "--at") if self.at else None


@dataclass
class LatePlan:
    """The decisions of one assignment's entries, and the bank to write when the batch is done."""
    assignment: str
    bank: Path | None = None
    used: dict[str, int] = field(default_factory=dict)

    def finish(self) -> None:
        if self.bank is not None:  # read again: another assignment of the batch may have written it
            write_bank(self.bank, read_bank(self.bank), self.assignment, self.used)


def plan_late(rubric: Rubric, rubric_path: Path, entries: list[Entry], options: LateOptions,
              scratch: Path, students: set[str]) -> LatePlan:
    """Set `entry.late` on each of the assignment's `entries` (and grade git clones as of --at);
    `students`: everyone in the batch (a file may name students of another assignment). Raises
    LateInputError (one line: file and line) before anything is written."""
    at = options.at_time()
    policy = load_policy(rubric.late, rubric_path, options.policy)
    if policy is None:
        if options.extensions or options.submitted_at or options.bank:
            raise LateInputError(f"{rubric_path}: no [late] table for {rubric.assignment} and no --policy file: "
                                 "extensions, submission times and a late-day bank need a due time")
        if at:
            _times_from_git(entries, at, scratch)
        return LatePlan(rubric.assignment)
    extensions = read_extensions(options.extensions, policy, students) if options.extensions else {}
    given = read_submitted_at(options.submitted_at, students) if options.submitted_at else {}
    if options.bank is not None and not policy.late_day_bank:
        raise LateInputError(f"--late-day-bank {options.bank}: the policy ({policy.source}) has no late_day_bank")
    if options.bank is None and policy.late_day_bank:
        raise LateInputError(f"{policy.source}: late_day_bank is set: pass --late-day-bank FILE (the CSV kept "
                             "between assignments; a new file is started when it does not exist)")
    spent = read_bank(options.bank) if options.bank else {}
    plan = LatePlan(rubric.assignment, options.bank)
    git = _times_from_git(entries, at, scratch)  # --at applies to every clone; a times file wins for the time
    for entry in entries:
        when = given.get(entry.name) or git.get(entry.name)
        if when is None and entry.late_marker:
            when = SubmissionTime(None, "Canvas's LATE marker (the export gives no time)")
        left = max(0, policy.late_day_bank - spent_elsewhere(spent, entry.name, rubric.assignment))
        entry.late = decide(policy, when, extensions.get(entry.name), left)
        plan.used[entry.name] = entry.late["bank_used"]
    return plan


def _times_from_git(entries: list[Entry], at: datetime | None, scratch: Path) -> dict[str, SubmissionTime]:
    """The time of each git clone's last commit (before `at`, when given, in which case the
    clone is graded from a scratch snapshot of that commit)."""
    times = {}
    for entry in entries:
        if entry.layout != "folder" or entry.error or not is_git_clone(entry.path):
            continue
        try:
            found = commit_time(entry.path, at)
        except GraderError as exc:
            entry.error = f"its git repository cannot be read: {exc}"
            continue
        if found is None:
            entry.error = f"no commit at or before {at.isoformat()}" if at else "its git repository has no commit"
            continue
        commit, when = found
        source = (f"the date of commit {commit[:10]} (set by whoever made the commit"
                  + (f"; the last commit not after {at.isoformat()})" if at else ")"))
        if at is not None:
            copy = scratch / "git" / entry.out_name
            copy.mkdir(parents=True)
            try:
                snapshot(entry.path, commit, copy)
            except GraderError as exc:
                entry.error = f"commit {commit[:10]} cannot be read: {exc}"
                continue
            entry.path = copy
            entry.notes.append(f"graded as of commit {commit[:10]} ({when.isoformat()}), the last not after "
                               f"{at.isoformat()}")
            try:
                entry.content_hash = load_submission(copy).content_hash
            except GraderError as exc:
                entry.error = str(exc)
        times[entry.name] = SubmissionTime(when, source)
    return times


__all__ = ["LateInputError", "LateOptions", "LatePlan", "plan_late"]
