"""The rubric's notebook settings: the `[notebook]` table (file name, fixed-cell policy, claims,
data cells) and each manual question's `heading` and `answer_hint` (see rubrics/pset4.toml)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import RubricError
from grader.files import load_toml

NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf"  # a number as a claim pattern's NUM stands for it
COMPARES = ("relative", "absolute", "error")


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
