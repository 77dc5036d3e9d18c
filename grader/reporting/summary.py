"""The class summary: index.html over a batch's results, per assignment a score histogram,
per-question and per-check pass rates, the slowest submissions, the ones that could not be
graded and why, and the flags (notes, and `flags` when the results carry them), each student
linked to its report, and the similarity flags of the batch (OUT/similarity.json, written by
grader/reporting/similarity.py). The histogram, stylesheet and script are files beside the page: it works
offline from file://, no CDN. A batch from a Canvas export also gets Canvas's import CSV
(grader/reporting/gradebooks.py).

`rebuild(out_dir)` recreates the gradebooks and the index from the result.json files alone, so
an interrupted batch can be summarised without regrading.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grader.files import safe_name
from grader.reporting.gradebooks import (gradebook_name as canvas_name, question_columns, read_identities,
                                         write_canvas_gradebook, write_gradebook)
from grader.reporting.render import ENV
from grader.reporting.similarity import SimilarityReport
from grader.results import Result, format_points

SLOWEST = 10


@dataclass
class CheckRate:
    id: str
    question: str
    title: str
    visibility: str
    max_points: float
    counts: dict[str, int] = field(default_factory=dict)  # status -> submissions
    graded: int = 0

    @property
    def pass_rate(self) -> float:
        return self.counts.get("passed", 0) / self.graded if self.graded else 0.0

    @property
    def problems(self) -> str:
        """'2 error, 1 timeout': the statuses that say the code crashed or hung."""
        return ", ".join(f"{self.counts[s]} {s}" for s in ("error", "timeout") if self.counts.get(s))


@dataclass
class QuestionRate:
    id: str
    title: str
    max_points: float
    mean: float
    full_rate: float  # share of graded submissions with full points


@dataclass
class AssignmentSummary:
    assignment: str
    results: list[Result]
    questions: list[tuple[str, float]]
    gradebook: str
    histogram: str = ""  # PNG path relative to index.html
    stats: dict[str, float] = field(default_factory=dict)  # mean, median, min, max of graded
    question_rates: list[QuestionRate] = field(default_factory=list)
    check_rates: list[CheckRate] = field(default_factory=list)
    slowest: list[Result] = field(default_factory=list)
    failed: list[Result] = field(default_factory=list)
    flagged: list[tuple[Result, list[str]]] = field(default_factory=list)
    question_titles: dict[str, str] = field(default_factory=dict)
    canvas_gradebook: str = ""  # the Canvas import file, when the batch came from a Canvas export
    late: list[Result] = field(default_factory=list)  # late (or late by an unknown time), with the rule
    late_unknown: list[Result] = field(default_factory=list)  # Canvas's LATE marker alone: to check
    late_note: str = ""  # a policy, and nobody late or no times given: one sentence

    @property
    def flag_count(self) -> dict[str, int]:
        return {r.submission: len(texts) for r, texts in self.flagged}

    @property
    def graded(self) -> list[Result]:
        return [r for r in self.results if not r.error]


def summarise(results: list[Result], assignment: str, gradebook: str) -> AssignmentSummary:
    rows = sorted((r for r in results if r.assignment == assignment), key=lambda r: r.submission)
    s = AssignmentSummary(assignment, rows, question_columns(rows), gradebook)
    graded = s.graded
    scores = [r.autograded_points for r in graded]
    if scores:
        s.stats = {"mean": statistics.fmean(scores), "median": statistics.median(scores),
                   "min": min(scores), "max": max(scores), "possible": graded[0].autograded_max}
    s.failed = [r for r in rows if r.error]
    s.slowest = sorted((r for r in rows if r.timings.get("total")), key=lambda r: -r.timings["total"])[:SLOWEST]
    s.flagged = [(r, texts) for r in rows if (texts := flag_texts(r))]
    s.question_titles = {q.id: q.title for r in rows for q in r.questions}
    s.late = [r for r in rows if r.late.get("days") or r.late.get("unknown")]
    s.late_unknown = [r for r in rows if r.late.get("unknown")]
    if not s.late and any(r.late for r in rows):
        s.late_note = ("no submission times were given: no late penalty"
                       if all(not r.late.get("source") for r in rows if r.late) else "nobody was late")
    if graded:
        s.question_rates = _question_rates(graded)
        s.check_rates = _check_rates(graded)
    return s


def flag_texts(result: Result) -> list[str]:
    """What a TA should look at: the result's notes, and its `flags` when it has them (strings,
    or dicts with a message)."""
    texts = list(result.notes)
    for flag in getattr(result, "flags", None) or []:
        if isinstance(flag, dict):
            texts.append(str(flag.get("message") or flag.get("text") or json.dumps(flag, sort_keys=True)))
        else:
            texts.append(str(flag))
    return texts


def _question_rates(graded: list[Result]) -> list[QuestionRate]:
    rates = []
    for q in graded[0].questions:
        if q.manual:
            continue
        points = [next((x.points or 0.0 for x in r.questions if x.id == q.id), 0.0) for r in graded]
        rates.append(QuestionRate(q.id, q.title, q.max_points, statistics.fmean(points),
                                  sum(p >= q.max_points - 1e-9 for p in points) / len(points)))
    return rates


def _check_rates(graded: list[Result]) -> list[CheckRate]:
    rates: dict[str, CheckRate] = {}
    for r in graded:
        for c in r.checks():
            rate = rates.setdefault(c.id, CheckRate(c.id, c.question, c.title, c.visibility, c.max_points))
            rate.counts[c.status] = rate.counts.get(c.status, 0) + 1
            rate.graded += 1
    return list(rates.values())


def write_histogram(summary: AssignmentSummary, folder: Path) -> str:
    """Autograded scores of the graded submissions as a PNG; returns its path relative to folder."""
    if not summary.stats:
        return ""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scores = [r.autograded_points for r in summary.graded]
    top = summary.stats["possible"] or max(scores) or 1.0
    fig = Figure(figsize=(6.5, 2.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.1, right=0.97, top=0.89, bottom=0.17)  # fixed: tight_layout draws it twice
    ax.hist(scores, bins=[top * i / 20 for i in range(21)], color="#4a78b5", edgecolor="white")
    ax.set_xlim(0, top)
    ax.set_xlabel(f"autograded points (of {top:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{summary.assignment}: {len(scores)} graded, mean {format_points(summary.stats['mean'])}, "
                 f"median {format_points(summary.stats['median'])}")
    rel = f"summary/{summary.assignment}-scores.png"
    (folder / "summary").mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / rel)
    return rel


def write_assets(folder: Path) -> dict[str, str]:
    """The page's stylesheet and script, copied beside it (no CDN: it works from file://)."""
    assets = {}
    (folder / "summary").mkdir(parents=True, exist_ok=True)
    for kind, name in (("css", "summary.css"), ("js", "summary.js")):
        text = resources.files("grader.reporting.templates").joinpath("static", name).read_text(encoding="utf-8")
        (folder / "summary" / name).write_text(text, encoding="utf-8")
        assets[kind] = f"summary/{name}"
    return assets


def gradebook_name(assignment: str, assignments: list[str]) -> str:
    return "gradebook.csv" if len(assignments) == 1 else f"gradebook-{assignment}.csv"


def write_index(results: list[Result], folder: Path, title: str, extra: dict[str, Any] | None = None,
                folders: dict[int, str] | None = None) -> Path:
    """index.html: the class summary, one section per assignment (a folder may mix them).
    `folders` maps id(result) to its folder under `folder` when that is not
    safe_name(submission) (a batch numbers clashing names); `extra` adds key/value lines."""
    folder.mkdir(parents=True, exist_ok=True)
    assignments = sorted({r.assignment for r in results})
    canvas = bool(read_identities(folder))
    sections = []
    for name in assignments:
        s = summarise(results, name, gradebook_name(name, assignments))
        s.histogram = write_histogram(s, folder)
        s.canvas_gradebook = canvas_name(name, assignments) if canvas else ""
        sections.append(s)
    path = folder / "index.html"
    folders = folders or {}

    def report_link(r: Result) -> str:
        return quote(folders.get(id(r)) or safe_name(r.submission)) + "/report.html"

    html = ENV.get_template("index.html.j2").render(sections=sections, title=title, extra=extra or {},
                                                     report_link=report_link, assets=write_assets(folder),
                                                     similarity=SimilarityReport.read(folder))
    path.write_text(html, encoding="utf-8")
    return path


def write_outputs(results: list[Result], folder: Path, title: str = "", extra: dict[str, Any] | None = None,
                  folders: dict[int, str] | None = None) -> None:
    """The gradebook(s) and index.html of a batch."""
    folder.mkdir(parents=True, exist_ok=True)
    assignments = sorted({r.assignment for r in results})
    canvas_ids = read_identities(folder)
    for name in assignments:
        rows = [r for r in results if r.assignment == name]
        write_gradebook(rows, folder / gradebook_name(name, assignments))
        if canvas_ids:
            write_canvas_gradebook(rows, canvas_ids, folder / canvas_name(name, assignments), name)
    write_index(results, folder, title or f"Class summary: {', '.join(assignments)}", extra, folders)


def rebuild(folder: Path) -> list[Result]:
    """Gradebooks and index.html from every OUT/<student>/result.json (for an interrupted batch,
    or after editing results by hand). Unreadable result files are left out."""
    results, folders = [], {}
    for path in sorted(Path(folder).glob("*/result.json")):
        try:
            result = Result.read_json(path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        results.append(result)
        folders[id(result)] = path.parent.name
    if results:
        write_outputs(results, Path(folder), folders=folders)
    return results
