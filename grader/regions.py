"""Solution regions: how the reference marks what a student must write, and stripping them.

Code (in .py files and notebook code cells):
    # BEGIN SOLUTION: what the student must do
    ...solution...
    # STUB: optional line(s) that replace the region instead of the default
    # END SOLUTION
becomes `# TODO: what the student must do` and `raise NotImplementedError("...")`, or the STUB
lines. Markdown: text between `<!-- BEGIN MODEL ANSWER -->` and `<!-- END MODEL ANSWER -->`
becomes `**YOUR ANSWER HERE**`. Notebooks lose their outputs and execution counts.

Shared by the template generator (grader/delivery/template.py) and the notebook step, which
matches a student's cells against the template the same way (grader/notebooks/matching.py).
"""
from __future__ import annotations

import re

import nbformat

from grader.errors import GraderError

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<task>.*?))?\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STUB = re.compile(r"^\s*# STUB: ?(?P<code>.*)$")
ANSWER = re.compile(r"<!-- BEGIN MODEL ANSWER -->.*?<!-- END MODEL ANSWER -->", re.S)
ANSWER_PLACEHOLDER = "**YOUR ANSWER HERE**"


def strip_code(source: str, where: str = "") -> str:
    out: list[str] = []
    region: dict | None = None
    for number, line in enumerate(source.splitlines(keepends=True), 1):
        if region is None:
            match = BEGIN.match(line)
            if match:
                region = {"indent": match["indent"], "task": match["task"] or "your code here", "stubs": [],
                          "line": number}
            elif END.match(line):
                raise GraderError(f"{where}:{number}: END SOLUTION without BEGIN SOLUTION")
            else:
                out.append(line)
            continue
        if BEGIN.match(line):
            raise GraderError(f"{where}:{number}: nested BEGIN SOLUTION (region opened at line {region['line']})")
        if END.match(line):
            out.extend(replacement(region))
            region = None
            continue
        stub = STUB.match(line)
        if stub:
            region["stubs"].append(stub["code"])
    if region is not None:
        raise GraderError(f"{where}:{region['line']}: BEGIN SOLUTION is never closed")
    return "".join(out)


def replacement(region: dict) -> list[str]:
    indent = region["indent"]
    if region["stubs"]:
        return [f"{indent}{code}\n" for code in region["stubs"]]
    task = region["task"]
    return [f"{indent}# TODO: {task}\n", f"{indent}raise NotImplementedError({task!r})\n"]


def strip_notebook(text: str, where: str = "") -> str:
    nb = nbformat.reads(text, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source, f"{where} cell {index}")
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = ANSWER.sub(ANSWER_PLACEHOLDER, cell.source)
    return nbformat.writes(nb) + "\n"
