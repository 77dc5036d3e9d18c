"""The Canvas import CSV on its own: identity columns, the total, and what is left out."""
from __future__ import annotations

import csv

from grader.reporting.gradebooks import read_identities, write_canvas_gradebook, write_identities
from grader.results import QuestionResult, Result


def _result(name: str, auto: float, written: float | None, error: str = "") -> Result:
    return Result(name, "pset4", [QuestionResult("Q2.1", "sigmoid forward", 50, False, auto),
                                  QuestionResult("Q3.1", "L2 update", 50, True, written)], error=error)


def test_total_includes_hand_grading_and_a_failed_grading_is_left_blank_not_zero(tmp_path):
    ids = {"alice": "1001", "bob": "1002", "eve": "1003"}
    write_identities(ids, tmp_path)
    assert read_identities(tmp_path) == ids
    results = [_result("bob", 12.5, None), _result("alice", 40, 7.25), _result("eve", 0, None, error="bad zip"),
               _result("zed", 50, 50)]  # zed has no Canvas id (a folder beside the export): not imported
    path = write_canvas_gradebook(results, read_identities(tmp_path), tmp_path / "canvas.csv", "pset4")
    assert list(csv.reader(path.open(encoding="utf-8"))) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "pset4"],
        ["Points Possible", "", "", "", "", "100"],
        ["alice", "1001", "", "", "", "47.25"],
        ["bob", "1002", "", "", "", "12.5"],
        ["eve", "1003", "", "", "", ""],
    ]


def test_a_batch_without_canvas_files_has_no_identities(tmp_path):
    write_identities({"alice": "1"}, tmp_path)
    write_identities({}, tmp_path)  # a later run of a plain folder removes the stale file
    assert read_identities(tmp_path) == {}
