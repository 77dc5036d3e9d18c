"""The pages a TA works from, loaded in a real browser: Debian's chromium driven by Selenium
through the system chromedriver (nothing is downloaded). One small Canvas export is graded once
for the module (`--execute none`: the notebooks' execution does not matter here): a reference
solution, an independent correct one whose written answer tries to inject markup, a renamed and
reordered copy of it, a bug, and a student who handed in no code."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from grader.cli import main

from conftest import FIXTURES, PSET4_FIXTURES, REPO, notebook_with_answer

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install '.[test]')")
pytestmark = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")

TEMPLATE = REPO / "student_template" / "pset4"
INJECTION = ("My update rule is $\\theta \\leftarrow \\theta - \\eta(g + \\lambda\\,\\mathrm{sign}(\\theta))$, "
             "**with** the sign.\n\n<script>window.pwned = 'script'</script>\n\n"
             "<img src=\"nope.png\" onerror=\"window.pwned = 'img'\">\n\n"
             "[click](javascript:window.pwned='link')")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A flat Canvas export: `<student>[_LATE]_<user id>_<submission id>_<file>`."""
    export = tmp_path_factory.mktemp("canvas")
    students = {  # name: (Canvas user id, mlp.py source, notebook answer to Q3.2)
        "alice": ("1001", REPO / "reference" / "pset4" / "mlp.py", None),
        "helen": ("1002", PSET4_FIXTURES / "correct_helpers" / "mlp.py", INJECTION),
        "connor": ("1003", FIXTURES / "similarity" / "copy_renamed_reordered" / "mlp.py", None),
        "carol": ("1004", PSET4_FIXTURES / "bug_predict_scores" / "mlp.py", None),
    }
    for n, (name, (uid, mlp, answer)) in enumerate(students.items()):
        shutil.copy(mlp, export / f"{name}_{uid}_{9000 + 2 * n}_mlp.py")
        notebook = REPO / "reference" / "pset4" / "pset4.ipynb" if name == "alice" else TEMPLATE / "pset4.ipynb"
        (export / f"{name}_{uid}_{9001 + 2 * n}_pset4.ipynb").write_text(notebook_with_answer(notebook, "Q3.2", answer))
    (export / "dave_LATE_1005_9100_notes.txt").write_text("I could not get it to work, sorry")
    out = tmp_path_factory.mktemp("out")
    code = main(["grade", str(export), "--out", str(out), "--assignment", "pset4", "--execute", "none",
                 "--dataset", "digits", "--sandbox", "process"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(driver, page: Path, width: int = 1280):
    driver.set_window_size(width, 1000)
    driver.get(page.resolve().as_uri())
    driver.get_log("browser")  # nothing from an earlier page counts
    driver.refresh()
    return driver


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _broken_links_and_images(driver) -> list[str]:
    broken = []
    for href in driver.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)"):
        url = urlparse(href)
        assert url.scheme == "file", f"a link leaves the output folder: {href}"
        target = Path(unquote(url.path))
        if not target.exists():
            broken.append(href)
        elif url.fragment and target.resolve().as_uri() == driver.current_url.split("#")[0]:
            if not driver.execute_script("return document.getElementById(arguments[0]) !== null", unquote(url.fragment)):
                broken.append(href)
    broken += driver.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    return broken


def test_summary_and_every_page_it_links_load_without_errors_or_broken_links(graded, browser):
    _open(browser, graded / "index.html")
    assert _console_errors(browser) == []
    assert _broken_links_and_images(browser) == []
    pages = {unquote(urlparse(h).path) for h in browser.execute_script(
        "return [...document.querySelectorAll('a[href]')].map(a => a.href)") if urlparse(h).path.endswith(".html")}
    pages.discard(str((graded / "index.html").resolve()))
    assert len(pages) == 6  # five reports and one side-by-side similarity page
    for page in sorted(pages):
        _open(browser, Path(page))
        assert _console_errors(browser) == [], page
        assert _broken_links_and_images(browser) == [], page


@pytest.mark.parametrize("width", [1280, 2600])
def test_student_rows_keep_one_height_and_only_the_table_scrolls_sideways(graded, browser, width):
    _open(browser, graded / "index.html", width)
    heights = browser.execute_script(
        "return [...document.querySelectorAll('#pset4-table tbody tr')].map(r => r.getBoundingClientRect().height)")
    assert len(heights) == 5 and max(heights) <= 32 and max(heights) - min(heights) < 1, heights
    assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    box = browser.find_element("css selector", "#pset4-table").find_element("xpath", "..")
    if width == 1280:  # 15 columns do not fit: the table scrolls inside its box, the student column stays put
        assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", box)
        left = browser.execute_script("return document.querySelector('#pset4-table tbody td.student').getBoundingClientRect().left")
        browser.execute_script("arguments[0].scrollLeft = 400", box)
        assert browser.execute_script("return arguments[0].scrollLeft", box) > 0
        moved = browser.execute_script("return document.querySelector('#pset4-table tbody td.student').getBoundingClientRect().left")
        assert abs(moved - left) < 1
        # a short box scrolled down (300 students): the header row stays at the top of the box
        browser.execute_script("arguments[0].style.maxHeight = '80px'; arguments[0].scrollTop = 60", box)
        assert browser.execute_script("return arguments[0].scrollTop", box) > 0
        offset = browser.execute_script("return document.querySelector('#pset4-table thead th').getBoundingClientRect().top"
                                        " - arguments[0].getBoundingClientRect().top", box)
        assert abs(offset) <= 2
    title = browser.find_element("css selector", "#pset4-table thead th:nth-child(2)").get_attribute("title")
    assert title.startswith("Q1.1 ") and "(5 points)" in title


def _students(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('#pset4-table tbody tr')]"
                                 ".filter(r => !r.hidden).map(r => r.dataset.student)")


def test_sorting_by_a_column_and_filtering_by_name(graded, browser):
    _open(browser, graded / "index.html")
    assert _students(browser) == ["alice", "carol", "connor", "dave", "helen"]
    header = browser.find_elements("css selector", "#pset4-table thead th button")
    by_text = {b.text.split()[0]: b for b in header}
    by_text["Autograded"].click()
    assert _students(browser)[:2] == ["dave", "carol"]  # 0 and 23 points, then the three with 45
    by_text["Autograded"].click()
    assert _students(browser)[-2:] == ["carol", "dave"]
    by_text["Student"].click()
    by_text["Student"].click()
    assert _students(browser) == ["helen", "dave", "connor", "carol", "alice"]
    search = browser.find_element("css selector", "input.filter")
    assert search.is_displayed()
    search.send_keys("CO")
    assert _students(browser) == ["connor"]
    assert browser.find_element("id", "pset4-count").text == "1 of 5 shown"


def test_scores_have_at_most_two_decimals(graded, browser):
    _open(browser, graded / "index.html")
    cells = browser.execute_script("return [...document.querySelectorAll('td.num')].map(c => c.textContent.trim())")
    assert cells and all(len(c.split(".")[1]) <= 2 for c in cells if "." in c and c[0].isdigit()), cells


def test_a_written_answer_with_script_and_img_onerror_stays_inert_text(graded, browser):
    _open(browser, graded / "helen" / "report.html")
    assert browser.execute_script("return window.pwned === undefined")
    answer = browser.find_element("id", "answer-Q3.2")
    cell = answer.find_element("xpath", "following-sibling::tr[1]/td[1]")
    assert "<script>window.pwned = 'script'</script>" in cell.text
    assert '<img src="nope.png" onerror=' in cell.text
    assert cell.find_elements("css selector", "script, img, a[href^='javascript']") == []
    assert cell.find_elements("css selector", "math") and cell.find_elements("css selector", "strong")


def test_similarity_flags_the_copy_and_nobody_else(graded, browser):
    _open(browser, graded / "index.html")
    rows = browser.find_elements("css selector", "#similarity-pset4 + p + table tbody tr")
    assert [r.find_element("css selector", "td").text for r in rows] == ["connor and helen"]
    rows[0].find_element("link text", "side by side").click()
    assert browser.find_elements("css selector", "mark") and "run_forward" in browser.page_source


def test_canvas_gradebook_has_canvas_identity_columns_and_the_total(graded):
    rows = list(csv.reader((graded / "canvas-gradebook.csv").open(encoding="utf-8")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "pset4"]
    assert rows[1] == ["Points Possible", "", "", "", "", "100"]
    assert rows[2:] == [["alice", "1001", "", "", "", "45"], ["carol", "1004", "", "", "", "23"],
                        ["connor", "1003", "", "", "", "45"], ["dave", "1005", "", "", "", "0"],  # no code handed in: graded, 0 points
                        ["helen", "1002", "", "", "", "45"]]
