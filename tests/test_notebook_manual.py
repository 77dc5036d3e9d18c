"""manual.csv: written for a class, filled by a TA, validated (every problem listed, nothing
merged), merged into results, reports and the gradebook."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.errors import GraderError
from grader.reporting.manual import COLUMNS, merge_manual, merge_manual_folder, read_manual_csv, write_manual_csv
from grader.reporting.gradebooks import write_gradebook
from grader.reporting.report import write_report
from grader.results import CheckResult, QuestionResult, Result


def result(name: str, auto: float = 40.0) -> Result:
    return Result(name, "pset4", [
        QuestionResult("Q2.1", "Forward pass", 50, False, auto,
                       [CheckResult("c", "Q2.1", "c", auto, 50, "partial", "m")]),
        QuestionResult("Q3.1", "L2", 10, True, None, model_answer="θ − η(g + 2λθ)", answer="θ − η(g + 2λθ)",
                       answer_state="answered"),
        QuestionResult("Q3.2", "L1", 10, True, None, model_answer="θ − η(g + λ sign θ)", answer="θ − η(g + λ)",
                       answer_state="answered", flags=["the answer does not mention sign(θ)"]),
    ])


@pytest.fixture
def results() -> list[Result]:
    return [result("alice"), result("bob", 30.0)]


def fill(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([list(COLUMNS), *rows])
    return path


def test_written_for_a_class_with_empty_scores(results, tmp_path):
    path = write_manual_csv(results, tmp_path / "manual.csv")
    rows = list(csv.reader(path.open()))
    assert rows[0] == list(COLUMNS)
    assert rows[1:] == [["alice", "Q3.1", "10", "", ""], ["alice", "Q3.2", "10", "", ""],
                        ["bob", "Q3.1", "10", "", ""], ["bob", "Q3.2", "10", "", ""]]


def test_round_trip_merges_scores_and_comments_into_totals_reports_and_gradebook(results, tmp_path):
    path = write_manual_csv(results, tmp_path / "manual.csv")
    rows = list(csv.reader(path.open()))
    rows[1][3], rows[2][3], rows[2][4] = "10", "4.5", "no sign(θ): partial credit"
    rows[3][3] = ""  # bob Q3.1 not graded yet
    rows[4][3], rows[4][4] = "0", "blank"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    merged = merge_manual(results, path)
    alice, bob = merged
    assert [q.points for q in alice.questions] == [40.0, 10.0, 4.5]
    assert alice.questions[2].comment == "no sign(θ): partial credit"
    assert alice.total_points == 54.5 and alice.autograded_points == 40.0
    assert bob.questions[1].points is None and bob.questions[2].points == 0.0 and bob.total_points == 30.0
    assert results[0].questions[1].points is None  # the input is not modified
    book = write_gradebook(merged, tmp_path / "gradebook.csv")
    table = {r[0]: r for r in csv.reader(book.open())}
    header = next(csv.reader(book.open()))
    assert table["alice"][header.index("Q3.2")] == "4.5" and table["alice"][header.index("total")] == "54.5"
    report = write_report(alice, tmp_path / "alice").read_text()
    assert "no sign(θ): partial credit" in report and "4.5 / 10" in report
    # writing the file again keeps what was merged
    again = write_manual_csv(merged, tmp_path / "again.csv")
    assert list(csv.reader(again.open()))[2] == ["alice", "Q3.2", "10", "4.5", "no sign(θ): partial credit"]


def test_every_problem_is_listed_and_nothing_is_merged(results, tmp_path):
    path = fill(tmp_path / "manual.csv", [
        ["alice", "Q3.1", "10", "11", ""],  # above the maximum
        ["alcie", "Q3.2", "10", "5", ""],  # unknown student (typo)
        ["bob", "Q3.3", "10", "5", ""],  # unknown question
        ["bob", "Q2.1", "50", "50", ""],  # autograded question
        ["bob", "Q3.1", "10", "-1", ""],  # negative
        ["bob", "Q3.2", "10", "seven", ""],  # not a number
        ["alice", "Q3.1", "10", "3", ""],  # twice
        ["alice", "Q3.2", "5", "2,5", ""],  # max_points differs; decimal comma
    ])
    with pytest.raises(GraderError) as err:
        merge_manual(results, path)
    message = str(err.value)
    assert "9 problems, nothing merged" in message
    for needle in ("line 2: score 11 for alice Q3.1 is above the maximum 10",
                   "line 3: unknown student 'alcie' (did you mean 'alice'?)",
                   "line 4: unknown question 'Q3.3' for bob (written questions of pset4: Q3.1, Q3.2)",
                   "line 5: Q2.1 is autograded",
                   "line 6: score -1 for bob Q3.1 is negative",
                   "line 7: score 'seven' for bob Q3.2 is not a number",
                   "line 8: alice Q3.1 appears twice (also line 2)",
                   "line 9: max_points '5' for Q3.2 differs from the rubric's 10",
                   "line 9: score '2,5' for alice Q3.2 is not a number (use a dot as decimal separator)"):
        assert needle in message, needle
    assert all(q.points is None for r in results for q in r.questions if q.manual)


def test_unusable_files(results, tmp_path):
    (tmp_path / "bad.csv").write_text("name,grade\nalice,5\n")
    with pytest.raises(GraderError, match="missing column"):
        merge_manual(results, tmp_path / "bad.csv")
    with pytest.raises(GraderError, match="cannot read"):
        merge_manual(results, tmp_path / "nothing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(GraderError, match="empty"):
        merge_manual(results, tmp_path / "empty.csv")


def test_spreadsheet_export_with_bom_semicolons_and_extra_columns(results, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("\ufeffstudent;question;max_points;score;comment;note\nalice;Q3.1;10;8;ok;x\n\n", encoding="utf-8")
    rows = read_manual_csv(path)
    assert [(r.student, r.question, r.score, r.line) for r in rows] == [("alice", "Q3.1", "8", 2)]
    assert merge_manual(results, path)[0].questions[1].points == 8.0


def test_merge_into_a_graded_folder(results, tmp_path):
    out = tmp_path / "out"
    for r in results:
        r.write_json(out / r.submission / "result.json")
    path = fill(tmp_path / "manual.csv", [["bob", "Q3.2", "10", "7", "fine"]])
    merged = merge_manual_folder(out, path)
    assert Result.read_json(out / "bob" / "result.json").questions[2].points == 7.0
    assert "fine" in (out / "bob" / "report.html").read_text()
    assert [r.submission for r in merged] == ["alice", "bob"]
    bad = fill(tmp_path / "bad.csv", [["zoe", "Q3.2", "10", "7", ""]])
    with pytest.raises(GraderError, match="unknown student 'zoe'"):
        merge_manual_folder(out, bad)
    assert Result.read_json(out / "bob" / "result.json").questions[2].points == 7.0


def test_a_filled_manual_csv_is_never_overwritten(results, tmp_path):
    path = fill(tmp_path / "manual.csv", [["alice", "Q3.1", "10", "8", "good"]])
    written = write_manual_csv(results, path)  # graded again without --manual
    assert written.name == "manual.new.csv" and "good" in path.read_text()
    merged = merge_manual(results, path)
    assert write_manual_csv(merged, path) == path  # after the merge nothing is lost
    assert list(csv.reader(path.open()))[1] == ["alice", "Q3.1", "10", "8", "good"]


# ---------------------------------------------------------------- CSV injection

FORMULAS = ['=HYPERLINK("http://127.0.0.1/x","click")', "+SUM(1,2)", "-2+3", "@cmd", "\tTAB", "\rCR", "'=quoted"]


def test_no_csv_the_grader_writes_starts_a_formula_and_numbers_stay_numbers(tmp_path):
    """Student names that a spreadsheet would run (`=HYPERLINK(...)`, `+SUM`, `-2+3`, `@cmd`, a
    leading tab or carriage return) are written as text with a leading quote, in the gradebook,
    Canvas's import and the manual sheet; negative scores stay numbers."""
    from grader.reporting.gradebooks import write_canvas_gradebook

    results = [result(name, auto=-2.5 if name == "-2+3" else 40.0) for name in FORMULAS] + [result("-2")]
    gradebook = write_gradebook(results, tmp_path / "gradebook.csv")
    canvas = write_canvas_gradebook(results, {r.submission: "12345" for r in results}, tmp_path / "canvas.csv", "pset4")
    manual = write_manual_csv(results, tmp_path / "manual.csv")
    for path in (gradebook, canvas, manual):
        rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
        names = {row[0] for row in rows[1:]} - {"Points Possible"}
        assert names == {"'" + name for name in FORMULAS} | {"-2"}, path.name
        for row in rows:
            for cell in row:
                assert not cell or cell[0] not in "=+-@\t\r" or cell == "-2" or float(cell) < 0, (path.name, cell)
    negative = next(row for row in csv.reader(gradebook.open()) if row[0] == "'-2+3")
    assert negative[1] == "-2.5" and float(negative[-3]) == -2.5  # Q2.1 and the autograded total: numbers


def test_the_manual_sheet_reads_back_what_it_wrote_for_such_names(tmp_path):
    results = [result(name) for name in FORMULAS]
    path = write_manual_csv(results, tmp_path / "manual.csv")
    rows = list(csv.reader(path.open(newline="", encoding="utf-8")))
    for row in rows[1:]:
        row[3], row[4] = "7", "=1+1 is not a formula here"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    merged = merge_manual(results, path)
    assert [r.submission for r in merged] == FORMULAS
    assert all(q.points == 7 and q.comment == "=1+1 is not a formula here" for r in merged for q in r.questions if q.manual)
    again = list(csv.reader(write_manual_csv(merged, tmp_path / "manual.csv").open(newline="", encoding="utf-8")))
    assert {row[4] for row in again[1:]} == {"'=1+1 is not a formula here"}
