"""Generating the student template from the reference by stripping the marked solution regions
(the markers and the stripping: grader/regions.py), and checking that the committed template is
in sync with the reference (`mlp-grader assign --check`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader.course import CourseDir
from grader.errors import GraderError
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
        if check:
            status.problems = template_differences(course.reference(name), files, course.template(name))
        else:
            status.written = write_template(course.reference(name), files, course.template(name))
        statuses.append(status)
    return statuses


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
