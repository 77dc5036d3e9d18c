"""Gradescope: build an autograder zip for one assignment, and the run it performs there.

The zip (Gradescope's autograder specification: setup.sh and run_autograder at its root) holds
  setup.sh          installs Python, bubblewrap and this package into /autograder/venv, and
                    fetches the dataset when it is not baked in;
  run_autograder    `python -m grader gradescope run`: grades /autograder/submission and writes
                    /autograder/results/results.json;
  mlp-grader/       this package's source (pip-installable), course material included;
  course/           the assignment's rubric, reference and template (MLP_GRADER_COURSE_DIR);
  data/             the dataset file when it is in the data folder at build time (mnist.npz,
                    cifar-100-python.tar.gz), else setup.sh downloads it;
  autograder.json   the assignment, the dataset (never `auto`: real grading must not fall back
                    to a stand-in silently), the sandbox level and the timeout scale.

The autograder root is /autograder, or MLP_GRADER_AUTOGRADER_ROOT (tests run it in a temp folder).
Every autograded check is one Gradescope test with the rubric's visibility (Gradescope's own
levels: visible, after_due_date, after_published, hidden) and the output a student may read
(grader.delivery.feedback.student_text: the whole message for a check shown in full, its safe
part for an outcome-only one, the rubric's student_message on a failure); written questions are
left to Gradescope's manual grading.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.course import find_course
from grader.delivery.feedback import student_text
from grader.data import DEFAULT_DATA_DIR
from grader.errors import DataUnavailable, GraderError
from grader.delivery.packaging import pyproject
from grader.files import atomic_write, replacing
from grader.grading.engine import GradeOptions, Grader
from grader.results import Result
from grader.rubric import load_rubric

ROOT_ENV = "MLP_GRADER_AUTOGRADER_ROOT"
GRADER_DIR = Path(__file__).resolve().parents[1]  # the grader package
DATA_FILES = {"mnist": "mnist.npz", "cifar100": "cifar-100-python.tar.gz"}  # what can be baked in
SOURCE_ITEMS = ("pyproject.toml", "README.md", "grader", "grader_course", "reference", "rubrics", "student_template")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image (Ubuntu).
set -euo pipefail
ROOT="${{MLP_GRADER_AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip bubblewrap {apt_extra}
python3 -m venv "$ROOT/venv"
"$ROOT/venv/bin/pip" install --quiet --upgrade pip
"$ROOT/venv/bin/pip" install --quiet "$SOURCE/mlp-grader"
mkdir -p "$SOURCE/data"
{fetch}
# The bwrap and landlock levels run student code as an unprivileged uid (run_autograder is root):
# it must be able to read Python.
chmod -R a+rX "$ROOT/venv" "$SOURCE"
"$ROOT/venv/bin/mlp-grader" doctor || true
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade $ROOT/submission, write $ROOT/results/results.json.
set -uo pipefail
ROOT="${MLP_GRADER_AUTOGRADER_ROOT:-/autograder}"
PY=python3
if [ -x "$ROOT/venv/bin/python" ]; then PY="$ROOT/venv/bin/python"; fi
export MLP_GRADER_COURSE_DIR="$ROOT/source/course"
exec "$PY" -m grader gradescope run --root "$ROOT"
"""


def autograder_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, "/autograder"))


def project_root() -> Path | None:
    """The source checkout this grader runs from, or None for an installed package."""
    root = GRADER_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "grader").is_dir() else None


def stage_package(target: Path) -> None:
    """This grader as a pip-installable folder: the source checkout's own files, or, from an
    installed package (`pip install .`, what the README tells a TA), the installed `grader` and
    `grader_course` (course material included) with a pyproject.toml written for them."""
    src = project_root()
    if src is not None:
        for item in SOURCE_ITEMS:
            if (src / item).is_dir():
                shutil.copytree(src / item, target / item, ignore=SKIP)
            elif (src / item).is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / item, target / item)
        return
    import grader_course

    for package in (GRADER_DIR, Path(grader_course.__file__).resolve().parent):
        shutil.copytree(package, target / package.name, ignore=SKIP)
    (target / "pyproject.toml").write_text(_installed_pyproject(target), encoding="utf-8")


def _installed_pyproject(tree: Path) -> str:
    from importlib import metadata

    try:
        version = metadata.version("mlp-grader")
        requires = [r for r in metadata.requires("mlp-grader") or [] if "extra ==" not in r]
    except metadata.PackageNotFoundError as exc:
        raise GraderError("cannot tell how this grader was installed (no mlp-grader distribution and no source "
                          "checkout); install it with pip first") from exc
    packages = sorted(".".join(p.parent.relative_to(tree).parts) for p in (tree / "grader").rglob("__init__.py"))
    material = sorted(p.name for p in (tree / "grader_course").iterdir() if p.is_dir() and p.name != "__pycache__")
    packages += ["grader_course"] + [f"grader_course.{name}" for name in material]
    data = {"grader.reporting.templates": ["*.j2", "static/*"], **{f"grader_course.{name}": ["**/*"] for name in material}}
    return pyproject("mlp-grader", version, requires, data, packages=packages,
                     header=f"# Written by `mlp-grader gradescope build` from an installed mlp-grader {version}.\n")


def build_autograder(assignment: str, out_dir: Path, dataset: str | None = None, data_dir: Path | None = None,
                     sandbox: str | None = None, timeout_scale: float = 1.0, bake_data: bool = True) -> Path:
    """Write OUT/autograder-<assignment>.zip and return its path."""
    course = find_course()
    if assignment not in course.assignments():
        raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(course.assignments())}")
    rubric = load_rubric(course.rubric(assignment))
    dataset = dataset or rubric.data.get("default", "")
    if dataset == "auto" or dataset not in rubric.data.get("datasets", []):
        raise GraderError(f"the autograder needs a named dataset, one of {', '.join(rubric.data.get('datasets', []))}")
    data_dir = Path(data_dir) if data_dir else DEFAULT_DATA_DIR
    with tempfile.TemporaryDirectory(prefix="mlp-grader-gradescope-") as tmp:
        stage = Path(tmp)
        stage_package(stage / "mlp-grader")
        shutil.copy2(course.rubric(assignment), _mkdir(stage / "course" / "rubrics") / f"{assignment}.toml")
        for part, folder in (("reference", course.reference(assignment)), ("student_template", course.template(assignment))):
            if folder.is_dir():
                shutil.copytree(folder, stage / "course" / part / assignment, ignore=SKIP)
        fetch, apt_extra = _data_step(dataset, data_dir, _mkdir(stage / "data"), bake_data)
        config = {"assignment": assignment, "dataset": dataset, "data_dir": "data", "sandbox": sandbox,
                  "timeout_scale": timeout_scale}
        (stage / "autograder.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (stage / "setup.sh").write_text(SETUP_SH.format(fetch=fetch, apt_extra=apt_extra), encoding="utf-8")
        (stage / "run_autograder").write_text(RUN_AUTOGRADER, encoding="utf-8")
        out_dir = _mkdir(Path(out_dir))
        target = out_dir / f"autograder-{assignment}.zip"
        _zip(stage, target)
    return target


def _data_step(dataset: str, data_dir: Path, dest: Path, bake: bool) -> tuple[str, str]:
    """Bake the dataset file in when it is here; otherwise the setup.sh line that fetches it."""
    name = DATA_FILES.get(dataset)
    if name and bake and (data_dir / name).is_file():
        shutil.copy2(data_dir / name, dest / name)
        return f"# {name} is baked into the zip (data/)", ""
    if name:
        return f'"$ROOT/venv/bin/mlp-grader" data fetch {dataset} --data-dir "$SOURCE/data"', ""
    if dataset == "fashion-mnist":
        return "# Fashion-MNIST comes from the Debian/Ubuntu package installed above", "dataset-fashion-mnist"
    return f"# {dataset} needs no download", ""


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _zip(stage: Path, target: Path) -> None:
    """Files at the zip's root (Gradescope's rule); the two scripts executable."""
    with replacing(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo.from_file(path, path.relative_to(stage).as_posix())
                info.compress_type = zipfile.ZIP_DEFLATED
                executable = path.name in ("setup.sh", "run_autograder")
                info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
                zf.writestr(info, path.read_bytes())


# ---------------------------------------------------------------- the run on Gradescope

def run_autograder(root: Path | None = None) -> dict[str, Any]:
    """Grade ROOT/submission as ROOT/source/autograder.json says; write ROOT/results/results.json.
    Whatever goes wrong ends in a results.json that says so (score 0), never in no file."""
    started = time.monotonic()
    root = Path(root) if root else autograder_root()
    try:
        config = json.loads((root / "source" / "autograder.json").read_text(encoding="utf-8"))
        options = GradeOptions(sandbox=config.get("sandbox"), dataset=config["dataset"],
                               data_dir=root / "source" / config.get("data_dir", "data"),
                               timeout_scale=float(config.get("timeout_scale", 1.0)))

        from grader.batching.jobs import grade_one  # the report writer's imports: only the run needs them

        missing_data = _missing_data(config["assignment"], options)
        if missing_data:
            options = replace(options, skip_data=True)
        with Grader(config["assignment"], options) as grader:
            submission = find_submission(root / "submission", grader.rubric.detect)
            result = grade_one(grader, submission, None)
        if missing_data:
            _explain_missing_data(result, grader.rubric, config["dataset"], missing_data)
        payload = to_gradescope(result, time.monotonic() - started)
    except (GraderError, OSError, KeyError, ValueError) as exc:
        payload = {"score": 0.0, "execution_time": round(time.monotonic() - started), "visibility": "visible",
                   "stdout_visibility": "hidden", "tests": [],
                   "output": f"The autograder could not grade this submission: {exc}\n"
                             "Please tell the course staff; this is not a problem with your code."}
    atomic_write(root / "results" / "results.json", json.dumps(payload, indent=2, allow_nan=False))
    return payload


def _missing_data(assignment: str, options: GradeOptions) -> str:
    """Why the dataset cannot be loaded here (setup.sh could not fetch it), or ""."""
    with Grader(assignment, options) as grader:
        try:
            grader.dataset
        except DataUnavailable as exc:
            return str(exc)
    return ""


def _explain_missing_data(result: Result, rubric: Any, dataset: str, why: str) -> None:
    """The checks that train on the dataset were not run: each says why, for 0 points, and the
    output tells the staff; every other check was graded as usual."""
    needs_data = {c.id for c in rubric.checks() if c.needs_data}
    for check in result.checks():
        if check.id in needs_data:
            check.status, check.points = "error", 0.0
            check.message = (f"not graded: the autograder could not load the {dataset} dataset ({why}); "
                             "this is not a problem with your code, and the course staff will regrade it")
    for question in result.questions:
        if not question.manual:
            question.points = round(sum(c.points for c in question.checks), 4)
    result.notes.append(f"the {dataset} dataset was not available to the autograder ({why}): the checks that "
                        "train on it were not graded; every other check was")


def find_submission(folder: Path, markers: tuple[str, ...]) -> Path:
    """The uploaded folder, or the shallowest folder below it that holds a marker file (students
    upload a folder as often as its files)."""
    if not folder.is_dir():
        raise GraderError(f"no submission folder at {folder}")
    if any((folder / m).exists() for m in markers):
        return folder
    roots = []
    for marker in markers:
        for path in folder.rglob(Path(marker).name):
            rel = path.relative_to(folder).as_posix()
            if rel.endswith("/" + marker) and "__MACOSX" not in path.parts:
                roots.append(folder / rel[: -len(marker)])
    return min(roots, key=lambda p: len(p.parts)) if roots else folder


def to_gradescope(result: Result, seconds: float) -> dict[str, Any]:
    """Gradescope's results.json for one Result: a test per autograded check."""
    tests = []
    for q in result.questions:
        if q.manual:
            continue
        for i, c in enumerate(q.checks, 1):
            tests.append({
                "name": f"{q.id} {c.title}",
                "number": f"{q.id.lstrip('Q')}.{i}",
                "score": round(c.points, 4),
                "max_score": c.max_points,
                "status": "passed" if c.status == "passed" else "failed",
                # the rubric's level is Gradescope's own; the output is what a student may read of it
                "output": student_text(c),
                "visibility": c.visibility,
            })
    lines = [f"Autograded: {result.autograded_points:g} / {result.autograded_max:g} points."]
    if result.error:
        lines.append(f"Could not be graded: {result.error}")
    lines += [f"Deduction: {a.get('points', 0):g} points, {a.get('reason', '')}"
              for a in getattr(result, "adjustments", [])]  # the top-level score includes them
    lines += [f"Note: {n}" for n in result.notes]
    manual = [q.id for q in result.questions if q.manual]
    if manual:
        lines.append(f"Written questions ({', '.join(manual)}) are graded by hand, separately.")
    lines.append(f"Dataset: {result.dataset or 'none'}. Sandbox: {result.sandbox}. Grader {result.grader_version}.")
    # the total after a late penalty, when the result has one (the checks keep their points)
    return {"score": round(result.final_autograded_points, 4), "execution_time": round(seconds),
            "output": "\n".join(lines), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
