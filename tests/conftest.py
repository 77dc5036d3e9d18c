"""Shared test set-up: one Grader per session (the reference outputs and the dataset are
computed once), and paths to the fixture submissions."""
from __future__ import annotations

from pathlib import Path

import pytest

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
