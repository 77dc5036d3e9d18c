"""Syntax trees are built one at a time in the grader's process (grader/parsing.py): CPython
3.11 fails with "AST constructor recursion depth mismatch" when two threads build them at once,
and a grading worker runs the engine, the notebook and the figures in threads."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO

SANDBOXED = REPO / "grader" / "probes"  # runs in the sandbox, one thread: not the grader's process


def test_the_grader_parses_python_only_through_the_lock():
    direct = [f"{path.relative_to(REPO)}:{number}"
              for path in sorted((REPO / "grader").rglob("*.py"))
              if SANDBOXED not in path.parents and path.name != "parsing.py"
              for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
              if re.search(r"\bast\.parse\(|PyCF_ONLY_AST|literal_eval\(", line)]
    assert direct == [], "use grader.parsing.parse: " + ", ".join(direct)


def test_importing_matplotlib_for_the_figures_waits_while_another_thread_parses(tmp_path):
    """matplotlib's import parses builtin signatures (inspect): plots.preload takes the lock."""
    code = """
import sys, threading, time
from grader import parsing
from grader.reporting import plots
with parsing.LOCK:  # another thread is building a syntax tree
    importer = threading.Thread(target=plots.preload)
    importer.start()
    time.sleep(1.0)
    print("waited", importer.is_alive() and "matplotlib.figure" not in sys.modules)
importer.join()
print("imported", "matplotlib.figure" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["waited", "True", "imported", "True"], out.stderr
