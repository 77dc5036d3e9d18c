"""The student kit: what a course hands to students for one assignment.

    KIT/<assignment>/   the stripped template (code and notebook) and the course-provided files
    KIT/selfcheck/      an installable folder (`pip install ./selfcheck`) with the same engine
                        and a rubric that holds the public checks only
    KIT/README.md       how to install and run the self-check

It carries no solution code, no model answers, no hidden checks (neither their inputs nor
their expected values) and no reference outputs: the public checks compare with the handout's
published numbers or with the student's own numerical gradients. tests/test_release.py proves it.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import __version__
from grader.course import CourseDir, find_course
from grader.delivery.packaging import pyproject
from grader.delivery.template import render_template
from grader.errors import GraderError
from grader.files import load_toml
from grader.rubric import is_public, load_rubric

GRADER_DIR = Path(__file__).resolve().parents[1]  # the grader package
# Files of the reference a public check reads, stripped of their solution regions.
PUBLIC_REFERENCE_FILES = {"modular": ["handout_checks.py"]}
# Exactly what `mlp-grader check` imports (tests/test_kit_install.py proves it in a fresh
# environment): NumPy; nbformat (notebook values the modular checks read); scikit-learn (the
# offline digits stand-in and the MNIST download of `check --full`); tomli (rubrics, Python
# 3.10); and what student code imports where it runs: matplotlib, tqdm.
KIT_DEPENDENCIES = ["numpy>=1.24", "matplotlib>=3.7", "nbformat>=5.9", "scikit-learn>=1.3",
                    "tqdm>=4", "tomli>=2.0; python_version < '3.11'"]


@dataclass
class Kit:
    folder: Path
    files: list[str] = field(default_factory=list)  # relative paths
    public_points: float = 0.0

    @property
    def size_bytes(self) -> int:
        return sum((self.folder / f).stat().st_size for f in self.files)


def build_kit(assignment: str, out: Path, course: CourseDir | None = None) -> Kit:
    course = course or find_course()
    if assignment not in course.assignments():
        raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(course.assignments())}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise GraderError(f"{out} exists and is not empty; choose a new folder for the kit")
    rubric = load_rubric(course.rubric(assignment))
    template = course.template(assignment)
    files = list(rubric.owned) + list(rubric.provided)

    _copy_files(template, files, out / assignment)
    package = out / "selfcheck"
    shutil.copytree(GRADER_DIR, package / "grader", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    material = package / "grader_course"
    (material).mkdir(parents=True)
    (material / "__init__.py").write_text('"""Public course material of the student kit."""\n')
    _copy_files(template, files, material / "student_template" / assignment)
    public = render_template(course.reference(assignment), PUBLIC_REFERENCE_FILES.get(assignment, []))
    for rel, text in public.items():
        _write(material / "public" / assignment / rel, text)
    # Always a file here: pip drops empty folders, and the engine looks for this one.
    _write(material / "public" / "README.txt", "The handout's inputs and published numbers that public checks use.\n")
    raw = load_toml(course.rubric(assignment))
    public_rubric = public_only(raw)
    _write(material / "rubrics" / f"{assignment}.toml", dump_rubric(public_rubric))
    _write(package / "pyproject.toml", _pyproject())
    example = next((q.id for q in rubric.questions if any(c.public and not c.needs_data
                                                          for c in q.checks)), "")
    _write(out / "README.md", _readme(assignment, rubric.title, public_rubric["assignment"]["total_points"], example))
    kit_files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    load_rubric(material / "rubrics" / f"{assignment}.toml")  # the kit's rubric must itself be valid
    return Kit(out, kit_files, public_rubric["assignment"]["total_points"])


def public_only(raw: dict[str, Any]) -> dict[str, Any]:
    """The rubric without hidden checks and without model answers; autograded questions keep
    the points of their public checks and say how many points their hidden checks hold
    (`hidden_points`: a number, nothing of what they check), so the self-check can tell a
    student what remains to be decided after hand-in; written questions keep their points."""
    questions = []
    for q in raw.get("questions", []):
        q = {k: v for k, v in q.items() if k != "model_answer"}
        if not q.get("manual"):
            checks = [c for c in q.get("checks", []) if is_public(c)]
            hidden = sum(c["points"] for c in q.get("checks", [])) - sum(c["points"] for c in checks)
            q["checks"] = checks
            q["points"] = sum(c["points"] for c in checks)
            if hidden:
                q["hidden_points"] = hidden
        questions.append(q)
    assignment = {**raw["assignment"], "total_points": sum(q["points"] for q in questions)}
    return {"assignment": assignment, "data": raw.get("data", {}), "questions": questions}


def dump_rubric(rubric: dict[str, Any]) -> str:
    """TOML for the rubric structure (tables, inline tables, arrays of tables)."""
    lines = ["# Public checks only: generated by `mlp-grader release`.", "", "[assignment]"]
    lines += [f"{k} = {_value(v)}" for k, v in rubric["assignment"].items()]
    data = rubric.get("data", {})
    scalars = {k: v for k, v in data.items() if k != "thresholds"}
    if scalars:
        lines += ["", "[data]"] + [f"{k} = {_value(v)}" for k, v in scalars.items()]
    for name, table in data.get("thresholds", {}).items():
        lines += ["", f'[data.thresholds."{name}"]'] + [f"{k} = {_value(v)}" for k, v in table.items()]
    for q in rubric["questions"]:
        lines += ["", "[[questions]]"] + [f"{k} = {_value(v)}" for k, v in q.items() if k != "checks"]
        for c in q.get("checks", []):
            lines += ["", "[[questions.checks]]"] + [f"{k} = {_value(v)}" for k, v in c.items()]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f'"{k}" = {_value(x)}' for k, x in v.items()) + " }"
    raise GraderError(f"cannot write {type(v).__name__} into a rubric")


def _copy_files(source: Path, files: list[str], target: Path) -> None:
    for rel in files:
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _pyproject() -> str:
    return pyproject("mlp-grader-selfcheck", __version__, KIT_DEPENDENCIES, {"*": ["*.j2", "*.toml", "**/*"]},
                     description="Self-check for the course's neural-network homework (public checks only)")


def _readme(assignment: str, title: str, points: float, example: str) -> str:
    return f"""# {title}: student kit

`{assignment}/` holds the files you work on. `selfcheck/` checks your work on your own machine
with the same engine the course grades with — the public checks only ({points:g} points here).

Install once (Python 3.10+; a virtual environment is a good idea), into the Python your
Jupyter kernel runs (`pip install jupyter` there too, if you have no Jupyter yet):

    pip install ./selfcheck

In the notebook, run the cell `check("<question>")` under each question (and `check()` at the end):
it runs that question's public checks on your files as saved on disk, in a separate process, and
shows the table in the cell. Save your `.py` files first; the cell says which file and save time it
checked, and warns when the notebook still uses an older import of it.

Or in a terminal, in the folder with your code:

    cd {assignment}
    mlp-grader check            # public checks: a table, exit status 1 when one fails
    mlp-grader check --question {example}      # one question's checks, as a notebook cell runs them
    mlp-grader check --full     # also the training checks, when you have the dataset

Each row says PASS/FAIL, your points, what was measured and what was expected, and a hint
when a check fails (which function; a sign, a scale, a factor of N). Hidden checks (other
inputs, shapes and seeds) and your written answers are graded after you hand in: the check
says how many points remain to be decided then.

Your code runs in a separate process with a time limit per check, and memory and CPU limits
where the system has them (Linux, macOS). On Windows each check starts a fresh Python (there is
no `fork`): only the time limit applies, and this mode has been tested on Linux, not on Windows
itself; WSL runs the Linux version.
"""
