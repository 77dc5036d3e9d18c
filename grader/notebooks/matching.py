"""The student template's cells, and which submitted cell is which: cells matched by content
(the template generated from the reference the way grader/delivery/template.py does, solution
regions masked), the fixed cells a student edited, the code cells a student added, and whether
the notebook is another assignment's."""
from __future__ import annotations

import difflib
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from grader.notebooks.checkcells import is_check_cell
from grader.regions import ANSWER, ANSWER_PLACEHOLDER, BEGIN, END, STUB, replacement

MATCH_THRESHOLD = 0.5  # similarity below which a submitted cell is not the template's cell


@dataclass
class TemplateCell:
    index: int
    cell_type: str
    lines: list[str]
    region: list[bool]  # per line: stands for a solution region (the student's code goes there)
    answer: bool = False  # part of a written answer (placeholder cells)

    @property
    def source(self) -> str:
        return "\n".join(self.lines)


def template_cells(reference_notebook: Path) -> list[TemplateCell]:
    """The student template's cells, generated from the reference the way grader/delivery/template.py
    does, with every line marked as fixed or as standing for a solution region."""
    nb = nbformat.reads(reference_notebook.read_text(encoding="utf-8"), as_version=4)
    cells: list[TemplateCell] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            lines, region = _strip_with_mask(cell.source)
            cells.append(TemplateCell(index, "code", lines, region))
            continue
        answer = cell.cell_type == "markdown" and bool(ANSWER.search(cell.source))
        lines = norm_lines(ANSWER.sub(ANSWER_PLACEHOLDER, cell.source) if answer else cell.source)
        cells.append(TemplateCell(index, cell.cell_type, lines, [False] * len(lines), answer))
    return cells


def _strip_with_mask(source: str) -> tuple[list[str], list[bool]]:
    lines: list[str] = []
    mask: list[bool] = []
    region: dict | None = None
    for line in source.splitlines(keepends=True):
        if region is None:
            match = BEGIN.match(line)
            if match:
                region = {"indent": match["indent"], "task": match["task"] or "your code here", "stubs": []}
            else:
                lines.append(line.rstrip())
                mask.append(False)
            continue
        if END.match(line):
            for stub in replacement(region):
                lines.append(stub.rstrip())
                mask.append(True)
            region = None
            continue
        stub = STUB.match(line)
        if stub:
            region["stubs"].append(stub["code"])
    while lines and not lines[-1].strip():
        lines.pop()
        mask.pop()
    return lines, mask


def norm_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


def similarity(a: list[str], b: list[str]) -> float:
    if a == b:
        return 1.0
    score = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    ta, tb = "\n".join(a), "\n".join(b)
    if len(ta) < 600 and len(tb) < 600:  # short cells: a one-line change is not half the cell
        score = max(score, difflib.SequenceMatcher(None, ta, tb, autojunk=False).ratio())
    return score


def _coverage(t: TemplateCell, lines: list[str]) -> float:
    """The share of a template cell's fixed lines found, in order, in the submitted cell (for
    cells that are mostly solution region); 0 when the fixed part is too small to tell."""
    fixed = [line for line, region in zip(t.lines, t.region) if not region and line.strip()]
    if sum(len(line.strip()) for line in fixed) < 20:
        return 0.0
    blocks = difflib.SequenceMatcher(None, fixed, lines, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks) / len(fixed)


def match_cells(template: list[TemplateCell], cells: list[Any]) -> dict[int, int]:
    """Template cell index -> submitted cell index, by content (not position): the most
    similar pairs first, each cell used once, same cell type, similarity >= MATCH_THRESHOLD.
    Ties go to the pair whose relative positions agree best."""
    # A self-check cell is the student's tool, not the template's: never matched, never counted.
    student = [(i, c.get("cell_type"), norm_lines(c.get("source", ""))) for i, c in enumerate(cells)
               if not (c.get("cell_type") == "code" and is_check_cell(c.get("source", "")))]
    lines_of = {i: lines for i, _, lines in student}
    pairs: list[tuple[float, float, int, int]] = []
    exact: dict[tuple[str, str], list[int]] = {}
    for i, kind, lines in student:
        exact.setdefault((kind, "\n".join(lines)), []).append(i)
    n_t, n_s = max(len(template), 1), max(len(cells), 1)
    for t in template:
        if t.answer or not t.lines:
            continue
        hits = exact.get((t.cell_type, t.source))
        candidates = hits if hits else [i for i, kind, _ in student if kind == t.cell_type]
        for i in candidates:
            score = 1.0 if hits else similarity(t.lines, lines_of[i])
            if not hits and any(t.region):  # the student's code replaces the stubs: judge the rest
                score = max(score, _coverage(t, lines_of[i]))
            if score >= MATCH_THRESHOLD:
                pairs.append((score, -abs(t.index / n_t - i / n_s), t.index, i))
    pairs.sort(reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, _, t_index, s_index in pairs:
        if t_index not in matched and s_index not in used:
            matched[t_index] = s_index
            used.add(s_index)
    return matched


def edited_cells(template: list[TemplateCell], cells: list[Any], matches: dict[int, int]) -> list[dict[str, Any]]:
    """Every fixed (code) template cell that was changed outside its solution regions,
    deleted or moved, with a diff. `kind`: edited | cosmetic (comments/blank lines only) |
    deleted | moved."""
    found: list[dict[str, Any]] = []
    order = _in_order({t: s for t, s in matches.items() if template[t].cell_type == "code"})
    for t in template:
        if t.cell_type != "code" or not t.lines:
            continue
        if t.index not in matches:
            found.append({"kind": "deleted", "template_cell": t.index + 1, "cell": None,
                          "excerpt": _excerpt(t.lines), "diff": "\n".join(f"-{line}" for line in t.lines)})
            continue
        s_index = matches[t.index]
        s_lines = norm_lines(cells[s_index].get("source", ""))
        entry = {"template_cell": t.index + 1, "cell": s_index + 1, "excerpt": _excerpt(t.lines)}
        if not _allowed(t.lines, t.region, s_lines):
            code_t, mask_t = _code_only(t.lines, t.region)
            code_s, _ = _code_only(s_lines, [False] * len(s_lines))
            entry["kind"] = "cosmetic" if _allowed(code_t, mask_t, code_s) else "edited"
            entry["diff"] = "\n".join(difflib.unified_diff(t.lines, s_lines, f"template cell {t.index + 1}",
                                                           f"submitted cell {s_index + 1}", lineterm="", n=2))
            found.append(entry)
        elif t.index not in order:
            found.append({**entry, "kind": "moved", "diff": ""})
    return found


def _allowed(t_lines: list[str], region: list[bool], s_lines: list[str]) -> bool:
    """True when every difference lies in (or next to) a solution region."""
    ops = difflib.SequenceMatcher(None, t_lines, s_lines, autojunk=False).get_opcodes()
    for tag, i1, i2, _, _ in ops:
        if tag == "equal":
            continue
        if i1 == i2:  # insertion: allowed at a region's edge or inside it
            if not ((i1 > 0 and region[i1 - 1]) or (i1 < len(region) and region[i1])):
                return False
        elif not all(region[i1:i2]):
            return False
    return True


def _code_only(lines: list[str], region: list[bool]) -> tuple[list[str], list[bool]]:
    """Lines without comments and blank lines (region marks kept): what Python executes."""
    text = "\n".join(lines)
    stripped = list(lines)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text + "\n").readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                stripped[row - 1] = stripped[row - 1][:col]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        stripped = [line.split("#", 1)[0] if line.lstrip().startswith("#") else line for line in lines]
    kept = [(line.rstrip(), mask) for line, mask in zip(stripped, region) if line.strip()]
    return [k for k, _ in kept], [m for _, m in kept]


def _in_order(matches: dict[int, int]) -> set[int]:
    """Template indices whose submitted cells keep the template's order (longest increasing run)."""
    items = sorted(matches.items())
    best: list[list[int]] = []
    for t, s in items:
        chain = max((c for c in best if matches[c[-1]] < s), key=len, default=[])
        best.append(chain + [t])
    return set(max(best, key=len, default=[]))


def _excerpt(lines: list[str]) -> str:
    for line in lines:
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:100]
    return (lines[0].strip()[:100] if lines else "")


def added_code_cells(cells: list[Any], matches: dict[int, int], answer_cells: set[int]) -> list[int]:
    used = set(matches.values()) | answer_cells
    return [i + 1 for i, c in enumerate(cells) if c.get("cell_type") == "code" and i not in used
            and c.get("source", "").strip() and not is_check_cell(c.get("source", ""))]


def wrong_assignment(template: list[TemplateCell], matches: dict[int, int]) -> bool:
    """Fewer than a quarter of the template's cells found: another assignment's notebook."""
    wanted = [t for t in template if not t.answer and t.lines]
    return bool(wanted) and len([t for t in wanted if t.index in matches]) < 0.25 * len(wanted)
