"""The notebook step of grading one submission (called by Grader.grade after the probes):
find and read the notebook, list edited fixed cells, show the written answers beside the
model answers, execute it in the sandbox (`light`, `full` or `none`), and compare the numbers
its saved outputs claim with what the probes reproduced from the submitted code.

Nothing here changes the autograded points except the rubric's optional deduction per edited
fixed cell; everything else becomes flags and report sections for the TA. A broken notebook
(not JSON, truncated, nbformat 3, another assignment's, another language's, none at all) is a
message in the report, never an exception: the probe checks have already run.
"""
from __future__ import annotations

import tempfile
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from grader.notebooks.checkcells import is_check_cell
from grader.notebooks.answers import find_answers
from grader.notebooks.claims import record_claims
from grader.notebooks.config import NotebookConfig, load_config
from grader.notebooks.figures import notebook_figures
from grader.notebooks.kernel import CellPlan, ExecutionReport, KernelJob, execute_notebook, plan_cells
from grader.notebooks.matching import (TemplateCell, added_code_cells, edited_cells, match_cells, template_cells,
                                       wrong_assignment)
from grader.notebooks.reading import LoadedNotebook, find_notebook, load_notebook, notebook_language
from grader.notebooks.staging import provide_data
from grader.results import Result
from grader.sandbox import GiB
from grader.submission import make_working_copy

MODES = ("light", "full", "none")


_cache: dict[tuple[str, str], Any] = {}  # rubric/reference path + hash -> parsed settings


@dataclass
class NotebookStart:
    """The notebook read, matched with the template and, when it can run, already executing in a
    thread of its own: the kernel starts and the cells run while the probes do (they do not
    depend on each other; only the comparison of claims with the probes' results waits for both).
    Measured: the notebook step was the largest part of one-off grading after the probes."""

    mode: str
    config: Any = None
    template: Any = None
    name: str = ""
    messages: list[str] = field(default_factory=list)
    loaded: Any = None  # LoadedNotebook, or None when there is no notebook
    matches: dict[int, int] = field(default_factory=dict)
    wrong_assignment: bool = False
    language: str = ""
    executed: Any = None  # the copy of the notebook the execution fills with new outputs
    execution: Future | None = None  # -> ExecutionReport
    error: Exception | None = None  # reading failed: reported by grade_notebook

    @property
    def runnable(self) -> bool:
        return (self.loaded is not None and self.loaded.nb is not None and self.loaded.status != "empty"
                and not self.wrong_assignment and self.language in ("", "python"))

    def report(self) -> ExecutionReport | None:
        return self.execution.result() if self.execution is not None else None

    def wait(self) -> None:
        """Let a started execution finish (its kernel is ended by execute_notebook either way)."""
        if self.execution is not None:
            try:
                self.execution.result()
            except Exception:  # noqa: BLE001 - reported by grade_notebook, or moot
                pass


def start_notebook(grader: Any, sub: Any, ctx: Any) -> NotebookStart:
    """Read the submission's notebook and start executing it in the background (see
    NotebookStart). Never raises."""
    start = NotebookStart(mode=getattr(grader.options, "execute", "light"))
    try:
        _read(grader, sub, start)
        if start.runnable and start.mode != "none":
            # A copy: the saved notebook (answers, edits, the outputs it claims) is read while this runs.
            start.executed = nbformat.from_dict(start.loaded.nb)
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notebook")
            start.execution = pool.submit(_execute, grader, sub, ctx, start.config, start.template, start.matches,
                                          start.executed, start.mode)
            pool.shutdown(wait=False)  # the thread ends with the execution
    except Exception as exc:  # noqa: BLE001 - the notebook step must not cost the probe results
        start.error = exc
    return start


def _read(grader: Any, sub: Any, start: NotebookStart) -> None:
    rubric, course = grader.rubric, grader.course
    start.config = _cached("config", course.rubric(rubric.assignment), lambda p: load_config(p, rubric.notebook))
    start.template = _cached("template", course.reference(rubric.assignment) / rubric.notebook, template_cells)
    start.name, start.messages = find_notebook(sub.path, list(sub.files), start.config.filename)
    if not start.name:
        return
    start.loaded = load_notebook(sub.path / start.name)
    if start.loaded.nb is None:
        return
    start.matches = match_cells(start.template, start.loaded.nb.cells)
    start.wrong_assignment = wrong_assignment(start.template, start.matches)
    start.language = notebook_language(start.loaded.nb) or ""


def grade_notebook(grader: Any, sub: Any, ctx: Any, result: Result, out_dir: Path | None,
                   start: NotebookStart | None = None) -> None:
    """Fill result.notebook, result.flags, the manual questions' answers and any deduction.
    `start`: what start_notebook began before the probes ran (else it is done here).
    Never raises: a grader-side failure becomes a message (the probe checks stand)."""
    started = time.monotonic()
    start = start or start_notebook(grader, sub, ctx)
    mode = start.mode
    result.notebook = {"file": "", "status": "", "version": "", "messages": [], "execute": mode,
                       "edits": [], "added_cells": [], "claims": [], "execution": {}}
    try:
        if start.error is not None:
            raise start.error
        _grade(grader, ctx, result, out_dir, start)
    except Exception as exc:  # noqa: BLE001 - the notebook step must not cost the probe results
        message = f"the grader could not analyse the notebook ({type(exc).__name__}: {exc})"
        result.notebook["messages"].append(message)
        result.notes.append(message)
    finally:
        start.wait()
    result.timings["notebook"] = round(time.monotonic() - started, 3)  # what was left after the probes
    report = start.execution.result() if start.execution is not None and start.execution.done() \
        and start.execution.exception() is None else None
    if report is not None:
        result.timings["notebook_execution"] = report.seconds  # overlapped with the probes


def _grade(grader: Any, ctx: Any, result: Result, out_dir: Path | None, start: NotebookStart) -> None:
    rubric, course = grader.rubric, grader.course
    info = result.notebook
    config, template, name, mode = start.config, start.template, start.name, start.mode
    info["messages"] += start.messages
    if not name:
        info["status"] = "missing"
        result.notes += start.messages
        _set_answers(result, {}, "no notebook")
        return
    loaded: LoadedNotebook = start.loaded
    info.update(file=name, status=loaded.status, version=loaded.version)
    info["messages"] += loaded.messages
    result.notes += start.messages + [m for m in loaded.messages if loaded.status != "ok" or "format" in m]
    if loaded.nb is None:
        _set_answers(result, {}, "no notebook")
        return
    nb = loaded.nb
    cells = nb.cells
    matches = start.matches
    if start.wrong_assignment:
        other = _looks_like(course, rubric.assignment, cells)
        message = (f"{name} does not look like the {rubric.assignment} notebook (few of the template's cells are in "
                   f"it){f'; it looks like the {other} notebook' if other else ''}: not executed, no edit check")
        info["status"] = "wrong_assignment"
        info["messages"].append(message)
        result.notes.append(message)
        result.flags.append(message)
    language = start.language
    if language and language != "python":
        kernel = (nb.metadata.get("kernelspec") or {}).get("name", "")
        message = (f"{name} names a {language} kernel{f' ({kernel})' if kernel else ''}; the grader executes Python "
                   "only: not executed (answers and edits are still checked)")
        info["status"] = "other_language" if info["status"] in ("ok", "converted") else info["status"]
        info["messages"].append(message)
        result.notes.append(message)
    answers = find_answers(cells, template, matches, config)
    _set_answers(result, answers, "missing")
    if info["status"] != "wrong_assignment":
        _edits(result, config, template, cells, matches, answers, truncated=loaded.status == "truncated")
    saved = nbformat.from_dict(nb)  # the outputs as submitted: what the notebook claims
    report: ExecutionReport | None = None
    if mode == "none":
        info["execution"] = {"mode": "none", "summary": "not executed (--execute none)"}
    elif not start.runnable:
        info["execution"] = {"mode": mode, "summary": "not executed: " + (info["messages"][-1] if info["messages"]
                                                                        else loaded.status)}
    else:
        report = start.report()
        info["execution"] = _execution_summary(report, start.executed, config, mode)
        if out_dir is not None:
            _write_executed(start.executed, out_dir / f"{Path(name).stem}.executed.ipynb")
    record_claims(result, config, template, matches, saved, start.executed if report else None, report, ctx)
    if out_dir is not None:
        result.figures.update(notebook_figures(saved, report, out_dir))


def _cached(kind: str, path: Path, build: Any) -> Any:
    stamp = f"{path.stat().st_mtime_ns}:{path.stat().st_size}" if path.exists() else ""
    key = (kind, f"{path}@{stamp}")
    if key not in _cache:
        _cache[key] = build(path)
    return _cache[key]


def _looks_like(course: Any, assignment: str, cells: list[Any]) -> str:
    """The other assignment whose template this notebook matches, if any."""
    from grader.rubric import load_rubric

    for other in course.assignments():
        if other == assignment:
            continue
        rubric = load_rubric(course.rubric(other))
        path = course.reference(other) / rubric.notebook
        if rubric.notebook and path.is_file():
            template = _cached("template", path, template_cells)
            if not wrong_assignment(template, match_cells(template, cells)):
                return other
    return ""


def _set_answers(result: Result, answers: dict[str, Any], default: str) -> None:
    for q in result.questions:
        if not q.manual:
            continue
        answer = answers.get(q.id)
        if answer is None:
            q.answer_state = default
            continue
        q.answer, q.answer_state, q.answer_cells, q.flags = answer.text, answer.state, answer.cells, list(answer.flags)
        result.flags += [f"{q.id}: {flag}" for flag in answer.flags]
    by_text = [q for q, a in answers.items() if a.found_by == "question text"]
    if by_text:
        result.notebook["messages"].append(
            f"written answers found by the question's text, since no heading names the question (the notebook "
            f"words it differently, e.g. another version of the handout): {', '.join(by_text)}")
    blank = [q.id for q in result.questions if q.manual and q.answer_state in ("empty", "placeholder", "missing")]
    if blank and default != "no notebook":
        result.flags.append(f"written answers empty, placeholder or not found: {', '.join(blank)}")


def _edits(result: Result, config: NotebookConfig, template: list[TemplateCell], cells: list[Any],
           matches: dict[int, int], answers: dict[str, Any], truncated: bool = False) -> None:
    info = result.notebook
    answer_cells = {n - 1 for a in answers.values() for n in a.cells}
    info["added_cells"] = added_code_cells(cells, matches, answer_cells)
    if config.fixed == "none":
        return
    edits = edited_cells(template, cells, matches)
    if truncated and matches:  # cells after the cut were lost, not deleted by the student
        last = max(matches)
        lost = [e for e in edits if e["kind"] == "deleted" and e["template_cell"] - 1 > last]
        edits = [e for e in edits if e not in lost]
        if lost:
            info["messages"].append(f"the template's cells from {lost[0]['template_cell']} on are not in the "
                                    "truncated file: not counted as deleted")
    info["edits"] = edits
    fixed = [t for t in template if t.cell_type == "code" and t.lines]
    changed = [e for e in edits if e["kind"] in ("edited", "deleted")]
    if len(fixed) >= 4 and len(changed) > len(fixed) / 2:
        # One flag, not one per cell: a notebook from another version of the handout differs in
        # nearly every fixed cell, and a wall of identical flags hides the ones that matter.
        same = len(fixed) - len(changed)
        info["other_version"] = {"fixed_cells": len(fixed), "matching": same,
                                 "edited": sum(e["kind"] == "edited" for e in edits),
                                 "deleted": sum(e["kind"] == "deleted" for e in edits)}
        result.flags.append(f"the notebook follows another version of the handout (or was heavily edited): only "
                            f"{same} of the template's {len(fixed)} fixed code cells match; the per-cell diffs "
                            "are in the report's notebook section" +
                            ("; no deduction for edited cells" if config.deduct > 0 else ""))
        return
    counted = 0
    for e in edits:
        where = f"template cell {e['template_cell']} (`{e['excerpt']}`)"
        if e["kind"] == "edited":
            result.flags.append(f"fixed cell edited: {where}, submitted as cell {e['cell']}; see the diff")
            counted += 1
        elif e["kind"] == "deleted":
            result.flags.append(f"fixed cell deleted: {where}")
            counted += 1
        elif e["kind"] == "moved":
            result.flags.append(f"fixed cell moved: {where} is now cell {e['cell']}")
    if counted and config.deduct > 0:
        points = counted * config.deduct
        if config.deduct_max > 0:
            points = min(points, config.deduct_max)
        result.adjustments.append({"reason": f"{counted} fixed notebook cell(s) edited or deleted "
                                             f"({config.deduct:g} each" + (f", at most {config.deduct_max:g}"
                                                                           if config.deduct_max else "") + ")",
                                   "points": -points})


SELF_CHECK_SKIP = "self-check cell (check(...)): the grader runs the checks itself"


def _execute(grader: Any, sub: Any, ctx: Any, config: NotebookConfig, template: list[TemplateCell],
             matches: dict[int, int], nb: Any, mode: str) -> ExecutionReport:
    scale = grader.options.timeout_scale
    cell_timeout = (config.cell_timeout if mode == "light" else config.full_cell_timeout) * scale
    notebook_timeout = (config.notebook_timeout if mode == "light" else config.full_notebook_timeout) * scale
    with tempfile.TemporaryDirectory(prefix="mlp-grader-nbwork-", dir=grader.scratch) as tmp:
        work = make_working_copy(sub, Path(tmp) / "work", grader.provided_files())
        readable, prelude, missing_data = [], "", ""
        if mode == "full" and config.data:
            readable, prelude, missing_data = provide_data(config, ctx, grader, work)
        skip = _skips(nb, template, matches, config, mode, missing_data)
        plans: list[CellPlan] = plan_cells(nb, skip, cell_timeout)
        job = KernelJob(grader.sandbox, work, grader.scratch, readable=readable,
                        memory_bytes=int(config.memory_gb * GiB), prelude=prelude)
        return execute_notebook(nb, plans, job, mode=mode, notebook_timeout=notebook_timeout)


def _skips(nb: Any, template: list[TemplateCell], matches: dict[int, int], config: NotebookConfig, mode: str,
           missing_data: str) -> dict[int, str]:
    """Cell index -> why it is not run: the rubric's light-mode policy (matched on the cell or
    on the template cell it corresponds to) and, in full mode, the data it cannot have."""
    matched_to = {s: t for t, s in matches.items()}
    skip: dict[int, str] = {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if is_check_cell(cell.get("source", "")):  # the student's self-check: never run by the grader
            skip[index] = SELF_CHECK_SKIP
            continue
        sources = [cell.get("source", "")]
        if index in matched_to:
            sources.append(template[matched_to[index]].source)
        for policy in config.cells:
            if not any(policy.pattern.search(s) for s in sources):
                continue
            if mode == "light" and policy.light == "skip":
                skip[index] = f"light mode: {policy.why or 'expensive'}; the probes reproduce its results"
            elif mode == "full" and policy.data and missing_data:
                skip[index] = missing_data
    return skip


def _execution_summary(report: ExecutionReport, nb: Any, config: NotebookConfig, mode: str) -> dict[str, Any]:
    cells = []
    counts: dict[str, int] = {}
    for run in report.cells:
        counts[run.status] = counts.get(run.status, 0) + 1
        source = nb.cells[run.index].get("source", "")
        cells.append({"cell": run.index + 1, "status": run.status, "seconds": run.seconds, "reason": run.reason,
                      "error": run.error, "excerpt": _first_line(source)})
    ran = sum(counts.get(s, 0) for s in ("ok", "error", "timeout", "died"))
    own = sum(1 for run in report.cells if run.status == "skipped" and run.reason == SELF_CHECK_SKIP)
    parts = [f"{counts.get('ok', 0)} of {len(report.cells)} code cells ran without error"]
    for status, word in (("error", "raised an error"), ("timeout", "timed out"), ("died", "killed the kernel"),
                         ("skipped", "skipped"), ("not_run", "not run")):
        number = counts.get(status, 0) - (own if status == "skipped" else 0)
        if number:
            parts.append(f"{number} {word}")
    if own:
        parts.append(f"{own} self-check cells left out")
    summary = ", ".join(parts) + f" ({mode} mode, {report.seconds:g} s, {ran} executed)"
    if mode == "light" and counts.get("skipped", 0) > own:
        summary += "; skipped cells are the expensive training/data cells: their results come from the probes"
    if report.problem:
        summary = report.problem + "; " + summary
    return {"mode": mode, "sandbox": report.sandbox, "seconds": report.seconds, "kernel_starts": report.kernel_starts,
            "restarts": report.restarts, "problem": report.problem, "summary": summary, "cells": cells,
            "counts": counts}


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:90]
    return source.strip()[:90]


def _write_executed(nb: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = nbformat.writes(nb, version=4, capture_validation_error={})
    path.write_text(text, encoding="utf-8")


def validate_mode(mode: str) -> str:
    if mode not in MODES:
        from grader.errors import GraderError

        raise GraderError(f"unknown --execute mode {mode!r}; choose from {', '.join(MODES)}")
    return mode


__all__ = ["grade_notebook", "validate_mode", "MODES"]
