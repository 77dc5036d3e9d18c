"""The TA's report of one submission: OUT/<student>/report.html."""
from __future__ import annotations

from pathlib import Path

from grader.reporting.render import ENV
from grader.results import Result


def write_report(result: Result, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    html = ENV.get_template("report.html.j2").render(r=result)
    path.write_text(html, encoding="utf-8")
    return path
