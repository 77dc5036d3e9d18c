"""Views of results: report.html per submission, gradebook.csv and index.html for a folder."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import jinja2

from .markdown_render import render_markdown
from .results import Result

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["pts"] = lambda v: "—" if v is None else f"{v:g}"


def score(value: float | None) -> str:
    """Points as a TA reads them: at most two decimals, no trailing zeros (26.42, 34.33, 45)."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


_ENV.filters["score"] = score
_ENV.filters["markdown"] = render_markdown
_ENV.filters["seconds"] = lambda v: "" if v is None else f"{float(v):.1f}"


def safe_name(name: str) -> str:
    """The folder a submission's report goes to: a name that cannot climb out of the output."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"


_ENV.filters["safe_name"] = safe_name


def write_report(result: Result, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.html"
    html = _ENV.get_template("report.html.j2").render(r=result)
    path.write_text(html, encoding="utf-8")
    return path


def write_gradebook(results: list[Result], path: Path) -> Path:
    """One row per student, a column per question, the totals, and a points-possible row."""
    questions = _question_columns(results)
    header = ["student", *[q for q, _ in questions], "autograded", "total", "status"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        if results:
            possible = results[0]
            writer.writerow(["Points Possible", *[f"{m:g}" for _, m in questions],
                             f"{possible.autograded_max:g}", f"{possible.max_points:g}", ""])
        for r in sorted(results, key=lambda r: r.submission):
            by_id = {q.id: q for q in r.questions}
            cells = []
            for qid, _ in questions:
                q = by_id.get(qid)
                cells.append("" if q is None or q.points is None else f"{q.points:g}")
            status = "error: " + r.error if r.error else "graded"
            writer.writerow([r.submission, *cells, f"{r.autograded_points:g}", f"{r.total_points:g}", status])
    return path


def write_index(results: list[Result], folder: Path, title: str) -> Path:
    """The class summary page; it lives in grader/summary.py (histogram, pass rates, flags)."""
    from .summary import write_index as write_class_index  # summary.py imports this module

    return write_class_index(results, folder, title)


def _question_columns(results: list[Result]) -> list[tuple[str, float]]:
    for r in results:
        if r.questions:
            return [(q.id, q.max_points) for q in r.questions]
    return []
