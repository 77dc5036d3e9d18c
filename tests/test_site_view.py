"""The probes' import path comes from the virtual environment the grader runs in, never from
the base interpreter: under `python -S` (how probes and some tests start) Python 3.11 leaves
sys.prefix at the base interpreter, and a site view built from sysconfig's defaults there
picked up whatever the base Python happened to have (matplotlib or not)."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

CODE = "import sys; sys.path.insert(0, {repo!r}); from grader.sandbox.core import site_dirs; print(site_dirs())"


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests run outside a virtual environment")
@pytest.mark.parametrize("flags", [[], ["-S"], ["-I", "-S"]])
def test_site_view_is_the_virtual_environments_also_under_python_S(flags):
    venv_site = Path(sysconfig.get_paths()["purelib"])  # this process started normally: the venv's
    assert Path(sys.prefix) in venv_site.parents
    out = subprocess.run([sys.executable, *flags, "-c", CODE.format(repo=str(REPO))], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr([venv_site])
