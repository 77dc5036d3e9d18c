"""Generating the student template from the reference by stripping the marked solution regions
(the markers and the stripping: grader/regions.py), and checking that the committed template is
in sync with the reference (`mlp-grader assign --check`).
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader.course import CourseDir
from grader.errors import GraderError
from grader.files import load_toml
from grader.notebooks.checkcells import insert_check_cells
from grader.notebooks.config import question_pattern
from grader.regions import strip_code, strip_notebook
from grader.rubric import load_rubric


@dataclass
class TemplateStatus:
    """One assignment's template: the files written, or (with `check`) how it differs from the
    reference; `problems` empty means in sync."""
    assignment: str
    folder: Path
    written: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def assign(course: CourseDir, assignment: str | None = None, check: bool = False) -> list[TemplateStatus]:
    """Generate student_template/<assignment> from reference/<assignment> for one assignment or
    every one; with `check`, write nothing and report the differences instead."""
    names = [assignment] if assignment else course.assignments()
    if assignment and assignment not in course.assignments():
        raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(course.assignments())}")
    statuses = []
    for name in names:
        rubric = load_rubric(course.rubric(name))
        files = list(rubric.owned) + list(rubric.provided)
        status = TemplateStatus(name, course.template(name))
        cells = check_anchors(course.rubric(name))
        if check:
            status.problems = template_differences(course.reference(name), files, course.template(name), cells)
        else:
            status.written = write_template(course.reference(name), files, course.template(name), cells)
        statuses.append(status)
    return statuses


def check_anchors(rubric_path: Path) -> CheckCells:
    """Where the student notebook gets its self-check cells: after each autograded question
    that has a public check a notebook can run (not a training check), found by the question's
    `check_after` regex on a heading, else its id as a token or its title in a heading."""
    rubric = load_rubric(rubric_path)
    raw = {q["id"]: q for q in load_toml(rubric_path).get("questions", [])}
    anchors = []
    for q in rubric.questions:
        if q.manual or not any(c.public and not c.needs_data for c in q.checks):
            continue
        given = raw[q.id].get("check_after")
        pattern = re.compile(given, re.I) if given else re.compile(
            f"{question_pattern(q.id).pattern}|{re.escape(q.title)}", re.I)
        anchors.append((q.id, pattern))
    return CheckCells(rubric.assignment, rubric.notebook, anchors)


@dataclass
class CheckCells:
    assignment: str
    notebook: str  # the notebook that gets them (relative path); "" for none
    anchors: list[tuple[str, re.Pattern]]


def render_template(reference: Path, files: list[str], cells: CheckCells | None = None) -> dict[str, str]:
    """The template's files (relative path -> text), generated from the reference; the
    notebook with its self-check cells when `cells` says where."""
    rendered: dict[str, str] = {}
    for rel in files:
        source = reference / rel
        if not source.is_file():
            raise GraderError(f"reference file missing: {source}")
        text = source.read_text(encoding="utf-8")
        if rel.endswith(".ipynb"):
            rendered[rel] = strip_notebook(text, rel)
            if cells is not None and rel == cells.notebook:
                rendered[rel] = _with_check_cells(rendered[rel], cells, source)
        elif rel.endswith(".py"):
            rendered[rel] = strip_code(text, rel)
        else:
            rendered[rel] = text
    return rendered


def _with_check_cells(text: str, cells: CheckCells, source: Path) -> str:
    nb = nbformat.reads(text, as_version=4)
    missing = insert_check_cells(nb, cells.assignment, cells.anchors)
    if missing:
        raise GraderError(f"{source}: no heading found for question(s) {', '.join(missing)}; give each a "
                          "`check_after` regex in the rubric (a heading of its section) for its check cell")
    return nbformat.writes(nb) + "\n"


def write_template(reference: Path, files: list[str], target: Path, cells: CheckCells | None = None) -> list[str]:
    """(Re)write the template folder; returns the files written."""
    rendered = render_template(reference, files, cells)
    if target.exists():
        shutil.rmtree(target)
    for rel, text in rendered.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted(rendered)


def template_differences(reference: Path, files: list[str], target: Path,
                         cells: CheckCells | None = None) -> list[str]:
    """Files of the committed template that differ from what the reference generates."""
    rendered = render_template(reference, files, cells)
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
