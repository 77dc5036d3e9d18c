"""The submitted notebook as data, without running it: loading it whatever Jupyter saved it,
which fixed cells were changed (compared with the template, cells matched by content), the
written answers under each manual question's heading, and the numbers its saved outputs claim.

Everything here reads the student's file in the grader's process as *text and JSON only*;
nothing of it is executed here (execution is grader/notebooks/kernel.py, in the sandbox). The settings
come from the rubric's `[notebook]` table and `[[questions]]` (`heading`, `answer_hint`): see
rubrics/pset4.toml.
"""
from __future__ import annotations

import difflib
import io
import json
import re
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from grader.errors import RubricError
from grader.regions import ANSWER, ANSWER_PLACEHOLDER, BEGIN, END, STUB, replacement
from grader.files import load_toml

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"
PLACEHOLDERS = ("your answer here", "double click here to add a solution", "double-click here to add a solution",
                "write your answer here", "type your answer here", "todo")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*)$", re.M)
MATCH_THRESHOLD = 0.5  # similarity below which a submitted cell is not the template's cell
MAX_ANSWER_CHARS = 20_000
COMPARES = ("relative", "absolute", "error")


# ---------------------------------------------------------------------- rubric settings


@dataclass(frozen=True)
class CellPolicy:
    """How light mode treats the cells whose source matches `pattern`."""

    pattern: re.Pattern
    light: str = "run"  # run | skip
    data: bool = False  # loads the notebook's dataset: in full mode runs only when it is provided
    why: str = ""


@dataclass(frozen=True)
class Claim:
    """A number a cell prints, and the check whose result reproduces it."""

    label: str
    cell: re.Pattern | None  # finds the cell by its source (template first, then submission)
    output: re.Pattern  # on the cell's printed text; group `value` (or 1), optional group `key`
    check: str
    field: str = "got"  # the CheckResult.details entry holding the reproduced value
    key: str = ""  # entry of details[field] when it is a dict and the output names no key
    compare: str = "relative"  # relative | absolute | error (same side of `tolerance`)
    tolerance: float = 1e-6
    dataset: str = ""  # compare only when the grader used this dataset
    scale: float = 1.0  # e.g. 0.01 for a percentage


@dataclass(frozen=True)
class AnswerSpec:
    question: str
    pattern: re.Pattern  # finds the question's heading
    hint_absent: re.Pattern | None = None  # flag an answer that does not match this
    hint_message: str = ""
    title: str = ""  # the rubric's wording of the question: found by text when no heading matches


@dataclass(frozen=True)
class NotebookConfig:
    filename: str
    fixed: str = "code"  # code: every template code cell, outside its solution regions; none
    deduct: float = 0.0  # points per edited or deleted fixed cell (0: flag only)
    deduct_max: float = 0.0  # cap on the deduction (0: no cap)
    cell_timeout: float = 60.0
    notebook_timeout: float = 300.0
    full_cell_timeout: float = 1800.0
    full_notebook_timeout: float = 3600.0
    memory_gb: float = 4.0
    data: str = ""  # the dataset the notebook's own cells load: mnist | cifar100 | ""
    data_path: str = ""  # where the notebook reads it, relative to its folder (cifar100)
    cells: tuple[CellPolicy, ...] = ()
    claims: tuple[Claim, ...] = ()
    answers: tuple[AnswerSpec, ...] = ()
    question_patterns: tuple[re.Pattern, ...] = ()  # every question's heading: ends an answer


def question_pattern(qid: str, heading: str = "") -> re.Pattern:
    """The rubric's `heading` regex, or the id as a token: `Q2.5` must not match `Q2.5.1`."""
    if heading:
        return re.compile(heading, re.I)
    return re.compile(r"(?<![\w.])" + re.escape(qid) + r"(?!\w|\.\d)")


def load_config(rubric_file: Path, filename: str) -> NotebookConfig:
    """The `[notebook]` table and the questions' `heading` / `answer_hint` keys (the rubric
    loader ignores them; they only concern the notebook)."""
    raw = load_toml(rubric_file)
    table = raw.get("notebook", {})
    try:
        cells = tuple(CellPolicy(re.compile(c["match"], re.S), c.get("light", "run"), bool(c.get("data", False)),
                                 c.get("why", "")) for c in table.get("cells", []))
        claims = tuple(_claim(c) for c in table.get("claims", []))
        answers, patterns = [], []
        for q in raw.get("questions", []):
            pattern = question_pattern(q["id"], q.get("heading", ""))
            patterns.append(pattern)
            if q.get("manual"):
                hint = q.get("answer_hint", {})
                answers.append(AnswerSpec(q["id"], pattern, re.compile(hint["absent"], re.I) if hint else None,
                                          hint.get("message", ""), q.get("title", "")))
    except (KeyError, re.error, TypeError) as exc:
        raise RubricError(f"{rubric_file}: [notebook] settings: {type(exc).__name__}: {exc}") from exc
    numbers = {k: float(table[k]) for k in ("deduct", "deduct_max", "cell_timeout", "notebook_timeout",
                                             "full_cell_timeout", "full_notebook_timeout", "memory_gb") if k in table}
    config = NotebookConfig(filename=filename, fixed=table.get("fixed", "code"), data=table.get("data", ""),
                            data_path=table.get("data_path", ""), cells=cells, claims=claims,
                            answers=tuple(answers), question_patterns=tuple(patterns), **numbers)
    problems = [f"cell policy light = {c.light!r} (run or skip)" for c in cells if c.light not in ("run", "skip")]
    problems += [f"claim {c.label!r}: compare = {c.compare!r} ({', '.join(COMPARES)})" for c in claims
                 if c.compare not in COMPARES]
    if config.fixed not in ("code", "none"):
        problems.append(f"fixed = {config.fixed!r} (code or none)")
    if problems:
        raise RubricError(f"{rubric_file}: [notebook]: " + "; ".join(problems))
    return config


def _claim(raw: dict[str, Any]) -> Claim:
    output = raw["output"].replace("NUM", f"(?:{NUM})")
    return Claim(label=raw["label"], cell=re.compile(raw["cell"], re.S) if raw.get("cell") else None,
                 output=re.compile(output, re.M), check=raw["check"], field=raw.get("field", "got"),
                 key=raw.get("key", ""),
                 compare=raw.get("compare", "relative"), tolerance=float(raw.get("tolerance", 1e-6)),
                 dataset=raw.get("dataset", ""), scale=float(raw.get("scale", 1.0)))


# ---------------------------------------------------------------------- loading


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


# ---------------------------------------------------------------------- the template


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
        lines = _norm_lines(ANSWER.sub(ANSWER_PLACEHOLDER, cell.source) if answer else cell.source)
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


def _norm_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return lines


# ---------------------------------------------------------------------- matching and edits


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
    student = [(i, c.get("cell_type"), _norm_lines(c.get("source", ""))) for i, c in enumerate(cells)]
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
            score = 1.0 if hits else similarity(t.lines, student[i][2])
            if not hits and any(t.region):  # the student's code replaces the stubs: judge the rest
                score = max(score, _coverage(t, student[i][2]))
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
        s_lines = _norm_lines(cells[s_index].get("source", ""))
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
            and c.get("source", "").strip()]


def wrong_assignment(template: list[TemplateCell], matches: dict[int, int]) -> bool:
    """Fewer than a quarter of the template's cells found: another assignment's notebook."""
    wanted = [t for t in template if not t.answer and t.lines]
    return bool(wanted) and len([t for t in wanted if t.index in matches]) < 0.25 * len(wanted)


# ---------------------------------------------------------------------- written answers


@dataclass
class Answer:
    question: str
    state: str  # answered | empty | placeholder | missing (heading not found) | no notebook
    text: str = ""
    cells: list[int] = field(default_factory=list)  # 1-based cell numbers
    flags: list[str] = field(default_factory=list)
    found_by: str = ""  # heading | question text (another version of the handout words it differently)


# Word-level similarity from which a cell asks the template's question. Measured on the older-
# handout fixtures: true pairs 0.86..1.0, the next best cell at most 0.67 (a similar question,
# or a cell that talks about the same topic).
TEXT_MATCH = 0.75


def find_answers(cells: list[Any], template: list[TemplateCell], matches: dict[int, int],
                 config: NotebookConfig) -> dict[str, Answer]:
    """For each manual question: the cells after its heading, up to the next question
    heading or the next cell that belongs to the template outside its answers (so students
    may add, split or merge answer cells freely). A question whose heading is not there (a
    notebook from another version of the handout words it differently) is found by its text:
    the template cell that asks it, matched by content, or the cell most similar to it."""
    matched_to = {s: t for t, s in matches.items()}
    scaffold = {line.strip() for t in template if t.answer for line in t.lines if line.strip()}
    starts: dict[str, tuple[int, str, list[str]]] = {}
    for spec in config.answers:
        start = _heading_cell(cells, spec.pattern)
        if start is not None:
            starts[spec.question] = (start, "heading", [])
    unfound = [spec for spec in config.answers if spec.question not in starts]
    starts.update(_questions_by_text(cells, template, matches, unfound, {s for s, _, _ in starts.values()}))
    boundaries = {s for s, _, _ in starts.values()}
    answers: dict[str, Answer] = {}
    for spec in config.answers:
        if spec.question not in starts:
            answers[spec.question] = Answer(spec.question, "missing")
            continue
        start, found_by, question_lines = starts[spec.question]
        parts, numbers = [], []
        extra = _extra_heading_text(cells[start], template, matched_to.get(start), spec.pattern, question_lines)
        if extra:
            parts.append(extra)
            numbers.append(start + 1)
        for i in range(start + 1, len(cells)):
            cell = cells[i]
            t = matched_to.get(i)
            if i in boundaries or (t is not None and not template[t].answer):
                break
            source = cell.get("source", "")
            if cell.get("cell_type") == "markdown" and any(p.search(h) for p in config.question_patterns
                                                           for _, h in HEADING.findall(source)):
                break
            if not source.strip():
                continue
            parts.append(f"```python\n{source.strip()}\n```" if cell.get("cell_type") == "code" else source.strip())
            numbers.append(i + 1)
        text = "\n\n".join(parts)
        answer = Answer(spec.question, _answer_state(text, scaffold), text[:MAX_ANSWER_CHARS], numbers,
                        found_by=found_by)
        if answer.state == "answered" and spec.hint_absent is not None and not spec.hint_absent.search(text):
            answer.flags.append(spec.hint_message or f"the answer does not match /{spec.hint_absent.pattern}/")
        answers[spec.question] = answer
    return answers


def _heading_cell(cells: list[Any], pattern: re.Pattern) -> int | None:
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown" and any(pattern.search(h) for _, h in HEADING.findall(cell.source)):
            return i
    for i, cell in enumerate(cells):  # the student removed the '#': the cell starts with the question
        first = next((line for line in cell.get("source", "").splitlines() if line.strip()), "")
        if cell.get("cell_type") == "markdown" and pattern.match(first.strip().lstrip("*_>[(-").lstrip()):
            return i
    return None


def _questions_by_text(cells: list[Any], template: list[TemplateCell], matches: dict[int, int],
                       specs: list[AnswerSpec], taken: set[int]) -> dict[str, tuple[int, str, list[str]]]:
    """question -> (cell index, "question text", the question's lines in the template) for the
    questions whose heading is not in the notebook: each is paired with the markdown cell whose
    words are most like the template cell that asks it (or the rubric title), best pairs first,
    each cell once. Similar questions ("Q1.1: ∇a² J", "Q1.2: ∇b² J") are told apart by the
    words that differ; a cell the content matching paired with the asking cell gets a small edge."""
    pairs: list[tuple[float, int, str]] = []
    asked: dict[str, list[str]] = {}
    for spec in specs:
        asking = next((t for t in template if t.cell_type == "markdown" and not t.answer
                       and any(spec.pattern.search(h) for _, h in HEADING.findall(t.source))), None)
        asked[spec.question] = asking.lines if asking else []
        targets = [w for w in (_words(asking.source) if asking else [], _words(spec.title)) if len(w) >= 2]
        for i, cell in enumerate(cells):
            if cell.get("cell_type") != "markdown" or i in taken or not _asks(cell.get("source", "")):
                continue
            words = _words(cell.get("source", ""))
            score = max((_text_similarity(target, words) for target in targets), default=0.0)
            if asking is not None and matches.get(asking.index) == i:
                score += 0.05
            if score >= TEXT_MATCH:
                pairs.append((score, -i, spec.question))
    found: dict[str, tuple[int, str, list[str]]] = {}
    used = set(taken)
    for _, neg_i, question in sorted(pairs, reverse=True):
        if question not in found and -neg_i not in used:
            found[question] = (-neg_i, "question text", asked[question])
            used.add(-neg_i)
    return found


def _asks(source: str) -> bool:
    """A cell that can open a question: it has a heading, or starts with a bold line (answer
    cells, which may repeat the question's symbols, have neither)."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return bool(HEADING.search(source)) or (first.startswith(("**", "__")) and not first.lower().startswith(
        ("**answer", "__answer")))


def _words(text: str) -> list[str]:
    """Lower-case words without markdown, points ("[5pts]", "(5 points)") or question ids."""
    text = re.sub(r"[\[(]\s*\d+\s*(?:pts?|points?)\s*[\])]", " ", text, flags=re.I)
    text = re.sub(r"\b(?:q(?:uestion)?|problem|part)\s*[\d.]+\w*", " ", text, flags=re.I)
    text = re.sub(r"(?<![\w.])\d+(?:\.\d+)+(?![\w.])", " ", text)  # section numbers: 1.1, 2.5.3
    return re.findall(r"[a-z0-9]+", text.lower())


def _text_similarity(target: list[str], words: list[str]) -> float:
    """How much of the target's wording the cell has, in order (a cell may add text around it
    or reword a little); a cell much longer than the question is an answer, not the question."""
    if not target or not words or len(words) > 4 * len(target) + 20:
        return 0.0
    matcher = difflib.SequenceMatcher(None, target, words, autojunk=False)
    covered = sum(b.size for b in matcher.get_matching_blocks()) / len(target)
    return max(matcher.ratio(), covered if len(target) >= 6 else 0.0)


def _extra_heading_text(cell: Any, template: list[TemplateCell], t_index: int | None, pattern: re.Pattern,
                        question_lines: list[str] | None = None) -> str:
    """What a student wrote into the question's own cell, below the question."""
    lines = _norm_lines(cell.get("source", ""))
    if t_index is not None:
        known = set(template[t_index].lines)
        lines = [line for line in lines if line not in known]
    if question_lines:  # found by text: the reworded question itself is not the answer
        asked = [_words(q) for q in question_lines if q.strip()]
        lines = [line for line in lines if not HEADING.match(line)
                 and not any(_text_similarity(q, _words(line)) >= TEXT_MATCH for q in asked if q)]
    elif t_index is None:
        lines = [line for line in lines if not (HEADING.match(line) and pattern.search(line))]
    return "\n".join(lines).strip()


def _answer_state(text: str, scaffold: set[str]) -> str:
    if not text.strip():
        return "empty"
    body = "\n".join(line for line in text.splitlines() if line.strip() not in scaffold)
    plain = re.sub(r"[*_`#>\s:.-]+", " ", body).strip().lower()
    had_placeholder = any(p in text.lower() for p in PLACEHOLDERS) or ANSWER_PLACEHOLDER in text
    for phrase in PLACEHOLDERS:
        plain = plain.replace(phrase, " ")
    if len(re.findall(r"\w", plain)) < 3:
        return "placeholder" if had_placeholder else "empty"
    return "answered"


# ---------------------------------------------------------------------- claimed numbers


def output_text(cell: Any) -> str:
    """What a code cell printed: its streams and plain-text results, in order."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") != "grader-truncated":
            text = out.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
        elif kind in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain", "")
            parts.append(("".join(plain) if isinstance(plain, list) else str(plain)) + "\n")
    return "".join(parts)


def claim_cell(cells: list[Any], template: list[TemplateCell], matches: dict[int, int], claim: Claim) -> int | None:
    """The submitted cell that prints the claim: the match of the template cell the claim
    names, else the first submitted code cell whose source matches."""
    if claim.cell is None:
        return None
    for t in template:
        if t.cell_type == "code" and claim.cell.search(t.source) and t.index in matches:
            return matches[t.index]
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and claim.cell.search(cell.get("source", "")):
            return i
    return None


def read_claim(cell: Any, claim: Claim) -> dict[str, float]:
    """key -> value for every match of the claim's output pattern ("" when there is no key)."""
    values: dict[str, float] = {}
    for match in claim.output.finditer(output_text(cell)):
        groups = match.groupdict()
        raw = groups.get("value") or (match.group(1) if match.re.groups else match.group(0))
        try:
            values[groups.get("key") or ""] = float(raw) * claim.scale
        except (TypeError, ValueError):
            continue
    return values


def agrees(claim: Claim, claimed: float, reproduced: float) -> bool:
    if claimed != claimed or reproduced != reproduced:  # nan on either side
        return claimed != claimed and reproduced != reproduced
    if claim.compare == "absolute":
        return abs(claimed - reproduced) <= claim.tolerance
    if claim.compare == "error":  # error sizes vary run to run: only which side of the bound matters
        return (claimed <= claim.tolerance) == (reproduced <= claim.tolerance)
    return abs(claimed - reproduced) <= claim.tolerance * max(abs(reproduced), 1e-12)
