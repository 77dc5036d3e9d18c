"""The student kit as a student gets it: built with `mlp-grader release`, installed with pip into a
brand-new virtual environment that shares no package with the test environment, and run with
the commands the READMEs give, in the kit's assignment folder.

One environment for the module (the first kit installs the dependencies, later kits reinstall
only themselves): the dependencies are the same list for every assignment."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.course import find_course
from grader.delivery.release import build_kit
from grader.rubric import load_rubric

from conftest import FIXTURES, REPO, default_subset

ASSIGNMENTS = find_course().assignments()
# A correct submission written differently from the reference, per assignment; another
# assignment's first correct_* fixture otherwise.
CORRECT = {"pset4": "correct_helpers", "modular": "correct_variant"}
# Modules of the grader that `check` must not import: their packages are not in the kit.
NOT_ON_THE_CHECK_PATH = ("grader.batching.folder", "grader.batching.pool", "grader.batching.layouts",
                         "grader.notebooks.kernel", "grader.notebooks.step", "grader.delivery.gradescope",
                         "grader.reporting.manual", "grader.reporting.render", "grader.reporting.report",
                         "grader.reporting.summary", "nbclient", "jupyter_client", "ipykernel", "jinja2")


ROW = re.compile(r"^(PASS|PARTIAL|FAIL|ERROR|TIMEOUT) +\S+ +(\S+)", re.M)
# The first question with a check cell: the kit README's `check --question` example.
EXAMPLE_QUESTION = {"pset4": "Q2.1", "modular": "fc_forward", "a1": "P3B_code"}


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / name


def _env(venv: Path, home: Path) -> dict[str, str]:
    """A student's shell: the venv first on PATH, an empty home (no cached dataset, so `--full`
    uses the offline stand-in), pip's own settings kept (the package index), nothing else."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    # pip's byte-compilation of the kit's dependencies (numpy, scipy, scikit-learn, matplotlib) was
    # half the install's CPU time (17 of 33 s here); Python compiles what `check` imports when it
    # imports it, and no assertion reads .pyc files. (PIP_COMPILE=0: pip reads PIP_NO_COMPILE=1 as
    # "compile", the inverted boolean of its --no-* options.)
    env.setdefault("PIP_COMPILE", "0")
    env.update(PATH=f"{_bin(venv, '')}{os.pathsep}/usr/bin{os.pathsep}/bin", HOME=str(home), LANG="C.UTF-8")
    return env


def _run(cmd, cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    venv = root / "kitvenv"
    home = root / "home"
    home.mkdir()
    # The interpreter the tests run on, as a student's `python3 -m venv`: no system site-packages.
    out = _run([sys.executable, "-m", "venv", str(venv)], root, _env(venv, home), timeout=300)
    assert out.returncode == 0, out.stderr
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    return venv, home


# The default run installs pset4's kit; a1's and modular's are the same install and checks again (slow)
@pytest.fixture(scope="module", params=default_subset(ASSIGNMENTS, {"pset4"}))
def installed(request, venv, tmp_path_factory):
    """(assignment, kit folder, venv, home) with the assignment's kit installed."""
    assignment = request.param
    env_dir, home = venv
    kit = build_kit(assignment, tmp_path_factory.mktemp("kit") / "kit").folder
    env = _env(env_dir, home)
    _run([str(_bin(env_dir, "pip")), "uninstall", "-q", "-y", "mlp-grader-selfcheck"], kit, env)
    out = _run([str(_bin(env_dir, "pip")), "install", "-q", "./selfcheck"], kit, env)
    assert out.returncode == 0, out.stderr[-3000:]
    return assignment, kit, env_dir, home


def public_checks(kit: Path, assignment: str, full: bool) -> tuple[list[str], float]:
    rubric = load_rubric(kit / "selfcheck" / "grader_course" / "rubrics" / f"{assignment}.toml")
    checks = [c for c in rubric.checks() if full or not c.needs_data]
    return [c.id for c in checks], sum(c.points for c in checks)


def with_correct_code(kit: Path, assignment: str, target: Path) -> Path:
    """A copy of the kit whose assignment folder holds a correct submission."""
    name = CORRECT.get(assignment) or next((p.name for p in sorted((FIXTURES / assignment).glob("correct_*"))), None)
    if name is None:
        pytest.fail(f"no correct fixture for {assignment}: add tests/fixtures/{assignment}/correct_<how>/")
    shutil.copytree(kit, target)
    shutil.copytree(FIXTURES / assignment / name, target / assignment, dirs_exist_ok=True)
    return target


def assert_clean(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_check_on_the_template_lists_every_public_check_and_imports_only_what_it_needs(installed):
    """`check` in the template's folder: exit 1, every public check listed, no traceback; the
    kit's environment has none of the TA-side packages and `check` does not import the modules
    that would need them (so it starts fast and a missing optional package cannot break it)."""
    assignment, kit, venv, home = installed
    folder = kit / assignment
    code = ("import importlib.metadata as md, importlib.util, sys\n"
            "from grader.cli import main\n"
            "rc = main(['check'])\n"
            f"print('LOADED', sorted(m for m in {NOT_ON_THE_CHECK_PATH!r} if m in sys.modules))\n"
            "print('INSTALLED', sorted(m for m in ('nbclient', 'jupyter_client', 'ipykernel', 'jinja2') "
            "if importlib.util.find_spec(m)))\n"
            "print('REQUIRES', sorted(r.split(';')[0].split('>')[0].split('=')[0].strip() "
            "for r in md.requires('mlp-grader-selfcheck')))\n"
            "sys.exit(rc)\n")
    out = _run([str(_bin(venv, "python")), "-c", code], folder, _env(venv, home))
    assert_clean(out)
    assert out.returncode == 1, out.stdout + out.stderr
    ids, points = public_checks(kit, assignment, full=False)
    # The header names the assignment and the folder, although `check` ran in `.`.
    assert out.stdout.splitlines()[0].startswith(f"{assignment}: {len(ids)} public checks on {folder.resolve()} ")
    rows = dict((check, status) for status, check in ROW.findall(out.stdout))
    assert sorted(rows) == sorted(ids)
    assert set(rows.values()) <= {"FAIL", "ERROR", "PARTIAL"}
    assert f"public checks: 0/{points:g} points" in out.stdout
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.stdout.splitlines()
             if line.split(" ", 1)[0] in ("LOADED", "INSTALLED", "REQUIRES")}
    assert lines["LOADED"] == "[]"
    assert lines["INSTALLED"] == "[]"
    assert lines["REQUIRES"] == str(sorted(["matplotlib", "nbformat", "numpy", "scikit-learn", "tomli", "tqdm"]))


def _commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def readme_student_commands() -> list[str]:
    """The code block of the repository README's "For students" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## For students\n", 1)[1].split("\n## ", 1)[0]
    return _commands(re.search(r"```bash\n(.*?)```", section, re.S).group(1))


def kit_readme_commands(kit: Path) -> list[str]:
    """The indented command lines of the kit's own README."""
    lines = (kit / "README.md").read_text(encoding="utf-8").splitlines()
    return _commands("\n".join(ln[4:] for ln in lines if ln.startswith("    ")))


def run_commands(commands: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Run the commands one after the other in one shell, as a student types them; the output
    of each `mlp-grader check`, in order."""
    script = "set -e\n" + "\n".join(f"echo '=== {c}'\n{c}" for c in commands) + "\n"
    out = _run(["bash", "-c", script], cwd, env)
    assert_clean(out)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    parts = out.stdout.split("=== ")[1:]
    return [part.split("\n", 1)[1] for part in parts if part.startswith("mlp-grader check")]


def test_the_kits_readme_commands_pass_on_a_correct_submission(installed, tmp_path):
    """The kit README's commands as written (install, cd, check, check --full) on a correct
    submission: both checks exit 0 with every public point; --full trains on the stand-in."""
    assignment, kit, venv, home = installed
    work = with_correct_code(kit, assignment, tmp_path / "kit")
    commands = kit_readme_commands(kit)
    example = EXAMPLE_QUESTION[assignment]
    assert commands == ["pip install ./selfcheck", f"cd {assignment}", "mlp-grader check",
                        f"mlp-grader check --question {example}", "mlp-grader check --full"]
    quick, one, full = run_commands(commands, work, _env(venv, home))
    for output, with_data in ((quick, False), (full, True)):
        ids, points = public_checks(kit, assignment, full=with_data)
        assert f"public checks: {points:g}/{points:g} points" in output, output
        assert sorted(check for status, check in ROW.findall(output) if status == "PASS") == sorted(ids)
    rubric = load_rubric(kit / "selfcheck" / "grader_course" / "rubrics" / f"{assignment}.toml")
    question = next(q for q in rubric.questions if q.id == example)
    assert sorted(check for status, check in ROW.findall(one) if status == "PASS") == sorted(c.id for c in question.checks)
    assert f"public checks: {question.points:g}/{question.points:g} points" in one, one
    trained = set(public_checks(kit, assignment, full=True)[0]) - set(public_checks(kit, assignment, full=False)[0])
    if trained:  # it says that it trained on the offline stand-in, not on the real dataset
        assert "Using the offline stand-in" in full, full


def test_the_repository_readmes_student_commands_are_the_kits_which_run_as_written(installed):
    """The repository README's student commands are, in order, commands of the kit's README, which
    test_the_kits_readme_commands_pass_on_a_correct_submission runs as written in the same kit."""
    assignment, kit, venv, home = installed
    commands = readme_student_commands()
    if f"cd {assignment}" not in commands:
        pytest.skip(f"the README's example is another assignment ({commands[1]}); the kit README test covers this one")
    assert commands == ["pip install ./selfcheck", f"cd {assignment}", "mlp-grader check", "mlp-grader check --full"]
    kits = iter(kit_readme_commands(kit))
    assert all(command in kits for command in commands), (commands, kit_readme_commands(kit))  # a subsequence


@pytest.mark.slow
def test_the_repository_readmes_student_commands_work_as_written(installed, tmp_path):
    # slow: the commands are a subsequence of the kit README's, which the default run runs as written
    # (test_the_kits_readme_commands_pass_on_a_correct_submission; the test above checks the order).
    assignment, kit, venv, home = installed
    commands = readme_student_commands()
    if f"cd {assignment}" not in commands:
        pytest.skip(f"the README's example is another assignment ({commands[1]}); the kit README test covers this one")
    work = with_correct_code(kit, assignment, tmp_path / "kit")
    assert commands == ["pip install ./selfcheck", f"cd {assignment}", "mlp-grader check", "mlp-grader check --full"]
    outputs = run_commands(commands, work, _env(venv, home))
    assert len(outputs) == 2 and all("public checks: " in o for o in outputs)


def test_check_cells_run_in_jupyter_installed_by_the_student(installed, tmp_path):
    """The student installs Jupyter's kernel (ipykernel) next to the kit, and runs the check
    cells of the kit's notebook in it: the points of `mlp-grader check` for each question,
    computed in the kit's environment (the kernel is that venv's Python). What this test adds
    to the venv is removed again: the other tests prove the kit alone installs no Jupyter."""
    assignment, kit, venv, home = installed
    if assignment != "pset4":
        pytest.skip("one assignment is enough: tests/test_checkcell.py runs every assignment's cells")
    import nbformat
    from nbclient import NotebookClient

    from grader.notebooks.checkcells import is_check_cell

    work = with_correct_code(kit, assignment, tmp_path / "kit") / assignment
    env = _env(venv, home)
    pip = str(_bin(venv, "pip"))
    before = set(_run([pip, "freeze"], work, env).stdout.split())
    try:
        out = _run([pip, "install", "-q", "ipykernel"], work, env)
        assert out.returncode == 0, out.stderr[-3000:]
        prefix = tmp_path / "jupyter"
        out = _run([str(_bin(venv, "python")), "-m", "ipykernel", "install", "--prefix", str(prefix), "--name", "kit"],
                   work, env)
        assert out.returncode == 0, out.stderr[-3000:]
        template = nbformat.read(work / "pset4.ipynb", as_version=4)
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c.source) for c in template.cells
                    if c.cell_type == "code" and is_check_cell(c.source) and "Q2.2" not in c.source][:3]
        assert [c.source for c in nb.cells[1:]] == ['check("Q2.1")', 'check("Q2.3")']
        nbformat.write(nb, work / "checks.ipynb")
        os.environ["JUPYTER_PATH"] = str(prefix / "share" / "jupyter")  # where the kernelspec "kit" is
        try:
            NotebookClient(nb, timeout=300, kernel_name="kit", resources={"metadata": {"path": str(work)}}).execute(
                env={**env, "JPY_SESSION_NAME": str(work / "checks.ipynb")})
        finally:
            del os.environ["JUPYTER_PATH"]
    finally:
        added = [line.split("==")[0] for line in set(_run([pip, "freeze"], work, env).stdout.split()) - before]
        if added:
            _run([pip, "uninstall", "-q", "-y", *added], work, env)
    texts = ["".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in c.outputs)
             for c in nb.cells]
    assert texts[0] == ""
    assert texts[1].splitlines()[-2] == "public checks: 2/2 points (" + texts[1].splitlines()[-2].split("(")[1]
    assert texts[1].splitlines()[-1] == ("3 points remain to be decided after hand-in (hidden checks 3): passing "
                                         "here does not guarantee them.")
    assert "public checks: 3/3 points" in texts[2]
    assert texts[1].startswith("public checks of Q2.1, on mlp.py as saved on disk at ")
    assert "warning" not in texts[1] + texts[2]
