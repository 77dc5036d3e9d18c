from __future__ import annotations

import pytest

from grader.errors import RubricError
from grader.rubric import load_rubric

from conftest import REPO


def test_pset4_rubric_adds_up_to_100_with_the_handout_split():
    rubric = load_rubric(REPO / "rubrics" / "pset4.toml")
    points = {q.id: q.points for q in rubric.questions}
    assert rubric.total_points == 100
    assert sum(points[q] for q in points if q.startswith("Q1.")) == 30
    assert sum(points[q] for q in points if q.startswith("Q2.")) == 50
    assert points["Q3.1"] == points["Q3.2"] == 10
    assert [q.id for q in rubric.questions if q.manual] == ["Q1.1", "Q1.2", "Q1.3", "Q1.4", "Q1.5", "Q1.6",
                                                            "Q2.5.3", "Q3.1", "Q3.2"]
    assert all(q.model_answer for q in rubric.questions if q.manual)


def test_stale_handout_value_is_never_expected():
    text = (REPO / "rubrics" / "pset4.toml").read_text()
    rubric = load_rubric(REPO / "rubrics" / "pset4.toml")
    assert all(c.params.get("expected") != 1.320973 for c in rubric.checks())
    relu = next(c for c in rubric.checks() if c.id == "relu_toy_loss")
    assert relu.params["expected"] == 1.3037878913298206
    assert "1.320973" in text  # only in the comment that explains why it is not used


def write(tmp_path, body: str):
    path = tmp_path / "r.toml"
    path.write_text('[assignment]\nid = "x"\ntotal_points = 5\n' + body)
    return path


def test_points_that_do_not_add_up_are_rejected(tmp_path):
    path = write(tmp_path, '[[questions]]\nid = "Q1"\npoints = 5\n[[questions.checks]]\nid = "c"\n'
                           'kind = "k"\npoints = 3\n')
    with pytest.raises(RubricError, match="checks add up to 3.0, question has 5.0"):
        load_rubric(path)


def test_bad_visibility_and_duplicates_are_rejected(tmp_path):
    path = write(tmp_path, '[[questions]]\nid = "Q1"\npoints = 5\n'
                           '[[questions.checks]]\nid = "c"\nkind = "k"\npoints = 2\nvisibility = "secret"\n'
                           '[[questions.checks]]\nid = "c"\nkind = "k"\npoints = 3\n')
    with pytest.raises(RubricError, match="visibility must be one of.*duplicate check id c"):
        load_rubric(path)


def test_not_toml_and_missing_file_are_clear(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(RubricError, match="not valid TOML"):
        load_rubric(bad)
    with pytest.raises(RubricError, match="not found"):
        load_rubric(tmp_path / "missing.toml")


def checks_of(tmp_path, *tables: str):
    body = '[[questions]]\nid = "Q1"\npoints = 5\n' + "".join(
        f'[[questions.checks]]\nid = "c{i}"\nkind = "k"\npoints = 1\n{t}\n' for i, t in enumerate(tables))
    return [(c.visibility, c.detail_level, c.public, c.student_message) for c in load_rubric(write(tmp_path, body)).checks()]


def test_old_public_and_hidden_keep_their_meaning(tmp_path):
    assert checks_of(tmp_path, "", 'visibility = "public"', 'visibility = "hidden"', 'visibility = "hidden"',
                     'visibility = "public"') == [
        ("visible", "full", True, ""), ("visible", "full", True, ""), ("after_published", "outcome", False, ""),
        ("after_published", "outcome", False, ""), ("visible", "full", True, "")]
    a1 = {c.id: c.visibility for c in load_rubric(REPO / "rubrics" / "a1.toml").checks()}
    assert a1["output_hidden"] == "after_published" and a1["output_handout"] == "visible"


def test_the_levels_details_and_the_hint(tmp_path):
    got = checks_of(tmp_path, 'visibility = "visible"', 'visibility = "visible"\ndetails = "outcome"',
                    'visibility = "after_due_date"', 'visibility = "after_published"\ndetails = "full"',
                    'visibility = "hidden"\nstudent_message = "the loss ignores the regularisation term"')
    assert got == [("visible", "full", True, ""), ("visible", "outcome", False, ""),
                   ("after_due_date", "outcome", False, ""), ("after_published", "full", False, ""),
                   ("hidden", "outcome", False, "the loss ignores the regularisation term")]
    rubric = load_rubric(write(tmp_path, '[[questions]]\nid = "Q1"\npoints = 5\n[[questions.checks]]\nid = "c"\n'
                                         'kind = "k"\npoints = 5\nstudent_message = "hint"\ndetails = "full"\n'))
    assert rubric.checks()[0].params == {}  # neither is a parameter of the kind


def test_bad_details_are_rejected(tmp_path):
    with pytest.raises(RubricError, match=r"check c0: details must be one of \('full', 'outcome'\)"):
        checks_of(tmp_path, 'details = "some"')
