"""Students' feedback pages (grader/delivery/feedback.py): what each stage shows, checked with
canaries. One small Canvas export of a1 is graded once for the module (`--execute none`) with a
copy of a1's rubric that plants canary strings where a student must never (or only at some
stage) see them: in the parameters of checks that are not shown in full, in a check's hint, in a
model answer, in the TA's flags and notes, and in another student's name. Every stage's pages
are then searched byte for byte (attributes, comments and embedded data included)."""
from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import zipfile

import pytest

from grader import api
from grader.cli import main
from grader.delivery.feedback import STAGES, embedded_figures, read_results, student_text, student_view
from grader.errors import GraderError
from grader.files import SpreadsheetSafeWriter
from grader.results import CheckResult, QuestionResult, Result

from conftest import FIXTURES, REPO, notebook_with_answer

A1 = FIXTURES / "a1"
OTHER = "zzcanaryother"  # another student: never on alice's page
CANARIES = {
    # an outcome-only check's expected value (after_published, details = "outcome"): never shown
    "outcome_value": "8.3141592",
    # the hint of that check (student_message): shown once grades are published
    "hint": "CANARY-HINT-5501",
    # a check shown in full from the due date on: its expected value from after-due on
    "full_value": "8.2718281",
    # the title of a `hidden` check: never shown
    "hidden_title": "CANARY-HIDDEN-TITLE-7781",
    # a parameter of an outcome-only check that its full message quotes (`on`)
    "hidden_param": "CANARY-ON-9931",
    # a model answer: published and asked for only
    "model": "CANARY-MODEL-4242",
    # the TA's flags and notes: never
    "ta_flag": "CANARY-TA-FLAG-3141",
    "ta_note": "CANARY-TA-NOTE-2718",
    "question_flag": "CANARY-Q-FLAG-1618",
    "other_student": OTHER,
}
# stage (with --model-answers at the published stage: "published+model") -> the canaries shown
SHOWN = {
    "before-due": set(),
    "after-due": {"full_value"},
    "published": {"full_value", "hint"},
    "published+model": {"full_value", "hint", "model"},
}


def canary_rubric() -> str:
    text = (REPO / "rubrics" / "a1.toml").read_text()

    def check_block(check_id: str) -> tuple[int, int]:
        start = text.index(f'id = "{check_id}"')
        end = text.find("[[questions", start)
        return start, end if end != -1 else len(text)

    def edit(check_id: str, old: str, new: str) -> None:
        nonlocal text
        start, end = check_block(check_id)
        block = text[start:end]
        assert old in block, (check_id, old)
        text = text[:start] + block.replace(old, new, 1) + text[end:]

    edit("fit_dataset_1", 'visibility = "hidden"', 'visibility = "after_published"\n  details = "outcome"\n'
         f'  student_message = "{CANARIES["hint"]}: where does each kink sit?"')
    edit("fit_dataset_1", "2, 4, 6, 8]", f"2, 4, 6, {CANARIES['outcome_value']}]")
    edit("fit_dataset_2", 'visibility = "hidden"', 'visibility = "after_due_date"\n  details = "full"')
    edit("fit_dataset_2", "5, 6, 7, 8]", f"5, 6, 7, {CANARIES['full_value']}]")
    edit("output_hidden", 'title = "forward on hidden parameters and inputs"',
         f'title = "{CANARIES["hidden_title"]} forward"')
    edit("loss_grad_hidden", 'visibility = "hidden"',
         f'visibility = "after_published"\n  on = "on {CANARIES["hidden_param"]} inputs"')
    start = text.index('id = "P1A"')
    model = text.index('model_answer = "', start) + len('model_answer = "')
    text = text[:model] + CANARIES["model"] + " " + text[model:]
    return text


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "rubrics").mkdir()
    (root / "rubrics" / "a1.toml").write_text(canary_rubric())
    (root / "reference").symlink_to(REPO / "reference")
    (root / "student_template").symlink_to(REPO / "student_template")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLP_GRADER_COURSE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """alice (forward forgets its bias) and zzcanaryother (correct) in a Canvas export, carol
    (crashes at import) as a plain folder beside them; manual.csv filled in for alice."""
    export = tmp_path_factory.mktemp("export")
    shutil.copy(A1 / "bug_forward_no_output_bias" / "a1.py", export / "alice_1001_9001_a1.py")
    (export / "alice_1001_9002_a1.ipynb").write_text(notebook_with_answer(
        REPO / "student_template" / "a1" / "a1.ipynb", "### P1A", "$\\nabla F = 2x$, since each $x_i^2$ gives $2x_i$."))
    shutil.copy(A1 / "correct_loops" / "a1.py", export / f"{OTHER}_LATE_1002_9003_a1.py")
    (export / "carol").mkdir()
    shutil.copy(A1 / "bug_crash_at_import" / "a1.py", export / "carol" / "a1.py")
    out = tmp_path_factory.mktemp("out")
    assert main(["grade", str(export), "--out", str(out), "--assignment", "a1", "--execute", "none",
                 "--dataset", "digits", "--sandbox", "process", "--similarity", "on"]) == 0
    # the TA's notes and flags (what a TA's report shows beside the checks)
    path = out / "alice" / "result.json"
    alice = Result.read_json(path)
    alice.flags.append(f"{CANARIES['ta_flag']}: looks like {OTHER}'s code")
    alice.notes.append(CANARIES["ta_note"])
    next(q for q in alice.questions if q.id == "P1A").flags.append(CANARIES["question_flag"])
    alice.write_json(path)
    rows = list(csv.reader((out / "manual.csv").open()))
    with (out / "manual.csv").open("w", newline="") as fh:
        writer = SpreadsheetSafeWriter(fh)
        for row in rows:
            if row[:2] == ["alice", "P1A"]:
                row[3:5] = ["1.5", '<script>alert("x")</script> =HYPERLINK("http://x") right idea, say why 2x']
            if row[:2] == ["alice", "P1B"]:  # a comment a spreadsheet would take for a formula
                row[3:5] = ["2", "=1+1 is not the mean, see lecture 2"]
            writer.writerow(row)
    return out


@pytest.fixture(scope="module")
def pages(graded, tmp_path_factory):
    """stage (and published+model) -> the folder of its pages."""
    made = {}
    for stage in STAGES:
        made[stage] = tmp_path_factory.mktemp(stage) / "feedback"
        api.write_feedback(graded, made[stage], stage)
    made["published+model"] = tmp_path_factory.mktemp("model") / "feedback"
    api.write_feedback(graded, made["published+model"], "published", model_answers=True)
    return made


def page_bytes(html: bytes) -> bytes:
    """The page and every data: URI in it, decoded (what an embedded figure carries)."""
    decoded = [base64.b64decode(m) for m in re.findall(rb"data:[\w/+.-]+;base64,([A-Za-z0-9+/=]+)", html)]
    return b"\n".join([html, *decoded])


def test_the_canaries_are_in_the_tas_report_so_the_leak_test_can_fail(graded):
    report = (graded / "alice" / "report.html").read_text() + (graded / "alice" / "result.json").read_text()
    for name, canary in CANARIES.items():
        assert canary in report, name


@pytest.mark.parametrize("stage", list(SHOWN))
def test_each_stage_shows_exactly_its_canaries(pages, stage):
    alice = page_bytes((pages[stage] / "alice.html").read_bytes())
    shown = {name for name, canary in CANARIES.items() if canary.encode() in alice}
    assert shown == SHOWN[stage]
    for page in pages[stage].glob("*.html"):
        data = page_bytes(page.read_bytes())
        for canary in ("ta_flag", "ta_note", "question_flag", "hidden_title", "hidden_param", "outcome_value"):
            assert CANARIES[canary].encode() not in data, (page.name, canary)
        # no other student and no path of the grading machine on anybody's page
        others = {"alice", OTHER, "carol"} - {page.stem}
        assert not [o for o in others if o.encode() in data], page.name
        assert b"/tmp/" not in data and str(REPO).encode() not in data and b"Traceback" not in data, page.name


def test_what_the_published_page_says(pages):
    html = (pages["published"] / "alice.html").read_text()
    # the public check in full; the outcome-only one by its kind's safe words and the hint
    assert "forward(x, theta) at x = 2 with the handout&#39;s parameters: it gives -4; expected -3" in html
    assert ("FIT_1, evaluated with the reference&#39;s forward, misses 1 of 13 targets</p>" in html
            and f"Hint: {CANARIES['hint']}: where does each kink sit?" in html)
    assert ("loss_grad(theta, x, y) on hidden inputs: it differs (wrong: w3, w4, b3, b4, w7, w8, b0): "
            "off by a constant factor of") in html
    # the TA's score and comment, escaped; the written answer as the student wrote it
    assert "1.5 / 10" in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; =HYPERLINK(" in html
    assert "<script" not in html and "<math" in html
    assert '<p class="comment">=1+1 is not the mean, see lecture 2</p>' in html
    # hidden checks: counted in the total, never itemised
    assert "10 points come from checks that are not shown; their points are in the total." in html
    assert html.count("1 check not shown: 0 / 5 points.") == 2  # P3B_code, P3C


def test_before_the_due_date_the_page_says_what_is_still_to_be_decided(pages, graded):
    html = (pages["before-due"] / "alice.html").read_text()
    result = Result.read_json(graded / "alice" / "result.json")
    later = sum(c.max_points for c in result.checks() if c.visibility != "visible")
    manual = sum(q.max_points for q in result.questions if q.manual)
    assert f"{later:g} points are still to be decided by checks not shown yet." in html
    assert f"{manual:g} points are still to be decided by hand (the written answers)." in html
    assert "all tests passed" not in html.lower() and "Total:" not in html
    shown = [c for c in result.checks() if c.visibility == "visible"]
    assert (f"Checks shown so far: <strong>{sum(c.points for c in shown):g} / {sum(c.max_points for c in shown):g}"
            in html)
    assert "1.5 / 10" not in html and "right idea" not in html and "lecture 2" not in html  # once published


def test_index_csv_and_the_canvas_zip(pages, graded):
    folder = pages["published"]
    rows = list(csv.reader((folder / "index.csv").open()))
    totals = {r.submission: r.total_points for r in read_results(graded).values()}
    assert rows[0] == ["student", "file", "total"]
    assert rows[1:] == [["alice", "alice.html", f"{totals['alice'] + 3.5:g}"], ["carol", "carol.html", "0"],
                        [OTHER, f"{OTHER}.html", f"{totals[OTHER]:g}"]]
    with zipfile.ZipFile(folder / "canvas-feedback.zip") as zf:
        assert sorted(zf.namelist()) == ["alice_1001_9001_feedback.html", f"{OTHER}_LATE_1002_9003_feedback.html"]
        assert zf.read("alice_1001_9001_feedback.html") == (folder / "alice.html").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["alice.html", "carol.html", f"{OTHER}.html", "index.csv", "canvas-feedback.zip"])


def test_the_cli_lists_the_student_the_canvas_export_does_not_name(graded, tmp_path, capsys):
    assert main(["feedback", str(graded), "--to", str(tmp_path / "fb"), "--stage", "after-due"]) == 0
    out = capsys.readouterr().out
    assert "3 feedback pages (after-due)" in out and "(TA scores and comments from manual.csv)" in out
    assert "not in the Canvas export, so not in the zip: carol" in out


def test_the_crashed_submission_gets_its_error_without_the_traceback(pages):
    html = (pages["published"] / "carol.html").read_text()
    assert "could not be imported: NameError: name &#39;params&#39; is not defined (a1.py, line 17)" in html


def test_bad_input_is_one_line_and_writes_nothing(graded, tmp_path):
    target = tmp_path / "fb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(GraderError, match=r"empty is not a grading output \(no empty/<student>/result.json\)"):
        api.write_feedback(tmp_path / "empty", target)
    old = tmp_path / "old-out"
    shutil.copytree(graded, old)
    data = json.loads((old / "carol" / "result.json").read_text())
    data["schema_version"] = 2
    (old / "carol" / "result.json").write_text(json.dumps(data))
    with pytest.raises(GraderError, match=r"carol/result.json: result.json of schema version 2, older than "
                                          r"the version 3 feedback pages need"):
        api.write_feedback(old, target)
    (old / "carol" / "result.json").write_text("{not json")
    with pytest.raises(GraderError, match="carol/result.json: not a readable result.json"):
        api.write_feedback(old, target)
    assert not target.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".fb")]
    with pytest.raises(GraderError, match="overlaps the grading output"):
        api.write_feedback(graded, graded / "alice")
    with pytest.raises(GraderError, match="model answers are shown at the published stage only"):
        api.write_feedback(graded, target, "after-due", model_answers=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    with pytest.raises(GraderError, match="holds more than feedback pages"):
        api.write_feedback(graded, tmp_path / "mine")


def test_a_second_run_replaces_the_pages_at_once(graded, tmp_path):
    target = tmp_path / "fb"
    api.write_feedback(graded, target, "before-due")
    assert "Total:" not in (target / "alice.html").read_text()
    api.write_feedback(graded, target, "published")
    assert "Total:" in (target / "alice.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fb"]


def test_student_text_per_details_and_the_hint():
    full = CheckResult("c", "Q", "t", 0, 1, "failed", "f(x) gives 3; expected 4", "visible",
                       student_message="mind the sign")
    outcome = CheckResult("c", "Q", "t", 0, 1, "failed", "f(x) gives 3; expected 4", "after_due_date",
                          detail_level="outcome", safe_message="f(x) on hidden inputs: the sign is flipped")
    assert student_text(full) == "f(x) gives 3; expected 4\nHint: mind the sign"
    assert student_text(outcome) == "f(x) on hidden inputs: the sign is flipped"
    old = {"schema_version": 2, "submission": "s", "assignment": "a", "questions": [
        {"id": "Q", "title": "Q", "max_points": 2, "manual": False, "points": 1, "checks": [
            {"id": c, "question": "Q", "title": c, "points": 1, "max_points": 1, "status": "passed", "message": "ok",
             "visibility": c} for c in ("public", "hidden")]}]}
    public, hidden = Result.from_dict(old).checks()
    assert (public.visibility, public.detail_level, public.public) == ("visible", "full", True)
    assert (hidden.visibility, hidden.detail_level, hidden.public) == ("after_published", "outcome", False)
    assert student_text(hidden) == ""
    assert Result.from_dict({**old, "schema_version": 3}).checks()[1].visibility == "hidden"  # Gradescope's
    result = Result("s", "a", [])
    with pytest.raises(GraderError, match="unknown stage 'draft'"):
        student_view(result, "draft")


def test_figures_of_checks_shown_in_full_are_embedded_and_nothing_outside_the_folder(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    folder = tmp_path / "alice"
    (folder / "figures").mkdir(parents=True)
    (folder / "figures" / "shown-curves.png").write_bytes(png)
    (folder / "figures" / "later-curves.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(png)
    (folder / "figures" / "link-curves.png").symlink_to(tmp_path / "secret.png")
    checks = [CheckResult(c, "Q", f"title of {c}", 1, 1, "passed", "ok", visibility)
              for c, visibility in (("shown", "visible"), ("later", "after_published"), ("link", "visible"))]
    result = Result("alice", "a", [QuestionResult("Q", "Q", 3, False, 3, checks)],
                    figures={f"{c}: training curves": f"figures/{c}-curves.png" for c in ("shown", "later", "link")}
                    | {"shown: weights": "../secret.png"})
    page = student_view(result, "after-due")
    assert embedded_figures(result, folder, page) == [
        ("title of shown: training curves", "data:image/png;base64," + base64.b64encode(png).decode())]


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
    import test_summary_browser as sb

    if not (sb.CHROMIUM.exists() and sb.CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver")
    yield from sb.browser.__wrapped__()


@pytest.mark.parametrize("width", [390, 1280])
def test_pages_in_the_browser_load_offline_without_errors_and_fit_the_width(pages, browser, width):
    from test_summary_browser import _console_errors, _open

    for stage in ("before-due", "published+model"):
        driver = _open(browser, pages[stage] / "alice.html", width)
        assert _console_errors(driver) == [], stage
        assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0, stage
        # nothing wider than the window (a phone never scrolls sideways), text at a readable size
        overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (stage, width, overflow)
        size = driver.execute_script("return parseFloat(getComputedStyle(document.querySelector('.check')).fontSize)")
        assert size >= 14, (stage, size)
        assert driver.find_element("css selector", "h1").text == "a1: feedback for alice"


def test_a_batch_graded_before_the_prefixes_were_kept_names_pages_by_user_id(graded, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(graded, out)
    assert json.loads((out / "canvas-names.json").read_text()) == {
        "alice": "alice_1001_9001", OTHER: f"{OTHER}_LATE_1002_9003"}
    (out / "canvas-names.json").unlink()
    run = api.write_feedback(out, tmp_path / "fb")
    with zipfile.ZipFile(run.canvas_zip) as zf:
        assert sorted(zf.namelist()) == ["alice_1001_feedback.html", f"{OTHER}_1002_feedback.html"]
    assert run.not_in_canvas == ["carol"]


def test_the_late_rule_is_on_the_published_page_only(graded):
    """Under a late policy (issue 26) the page says, once published, the rule applied to the total."""
    from grader.delivery.feedback import render_page, student_view

    alice = Result.read_json(graded / "alice" / "result.json")
    alice.late = {"rule": "submitted 20 h late, one started day: −10 %", "fraction": 0.1}
    published = student_view(alice, "published")
    assert published.late_rule == "submitted 20 h late, one started day: −10 %"
    assert published.total == round(alice.total_points, 4) < alice.raw_points  # the penalty is in the total
    assert "Late work: submitted 20 h late, one started day: −10 %." in render_page(published)
    assert student_view(alice, "after-due").late_rule == ""
