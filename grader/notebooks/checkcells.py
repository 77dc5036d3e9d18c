"""The self-check cells of a student notebook: one import cell before the first code cell, a
`check("Q2.1")` cell at the end of each autograded question's section and a `check()` cell at
the end. `mlp-grader assign` writes them into the template (never into the reference); the
grader recognises them here so that it never runs them and never counts them as the student's
edits, whether a notebook has them, lacks them (the original handout) or changed them."""
from __future__ import annotations

import re
from typing import Any

# What the import cell must contain (grader/delivery/checkcell.py); the version the notebook
# expects, so that an older installed kit says so in one line instead of failing oddly.
IMPORT_LINE = "from grader.delivery.checkcell import notebook_checker"
CHECK_CELL_VERSION = 1
CALL = re.compile(r"""^\s*check\(\s*(?:(["'])(?P<question>[^"'\n]*)\1\s*)?\)\s*;?\s*(?:#.*)?$""")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s", re.M)


def import_cell(assignment: str) -> str:
    """Degrades to one line (with the terminal command) when the kit is missing or too old."""
    return (f"# Self-check: check(\"<question>\") runs the public checks on your files as saved on disk.\n"
            f"try:\n"
            f"    {IMPORT_LINE}\n"
            f"    check = notebook_checker({assignment!r}, version={CHECK_CELL_VERSION})\n"
            f"except ImportError:\n"
            f"    def check(question=None):\n"
            f"        print(\"self-check not available in this Jupyter: install the kit in the environment of \"\n"
            f"              \"this kernel (pip install ./selfcheck), or run `mlp-grader check` in a terminal\")")


def check_cell(question: str | None) -> str:
    return f'check("{question}")' if question else "check()"


def is_check_cell(source: str) -> bool:
    """The import cell, or a cell of nothing but check(...) calls and comments, as written by
    `assign` or edited by a student (quotes, spacing, a comment of their own)."""
    if IMPORT_LINE in source:
        return True
    lines = [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]
    return bool(lines) and all(CALL.match(line) for line in lines)


def checked_question(source: str) -> str | None:
    """The question id a check cell names ("" for `check()`), None for another cell."""
    match = CALL.match(source.strip())
    return None if match is None else (match["question"] or "")


def insert_check_cells(nb: Any, assignment: str, anchors: list[tuple[str, re.Pattern]]) -> list[str]:
    """Add the import cell, one check cell per (question, heading pattern) and the final
    `check()` to `nb` (nbformat v4, changed in place); returns the questions whose heading was
    not found (the caller refuses them: a check cell must sit under its question)."""
    from nbformat.v4 import new_code_cell

    def cell(source: str, name: str) -> Any:
        made = new_code_cell(source)
        if nb.nbformat_minor >= 5:  # ids must not change between runs: `assign --check` compares text
            made["id"] = "selfcheck-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)[:50]
        else:
            made.pop("id", None)
        return made

    missing = []
    placed: list[tuple[int, str]] = []
    for question, pattern in anchors:
        start = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
                      and any(pattern.search(line) for line in heading_lines(c.source))), None)
        if start is None:
            missing.append(question)
            continue
        end = next((i for i in range(start + 1, len(nb.cells))
                    if nb.cells[i].cell_type == "markdown" and HEADING.search(nb.cells[i].source)), len(nb.cells))
        placed.append((end, question))
    for end, question in sorted(placed, reverse=True):  # from the bottom: earlier indices stay valid
        nb.cells.insert(end, cell(check_cell(question), question))
    nb.cells.append(cell(check_cell(None), "all"))
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), 0)
    nb.cells.insert(first_code, cell(import_cell(assignment), "import"))
    return missing


def heading_lines(source: str) -> list[str]:
    return [line for line in source.splitlines() if HEADING.match(line)]
