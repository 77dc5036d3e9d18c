"""The written answers: each manual question's answer found under its heading (or by the
question's text when the heading was changed), with its state (answered, placeholder, empty)."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from grader.notebooks.checkcells import is_check_cell
from grader.notebooks.config import AnswerSpec, NotebookConfig
from grader.notebooks.matching import TemplateCell, norm_lines
from grader.regions import ANSWER_PLACEHOLDER

PLACEHOLDERS = ("your answer here", "double click here to add a solution", "double-click here to add a solution",
                "write your answer here", "type your answer here", "todo")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*)$", re.M)
MAX_ANSWER_CHARS = 20_000


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
            if not source.strip() or (cell.get("cell_type") == "code" and is_check_cell(source)):
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
    lines = norm_lines(cell.get("source", ""))
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
