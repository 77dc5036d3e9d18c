"""Where the course material lives: the reference solutions, the student templates, the rubrics.

An installed grader carries them in the data-only package `grader_course`; a source checkout
has them at the top of the repository. The environment variable MLP_GRADER_COURSE_DIR points
at another course folder with the same layout (reference/, student_template/, rubrics/).
A student kit has `public/` instead of `reference/`: the handout's inputs and published
numbers, stripped of every solution region (see grader/delivery/release.py).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError


@dataclass(frozen=True)
class CourseDir:
    root_reference: Path
    root_template: Path
    root_rubrics: Path

    @property
    def has_reference(self) -> bool:
        """False in a student kit: `public/` holds the handout's numbers, not a solution."""
        return self.root_reference.name != "public"

    def reference(self, assignment: str) -> Path:
        return self.root_reference / assignment

    def template(self, assignment: str) -> Path:
        return self.root_template / assignment

    def rubric(self, assignment: str) -> Path:
        return self.root_rubrics / f"{assignment}.toml"

    def assignments(self) -> list[str]:
        return sorted(p.stem for p in self.root_rubrics.glob("*.toml"))


def find_course(override: Path | None = None) -> CourseDir:
    candidates: list[Path] = []
    if override is not None:
        candidates.append(Path(override))
    if os.environ.get("MLP_GRADER_COURSE_DIR"):
        candidates.append(Path(os.environ["MLP_GRADER_COURSE_DIR"]))
    # A source checkout (or an editable install) wins over an installed copy of the material.
    candidates.append(Path(__file__).resolve().parent.parent)
    try:
        import grader_course

        candidates.append(Path(grader_course.__file__).resolve().parent)
    except ImportError:
        pass
    for root in candidates:
        for solutions in ("reference", "public"):
            if (root / "rubrics").is_dir() and (root / solutions).is_dir():
                return CourseDir(root / solutions, root / "student_template", root / "rubrics")
    raise GraderError(
        "cannot find the course material (rubrics/, reference/); set MLP_GRADER_COURSE_DIR "
        "to a folder that has them"
    )


def detect_assignment(path: Path, course: CourseDir) -> str:
    """The assignment whose identifying files the submission (or its first sub-folder) has."""
    candidates = [path] + (sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else [])
    for candidate in candidates:
        found = _assignment_of(candidate, course)
        if found:
            return found
    raise GraderError(f"cannot tell which assignment {path} is; pass --assignment "
                      f"({', '.join(course.assignments())})")


def _assignment_of(path: Path, course: CourseDir) -> str | None:
    from grader.rubric import load_rubric  # here: the course folder is found before anything is parsed
    from grader.submission import looks_like_submission

    for name in course.assignments():
        if looks_like_submission(path, load_rubric(course.rubric(name)).detect):
            return name
    return None
