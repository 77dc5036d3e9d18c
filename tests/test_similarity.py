"""Similarity flags between students (grader/reporting/similarity.py, copydetect underneath): copies with
renamed variables and reordered functions are flagged; independent solutions and untouched
templates are not; the starter code the TA names is boilerplate. No grading: these run on the
fixtures' files directly (the batch wiring is tested in test_summary_browser.py)."""
from __future__ import annotations

import json
import shutil

import pytest

from grader.reporting.similarity import (THRESHOLD, SimilarityReport, analyse_batch, clear, compare, own_code,
                                         starter_texts)

from conftest import FIXTURES, PSET4_FIXTURES, REPO

SIMILARITY = FIXTURES / "similarity"
TEMPLATE = REPO / "student_template" / "pset4"
OWNED = ("mlp.py", "pset4.ipynb")


def _with_template_notebook(tmp_path, name, source):
    """A submission as students hand it in: their mlp.py beside the template's notebook."""
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(source / "mlp.py", folder / "mlp.py")
    shutil.copy(TEMPLATE / "pset4.ipynb", folder / "pset4.ipynb")
    return folder


@pytest.fixture
def batch(tmp_path):
    students = {
        "helen": _with_template_notebook(tmp_path, "helen", PSET4_FIXTURES / "correct_helpers"),
        "connor": _with_template_notebook(tmp_path, "connor", SIMILARITY / "copy_renamed_reordered"),
        "lou": _with_template_notebook(tmp_path, "lou", PSET4_FIXTURES / "correct_loops"),
        "tess": TEMPLATE,
        "tom": TEMPLATE,
    }
    out = tmp_path / "out"
    out.mkdir()
    report = analyse_batch({"pset4": students}, {"pset4": OWNED}, {"pset4": TEMPLATE}, out)
    return report, out


def test_renamed_and_reordered_copy_is_the_only_flagged_pair(batch):
    report, _ = batch
    assert [(p.a, p.b) for p in report.pairs] == [("connor", "helen")]
    pair = report.pairs[0]
    assert pair.score >= 0.9 and min(pair.score_a, pair.score_b) >= 0.9
    assert report.compared == {"pset4": 3}  # the two untouched templates have no code of their own: in no pair


def test_independent_solutions_and_templates_stay_well_below_the_threshold(tmp_path):
    docs = {"helen": own_code(PSET4_FIXTURES / "correct_helpers", OWNED),
            "lou": own_code(PSET4_FIXTURES / "correct_loops", OWNED),
            "tess": own_code(TEMPLATE, OWNED), "tom": own_code(TEMPLATE, OWNED)}
    pairs, _ = compare("pset4", docs, starter_texts([TEMPLATE], OWNED))
    scores = {(p.a, p.b): p.score for p in pairs}
    assert not any(p.flagged for p in pairs)
    assert scores[("helen", "lou")] < 0.2
    assert ("tess", "tom") not in scores  # nothing of their own once the template is removed


def test_without_the_template_as_boilerplate_untouched_templates_would_match(tmp_path):
    """Why the template is always boilerplate: two students who handed in the template alone
    share every line of it."""
    docs = {"tess": own_code(TEMPLATE, OWNED), "tom": own_code(TEMPLATE, OWNED)}
    pairs, _ = compare("pset4", docs, [])
    assert [(p.a, p.b, p.score, p.flagged) for p in pairs] == [("tess", "tom", 1.0, True)]


def test_the_starter_the_students_used_is_boilerplate_too():
    """Both students started from an earlier year's handout (train, predict and two notebook
    helpers given) and wrote loss independently: only with that handout as boilerplate is what
    remains their own code, which shares nothing."""
    docs = {name: own_code(SIMILARITY / name, OWNED) for name in ("older_handout_student_a", "older_handout_student_b")}
    template_only, _ = compare("pset4", docs, starter_texts([TEMPLATE], OWNED))
    with_starter, _ = compare("pset4", docs, starter_texts([TEMPLATE, SIMILARITY / "older_handout"], OWNED))
    assert template_only[0].score > 0.5 and template_only[0].matched_tokens > 500
    assert with_starter[0].score == 0.0 and with_starter[0].matched_tokens == 0


def test_side_by_side_page_marks_the_matching_passages_and_escapes_code(batch):
    report, out = batch
    pair = report.pairs[0]
    page = (out / pair.page).read_text()
    assert page.count("<mark>") >= 3
    assert "run_forward" in page and "_forward" in page  # both students' own names are shown
    assert "<mark>" not in (out / pair.page).read_text().split("<pre>")[0]
    saved = json.loads((out / "similarity.json").read_text())
    assert saved["threshold"] == THRESHOLD and saved["pairs"][0]["page"] == pair.page
    assert SimilarityReport.read(out).pairs[0].score == pair.score


def test_student_code_in_the_side_by_side_view_is_inert(tmp_path):
    evil = (PSET4_FIXTURES / "correct_helpers" / "mlp.py").read_text().replace(
        "        n = X.shape[0]\n", "        n = X.shape[0]\n        note = '</pre><script>alert(1)</script><img src=x onerror=alert(2)>'\n")
    assert "onerror" in evil
    for name in ("ann", "bob"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mlp.py").write_text(evil)
    out = tmp_path / "out"
    out.mkdir()
    report = analyse_batch({"pset4": {"ann": tmp_path / "ann", "bob": tmp_path / "bob"}}, {"pset4": OWNED},
                           {"pset4": TEMPLATE}, out)
    page = (out / report.pairs[0].page).read_text()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_similarity_off_leaves_no_flags_of_an_earlier_run(batch):
    report, out = batch
    assert (out / "similarity.json").is_file() and (out / report.pairs[0].page).is_file()
    clear(out)
    assert SimilarityReport.read(out) is None and not list((out / "similarity").glob("*.html"))
