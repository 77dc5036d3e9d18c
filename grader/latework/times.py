"""When each submission was handed in, from what the course really has: an LMS export
(`--submitted-at FILE`: `student,time`), a git clone's last commit (or, with `--at TIME`, the
last commit not after TIME, graded from a scratch copy: the student's clone is never touched),
or Canvas's LATE marker, which says late but not by how much."""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader.errors import GraderError
from grader.latework.inputs import LateInputError, csv_rows, parse_time

TIME_COLUMNS = ("time", "submitted", "submitted_at")
# A student's clone is hostile input, its .git/config included: no hooks, no fsmonitor, no
# signature verification (log.showSignature would run gpg.program), no system or global
# configuration, and safe.directory for clones that belong to another user. Files are read as
# raw blobs (see snapshot): no filter a clone configures ever runs.
GIT = ("git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "log.showSignature=false",
       "-c", "gpg.program=false", "-c", "safe.directory=*")


@dataclass(frozen=True)
class SubmissionTime:
    time: datetime | None  # None: late by an unknown time (Canvas's marker)
    source: str  # in words, for the report: "submission times file x.csv:3", "last commit 1a2b3c4 ..."


def read_submitted_at(path: Path, students: set[str]) -> dict[str, SubmissionTime]:
    found: dict[str, SubmissionTime] = {}
    for where, row in csv_rows(path, ("student",), "--submitted-at"):
        column = next((c for c in TIME_COLUMNS if c in row), None)
        if column is None:
            raise LateInputError(f"{path}:1: the header needs a column named time")
        student = row["student"]
        if student not in students:
            raise LateInputError(f"{where}: unknown student {student!r} (not in this batch)")
        if student in found:
            raise LateInputError(f"{where}: {student!r} has a row already")
        line = where.rsplit(":", 1)[1]
        found[student] = SubmissionTime(parse_time(row[column], where), f"{Path(path).name}, line {line}")
    return found


def is_git_clone(folder: Path) -> bool:
    return (Path(folder) / ".git").exists()


def _git(folder: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
    done = subprocess.run([*GIT, "-C", str(folder), *args], capture_output=True, env=env, timeout=60,
                          input=input_bytes)
    if done.returncode != 0:
        raise GraderError(done.stderr.decode(errors="replace").strip().splitlines()[-1:][0] if done.stderr
                          else f"git {args[0]} failed")
    return done.stdout


def commit_time(folder: Path, at: datetime | None) -> tuple[str, datetime] | None:
    """(commit, committer date) of HEAD, or of the last commit on HEAD's history not after `at`;
    None when there is no such commit."""
    args = ["log", "-1", "--format=%H %cI"] + ([f"--before={at.isoformat()}"] if at else []) + ["HEAD", "--"]
    line = _git(folder, *args).decode().strip()
    if not line:
        return None
    commit, stamp = line.split(" ", 1)
    return commit, parse_time(stamp, f"{folder}: commit {commit[:7]}")


def snapshot(folder: Path, commit: str, dest: Path) -> None:
    """The files of `commit` into the empty folder `dest`, read as raw blobs (`ls-tree` and
    `cat-file`): the clone, its index and its working tree stay as they are, and no filter,
    attribute or other command the clone's own configuration names is ever run (git archive
    would run a smudge filter). Links, submodules and paths that would leave `dest` are skipped."""
    listing = _git(folder, "ls-tree", "-r", "-z", "--full-tree", commit)
    files = []
    for item in filter(None, listing.split(b"\0")):
        meta, _, raw_path = item.partition(b"\t")
        mode, kind, blob = meta.decode().split()
        rel = PurePosixPath(raw_path.decode("utf-8", errors="replace"))
        if kind == "blob" and mode in ("100644", "100755") and not rel.is_absolute() and \
                not any(part in ("..", ".git", "") for part in rel.parts):
            files.append((rel, blob))
    if not files:
        return
    data = _git(folder, "cat-file", "--batch", input_bytes=b"".join(f"{blob}\n".encode() for _, blob in files))
    at = 0
    for rel, blob in files:
        header_end = data.index(b"\n", at)
        size = int(data[at:header_end].split()[2])
        target = dest.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[header_end + 1: header_end + 1 + size])
        at = header_end + 1 + size + 1  # the blob, then a newline
