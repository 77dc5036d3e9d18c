"""Reading a submitted notebook whatever Jupyter saved it: found by name (or the single other
`.ipynb`), read as nbformat 4 (nbformat 3 converted), a truncated file salvaged cell by cell, its
language told. The one notebook reader of the grader: the notebook step, the values the modular
checks read and the similarity flags all read notebooks through `load_notebook`.

Everything in grader/notebooks/ except kernel.py reads the student's file in the grader's process
as *text and JSON only*; nothing of it is executed here (execution is grader/notebooks/kernel.py,
in the sandbox). The settings come from the rubric's `[notebook]` table (config.py).
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat


@dataclass
class LoadedNotebook:
    name: str  # file name in the submission, "" when there is none
    nb: Any = None  # nbformat v4 NotebookNode, or None when nothing could be read
    status: str = "ok"  # ok | converted | truncated | unreadable | missing | empty
    messages: list[str] = field(default_factory=list)
    version: str = ""  # as saved, e.g. "4.5"


def find_notebook(folder: Path, files: list[str], expected: str) -> tuple[str, list[str]]:
    """The submission's notebook: `expected`, else the only (or most plausible) other .ipynb
    at the top of the submission; ("", why) when there is none."""
    if expected in files:
        return expected, []
    others = sorted(f for f in files if f.endswith(".ipynb") and "/" not in f)
    if not others:
        deeper = sorted(f for f in files if f.endswith(".ipynb"))
        if deeper:
            return deeper[0], [f"{expected} is missing; using {deeper[0]} instead"]
        return "", [f"no notebook in the submission ({expected} is missing): nothing to execute, "
                    "no written answers to show"]
    stem = Path(expected).stem.lower()
    others.sort(key=lambda f: (stem not in f.lower(), f))
    note = f"{expected} is missing; using {others[0]} instead"
    if len(others) > 1:
        note += f" (the submission has {len(others)} notebooks: {', '.join(others)})"
    return others[0], [note]


def load_notebook(path: Path) -> LoadedNotebook:
    """Read any notebook Jupyter may have saved: nbformat 4.x (any minor version, with or
    without cell ids) as is, nbformat 3 converted; a truncated file salvaged cell by cell."""
    loaded = LoadedNotebook(path.name)
    raw = path.read_bytes()
    text = raw.decode("utf-8", "replace")
    if not text.strip():
        return LoadedNotebook(path.name, None, "unreadable", [f"{path.name} is empty (0 bytes of content)"])
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _salvage(path.name, text, exc)
    if not isinstance(data, dict) or "nbformat" not in data:
        return LoadedNotebook(path.name, None, "unreadable",
                              [f"{path.name} is JSON but not a Jupyter notebook (no nbformat version)"])
    loaded.version = f"{data.get('nbformat')}.{data.get('nbformat_minor', 0)}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            captured: dict[str, Any] = {}
            nb = nbformat.reads(text, as_version=4, capture_validation_error=captured)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many types for odd files
        return LoadedNotebook(path.name, None, "unreadable", [f"{path.name} cannot be read as a notebook: "
                                                              f"{type(exc).__name__}: {str(exc)[:300]}"])
    loaded.nb = _normalise(nb)
    if data.get("nbformat") != 4:
        loaded.status = "converted"
        loaded.messages.append(f"{path.name} was saved in nbformat {loaded.version} (an old Jupyter); "
                               "converted to nbformat 4 for grading")
    if captured.get("ValidationError") is not None:
        loaded.messages.append(f"{path.name} does not fully follow the notebook format; read anyway "
                               f"({str(captured['ValidationError']).splitlines()[0][:200]})")
    if not loaded.nb.cells:
        loaded.status = "empty"
        loaded.messages.append(f"{path.name} has no cells")
    return loaded


def _normalise(nb: Any) -> Any:
    """Cell ids are ignored (old notebooks have none); sources are strings; code cells have
    an outputs list."""
    for cell in nb.cells:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cell.setdefault("source", "")
        cell.setdefault("metadata", {})
        if cell.get("cell_type") == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nb.metadata = nb.get("metadata", {})
    return nb


def _salvage(name: str, text: str, exc: json.JSONDecodeError) -> LoadedNotebook:
    """A file cut off mid-way (an interrupted upload, a full disk): every complete cell before
    the cut is still readable JSON."""
    start = re.search(r'"cells"\s*:\s*\[', text)
    cells: list[dict[str, Any]] = []
    if start:
        decoder, pos = json.JSONDecoder(), start.end()
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except ValueError:
                break
            if not isinstance(obj, dict) or "cell_type" not in obj:
                break
            cells.append(obj)
    where = f"line {exc.lineno}, column {exc.colno}"
    if not cells:
        return LoadedNotebook(name, None, "unreadable",
                              [f"{name} is not valid JSON ({exc.msg} at {where}); no cell could be read from it"])
    nb = nbformat.v4.new_notebook()
    for raw in cells:
        source = raw.get("source", raw.get("input", ""))
        source = "".join(source) if isinstance(source, list) else str(source)
        kind = raw.get("cell_type")
        if kind == "heading":  # nbformat 3
            kind, source = "markdown", "#" * int(raw.get("level", 1)) + " " + source
        if kind == "code":
            cell = nbformat.v4.new_code_cell(source)
            cell.outputs = [nbformat.from_dict(o) for o in raw.get("outputs", []) if isinstance(o, dict)]
        elif kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_raw_cell(source)
        nb.cells.append(cell)
    truncated = exc.pos >= len(text.rstrip()) - 1 or "Unterminated" in exc.msg or "Expecting" in exc.msg
    what = "looks truncated" if truncated else "is not valid JSON"
    return LoadedNotebook(name, nb, "truncated",
                          [f"{name} {what} ({exc.msg} at {where}); the {len(cells)} complete cells before that "
                           "point were read and are graded as far as possible"])


def notebook_language(nb: Any) -> str:
    """The kernel language the notebook names ("" when it names none)."""
    meta = nb.get("metadata", {})
    language = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name") or ""
    return str(language).lower()
