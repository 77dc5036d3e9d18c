"""The bundled example submissions are copies (a grader reads folders, not links): they must
stay identical to what they are copies of."""
from __future__ import annotations

import pytest

from conftest import FIXTURES, REPO

EXAMPLES = REPO / "examples" / "submissions"
SOURCES = {
    "pset4-reference": REPO / "reference" / "pset4",
    "pset4-template": REPO / "student_template" / "pset4",
    "pset4-bug-np-float": FIXTURES / "pset4" / "bug_np_float",
    "pset4-bug-predict-scores": FIXTURES / "pset4" / "bug_predict_scores",
    "pset4-bug-relu-mask-inverted": FIXTURES / "pset4" / "bug_relu_mask_inverted",
    "modular-reference": REPO / "reference" / "modular",
    "modular-template": REPO / "student_template" / "modular",
    "modular-bug-wd-twice": FIXTURES / "modular" / "bug_wd_twice",
    "modular-flagged-softmax-no-max": FIXTURES / "modular" / "flagged_softmax_no_max",
    "a1-reference": REPO / "reference" / "a1",
    "a1-template": REPO / "student_template" / "a1",
}


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_example_is_a_faithful_copy(name):
    assert name in SOURCES, f"examples/submissions/{name}: add its source to SOURCES"
    example, source = files(EXAMPLES / name), files(SOURCES[name])
    for rel, data in example.items():
        if rel in source:
            assert data == source[rel], f"{name}/{rel} differs from {SOURCES[name] / rel}"
    # a bug example may add the template notebook; nothing of the source may be missing
    assert set(source) - set(example) <= {"handout_checks.py"}, name
