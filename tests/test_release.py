"""The student kit: it self-checks with the same engine and gives nothing away.

The leak test searches every file of the kit (archives included) for the reference's solution
lines, the model answers, the hidden checks and the reference's outputs on hidden inputs; the
kit's own environment cannot import the reference; and the kit and the full grader give the
same points on every public check."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from grader.grading.engine import GradeOptions, Grader
from grader.delivery.release import build_kit
from grader.rubric import load_rubric
from grader.sandbox import build_site_view
from grader.regions import ANSWER, BEGIN, END, STUB

from conftest import FIXTURES, PSET4_FIXTURES, REPO

ASSIGNMENTS = ("pset4", "modular", "a1")


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def kit(request, tmp_path_factory):
    return request.param, build_kit(request.param, tmp_path_factory.mktemp("kit") / "kit")


def kit_texts(folder: Path) -> dict[str, str]:
    """Every file of the kit as text, with the members of any archive in it."""
    texts = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        texts[str(path)] = data.decode("utf-8", "replace")
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for name in zf.namelist():
                    texts[f"{path}!{name}"] = zf.read(name).decode("utf-8", "replace")
        elif path.suffix in (".gz", ".tar", ".tgz"):
            with tarfile.open(path) as tf:
                for member in tf.getmembers():
                    if member.isfile():
                        texts[f"{path}!{member.name}"] = tf.extractfile(member).read().decode("utf-8", "replace")
    return texts


def solution_lines(assignment: str) -> set[str]:
    """Distinctive lines inside the reference's solution regions and model answers: those the
    student template does not contain anyway (like the activation dispatch it keeps)."""
    lines = set()
    for path in (REPO / "reference" / assignment).rglob("*"):
        if not path.is_file() or path.suffix not in (".py", ".ipynb"):
            continue
        text = path.read_text()
        if path.suffix == ".ipynb":
            import nbformat

            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(c.source for c in nb.cells)
            for block in ANSWER.findall(text):
                lines |= {ln.strip() for ln in block.splitlines()[1:-1] if len(ln.strip()) >= 20}
        inside = False
        for line in text.splitlines():
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif inside and not STUB.match(line) and len(line.strip()) >= 20 and not line.strip().startswith("#"):
                lines.add(line.strip())
    template = "\n".join(p.read_text() for p in (REPO / "student_template" / assignment).rglob("*") if p.is_file())
    return {line for line in lines if line not in template}


def test_kit_holds_the_template_the_course_files_and_an_installable_selfcheck(kit):
    assignment, built = kit
    rubric = load_rubric(REPO / "rubrics" / f"{assignment}.toml")
    for rel in rubric.owned + rubric.provided:
        assert (built.folder / assignment / rel).read_bytes() == (REPO / "student_template" / assignment / rel).read_bytes()
    assert (built.folder / "selfcheck" / "pyproject.toml").is_file()
    assert "pip install ./selfcheck" in (built.folder / "README.md").read_text()


def test_no_solution_code_or_model_answer_in_any_file(kit):
    assignment, built = kit
    texts = kit_texts(built.folder)
    secrets = solution_lines(assignment)
    assert len(secrets) > 10
    for line in secrets:
        for name, text in texts.items():
            assert line not in text, f"solution line {line!r} leaked into {name}"
    for q in load_rubric(REPO / "rubrics" / f"{assignment}.toml").questions:
        if q.model_answer:
            assert all(q.model_answer not in t for t in texts.values()), q.id


def test_no_hidden_check_and_no_reference_output_in_any_file(kit):
    assignment, built = kit
    texts = "\n".join(kit_texts(built.folder).values())
    rubric = load_rubric(REPO / "rubrics" / f"{assignment}.toml")
    hidden = [c for c in rubric.checks() if not c.public]
    assert hidden
    kit_rubric = load_rubric(built.folder / "selfcheck" / "grader_course" / "rubrics" / f"{assignment}.toml")
    assert {(c.visibility, c.detail_level) for c in kit_rubric.checks()} == {("visible", "full")}
    for check in hidden:
        assert check.id not in texts
        for case in check.params.get("cases", []):
            assert f"seed = {case['seed']}" not in texts and f'"seed" = {case["seed"]}' not in texts
    # The reference's own outputs on the hidden inputs, as the grader computes them.
    with Grader(assignment, GradeOptions(sandbox="process", skip_data=True)) as grader:
        ctx = grader.context(None)
        plans = {c.id: grader.kinds[c.kind].plan(c, ctx) for c in hidden}
        outputs = grader._reference_outputs(hidden, plans, ctx)
    values = [float(a.reshape(-1)[0]) for o in outputs.values() for a in o.arrays.values() if a.size == 1]
    # and every element of small arrays (a1's hidden checks return vectors) with digits enough to
    # be distinctive
    values += [float(v) for o in outputs.values() for a in o.arrays.values() if 1 < a.size <= 64
               for v in a.ravel() if len(repr(float(v))) >= 12]
    assert values
    for value in values:
        for text in (repr(value), f"{value:.8f}"):
            assert text not in texts, f"hidden reference output {text} found in the kit"


def kit_python(built, code: str, cwd: Path, tmp: Path) -> subprocess.CompletedProcess:
    """Run code with the kit's packages and the third-party packages, but not the repository's
    grader (nor an editable install of it) on the import path."""
    view = build_site_view(tmp / "site")[0]
    prelude = f"import site, sys; site.addsitedir({view!r}); sys.path.insert(0, {str(built.folder / 'selfcheck')!r})\n"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp)}
    return subprocess.run([sys.executable, "-S", "-c", prelude + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_reference_is_not_importable_from_the_kit(kit, tmp_path):
    assignment, built = kit
    out = kit_python(built, "import grader, grader_course, importlib.util\n"
                            "print(grader.__file__)\n"
                            "print(importlib.util.find_spec('grader_course.reference'))\n"
                            "from grader.course import find_course\n"
                            "print(find_course().root_reference)\n", tmp_path, tmp_path)
    assert out.returncode == 0, out.stderr
    grader_file, spec, reference_root = out.stdout.split()
    assert grader_file.startswith(str(built.folder))
    assert spec == "None"
    assert reference_root.endswith("grader_course/public")


# The default run: one pset4 and one a1 submission; the other two pset4 ones repeat the comparison (slow)
@pytest.mark.parametrize("assignment, fixture", [
    pytest.param("pset4", PSET4_FIXTURES / "correct_helpers", marks=pytest.mark.slow),
    ("pset4", PSET4_FIXTURES / "bug_missing_reg"),
    pytest.param("pset4", PSET4_FIXTURES / "bug_sigmoid_derivative", marks=pytest.mark.slow),
    ("a1", FIXTURES / "a1" / "bug_relu_derivative"),
], ids=lambda v: getattr(v, "name", v))
def test_kit_and_full_grader_agree_on_every_public_check(tmp_path_factory, shared_graders, assignment, fixture):
    built = build_kit(assignment, tmp_path_factory.mktemp("kit") / "kit")
    tmp = tmp_path_factory.mktemp("run")
    code = ("import json\nfrom pathlib import Path\nfrom grader.api import grade_submission\n"
            "from grader.grading.engine import GradeOptions\n"
            f"r = grade_submission(Path({str(fixture)!r}), {assignment!r}, "
            "GradeOptions(sandbox='process', dataset='digits', public_only=True))\n"
            "print(json.dumps({c.id: [c.points, c.message] for c in r.checks()}))\n")
    out = kit_python(built, code, tmp, tmp)
    assert out.returncode == 0, out.stderr
    from_kit = json.loads(out.stdout.strip().splitlines()[-1])
    full = {c.id: [c.points, c.message] for c in shared_graders(assignment).grade(fixture).checks()
            if c.public}
    assert from_kit == full
