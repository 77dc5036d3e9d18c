"""Shared test set-up: one Grader per session (the reference outputs and the dataset are
computed once), and paths to the fixture submissions."""
from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest

from grader import bwrap
from grader.sandbox import landlock, unprivileged
from grader.engine import GradeOptions, Grader

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PSET4_FIXTURES = FIXTURES / "pset4"

# The process level runs everywhere; the bwrap level has its own tests (test_bwrap.py).
OPTIONS = GradeOptions(sandbox="process", dataset="digits")


@pytest.fixture(scope="session")
def pset4_grader():
    with Grader("pset4", OPTIONS) as grader:
        yield grader


FIX_ENV = "MLP_GRADER_TEST_BWRAP_FIX"


def _level_with_fix(sb, checked: dict, label: str):
    """The level `sb`, or a skip that says why it is unavailable. With
    MLP_GRADER_TEST_BWRAP_FIX=1 (CI only) the tests may make the folders above the Python
    installation passable for the sandbox uid, and restore them afterwards (the same fix serves
    the bwrap and the landlock levels: both run probes as an unprivileged uid when root)."""
    ok, reason = sb.available()
    changed: list[tuple[Path, int]] = []
    try:
        if not ok and os.environ.get(FIX_ENV) == "1" and sb.root:
            for root in unprivileged._interpreter_roots():
                blocked = unprivileged._blocked_dir(root, sb.uid, sb.gid)
                if blocked is not None and all(blocked != c for c, _ in changed):
                    mode = stat.S_IMODE(os.stat(blocked).st_mode)
                    os.chmod(blocked, mode | 0o001)
                    changed.append((blocked, mode))
                    warnings.warn(f"{FIX_ENV}=1: machine change for the {label} tests: chmod o+x {blocked} "
                                  f"(mode {mode:o} is restored afterwards)")
            checked.clear()
            ok, reason = sb.available()
        if not ok:
            hint = "" if os.environ.get(FIX_ENV) else (
                f" (tests/CI only: set {FIX_ENV}=1 to let the tests apply the fix for the session)")
            pytest.skip(f"{label} level not available: {reason}{hint}")
        yield sb
    finally:
        for path, mode in reversed(changed):
            os.chmod(path, mode)
        checked.clear()


@pytest.fixture(scope="module")
def bwrap_sandbox():
    """The bwrap level, or a skip that says why it is unavailable (see _level_with_fix)."""
    yield from _level_with_fix(bwrap.BwrapSandbox(), bwrap._checked, "bwrap")


@pytest.fixture(scope="module")
def landlock_sandbox():
    """The landlock level, or a skip that says why it is unavailable (see _level_with_fix)."""
    yield from _level_with_fix(landlock.LandlockSandbox(), landlock._checked, "landlock")
