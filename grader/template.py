"""Generating the student template from the reference by stripping the marked regions.

Code (in .py files and notebook code cells):
    # BEGIN SOLUTION: what the student must do
    ...solution...
    # STUB: optional line(s) that replace the region instead of the default
    # END SOLUTION
becomes `# TODO: what the student must do` and `raise NotImplementedError("...")`, or the STUB
lines. Markdown: text between `<!-- BEGIN MODEL ANSWER -->` and `<!-- END MODEL ANSWER -->`
becomes `**YOUR ANSWER HERE**`. Notebooks lose their outputs and execution counts.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from .errors import GraderError

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
            out.extend(_replacement(region))
            region = None
            continue
        stub = STUB.match(line)
        if stub:
            region["stubs"].append(stub["code"])
    if region is not None:
        raise GraderError(f"{where}:{region['line']}: BEGIN SOLUTION is never closed")
    return "".join(out)


def _replacement(region: dict) -> list[str]:
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


def render_template(reference: Path, files: list[str]) -> dict[str, str]:
    """The template's files (relative path -> text), generated from the reference."""
    rendered: dict[str, str] = {}
    for rel in files:
        source = reference / rel
        if not source.is_file():
            raise GraderError(f"reference file missing: {source}")
        text = source.read_text(encoding="utf-8")
        if rel.endswith(".ipynb"):
            rendered[rel] = strip_notebook(text, rel)
        elif rel.endswith(".py"):
            rendered[rel] = strip_code(text, rel)
        else:
            rendered[rel] = text
    return rendered


def write_template(reference: Path, files: list[str], target: Path) -> list[str]:
    """(Re)write the template folder; returns the files written."""
    rendered = render_template(reference, files)
    if target.exists():
        shutil.rmtree(target)
    for rel, text in rendered.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(rendered)


def template_differences(reference: Path, files: list[str], target: Path) -> list[str]:
    """Files of the committed template that differ from what the reference generates."""
    rendered = render_template(reference, files)
    problems = []
    for rel, text in rendered.items():
        path = target / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: differs")
    if target.is_dir():
        extra = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()
                 and "__pycache__" not in p.parts} - set(rendered)
        problems += [f"{rel}: not generated from the reference" for rel in sorted(extra)]
    return problems
