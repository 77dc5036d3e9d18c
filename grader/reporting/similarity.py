"""Similarity flags between the submissions of a batch: which pairs of students share much of
their own code. A grading aid for the TA; it never changes points.

Fingerprinting is copydetect's (winnowed k-grams over a token stream in which every variable,
function and class name is replaced by one letter, so renaming does not hide a copy and, the
fingerprints being a set, neither does reordering functions). What each student owns is compared:
the rubric's owned code files and the code cells of their notebook. The boilerplate — the
template the students received and any starter files the TA names — is fingerprinted the same
way and removed from every submission first, otherwise every pair shares the handout's code.

The score of a pair is the larger of the two shares of a student's own (non-boilerplate) code
found in the other's (copydetect's per-file similarity); a pair is flagged at THRESHOLD or above
and when at least MIN_TOKENS tokens match (a student who wrote ten lines of their own is not a
copy because those lines look like someone else's). Measured on real public pset4 copies with
the right starter as boilerplate: the one copied pair scores 1.0, every other pair at most ≈0.66.
"""
from __future__ import annotations

import io
import itertools
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from grader.files import safe_name
from grader.notebooks.reading import load_notebook
from grader.reporting.render import ENV

THRESHOLD = 0.8
MIN_TOKENS = 100  # matching characters of the filtered token stream (copydetect's unit)
NOISE = 25  # k-gram length: copydetect's default noise threshold
WINDOW = 1  # copydetect's default (guarantee threshold 25 = noise threshold): every k-gram kept
RESULT_FILE = "similarity.json"
PAGES = "similarity"


@dataclass
class Segment:
    text: str
    match: bool
    skipped: int = 0  # lines of unmatched code left out here (the view shows CONTEXT lines around matches)


@dataclass
class SimilarPair:
    assignment: str
    a: str
    b: str
    score: float  # max(score_a, score_b)
    score_a: float  # share of a's own code found in b's
    score_b: float
    matched_tokens: int
    page: str = ""  # side-by-side view, relative to the output folder
    flagged: bool = False


@dataclass
class SimilarityReport:
    """Per assignment, the flagged pairs and how many pairs were compared."""
    threshold: float = THRESHOLD
    starters: list[str] = field(default_factory=list)  # starter folders named by the TA (the template always counts)
    compared: dict[str, int] = field(default_factory=dict)  # assignment -> pairs compared
    highest_unflagged: dict[str, float] = field(default_factory=dict)
    pairs: list[SimilarPair] = field(default_factory=list)  # flagged only, highest first

    def for_assignment(self, assignment: str) -> list[SimilarPair]:
        return [p for p in self.pairs if p.assignment == assignment]

    def write(self, folder: Path) -> Path:
        path = Path(folder) / RESULT_FILE
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> "SimilarityReport | None":
        try:
            data = json.loads((Path(folder) / RESULT_FILE).read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)}  # a file from another grader version may carry more
            data = {k: v for k, v in data.items() if k in known}
            data["pairs"] = [SimilarPair(**p) for p in data.get("pairs", [])]
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def own_code(folder: Path, owned: tuple[str, ...]) -> str:
    """The student's own code as one Python text: owned .py files, then the code cells of owned
    notebooks (the only notebook in the folder when the owned one is missing or renamed). File
    names go in as comments, which the tokenizer drops."""
    folder = Path(folder)
    parts = []
    notebooks = [rel for rel in owned if rel.endswith(".ipynb")]
    if notebooks and not any((folder / rel).is_file() for rel in notebooks):
        found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
        notebooks = found[:1] if len(found) == 1 else []
    for rel in [r for r in owned if r.endswith(".py")] + notebooks:
        path = folder / rel
        if not path.is_file():
            continue
        text = _notebook_code(path) if rel.endswith(".ipynb") else path.read_text(encoding="utf-8", errors="replace")
        parts.append(f"# ==== {rel} ====\n{text}\n")
    return "".join(parts)


def _notebook_code(path: Path) -> str:
    nb = load_notebook(path).nb  # salvaged as the report reads it; None: no code to compare
    if nb is None:
        return ""
    cells = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.get("cell_type") == "code":
            # IPython magics and shell escapes are not Python: comment them out
            source = "\n".join("# " + line if line.lstrip().startswith(("%", "!")) else line
                               for line in cell.get("source", "").splitlines())
            cells.append(f"# ---- cell {i} ----\n{source}\n")
    return "".join(cells)


def _fingerprint(text: str, window: int = WINDOW, boilerplate=None):
    from copydetect import CodeFingerprint

    # the name only tells copydetect's tokenizer the language (the text is passed in)
    return CodeFingerprint("submission.py", NOISE, window, boilerplate=boilerplate, fp=io.StringIO(text))


def boilerplate_hashes(texts: list[str]):
    import numpy as np

    hashes: list[int] = []
    for text in texts:
        hashes.extend(_fingerprint(text, window=1).hashes)
    return np.unique(np.array(hashes, dtype=np.int64))


def starter_texts(folders: list[Path], owned: tuple[str, ...]) -> list[str]:
    """The boilerplate of starter folders: each file on its own, and the folder composed like a
    submission (own_code joins files, which makes k-grams across the joins)."""
    return [t for d in folders for t in (*boilerplate_texts(d), own_code(d, owned))]


def boilerplate_texts(folder: Path) -> list[str]:
    """Every .py file and every notebook's code cells under a starter folder."""
    folder = Path(folder)
    texts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".ipynb") and ".ipynb_checkpoints" not in path.parts:
            texts.append(_notebook_code(path) if path.suffix == ".ipynb"
                         else path.read_text(encoding="utf-8", errors="replace"))
    return texts


def compare(assignment: str, documents: dict[str, str], boilerplate: list[str],
            threshold: float = THRESHOLD) -> tuple[list[SimilarPair], dict[str, object]]:
    """Every pair of `documents` (student -> own code) with the boilerplate removed, highest
    score first (`flagged` set on those to show), and each fingerprint keyed by student (for the
    side-by-side pages). A student with no code of their own is in no pair."""
    from copydetect import compare_files

    skip = boilerplate_hashes(boilerplate) if boilerplate else None
    prints = {name: _fingerprint(text, boilerplate=skip) for name, text in sorted(documents.items()) if text.strip()}
    prints = {name: fp for name, fp in prints.items() if fp.hashes}  # nothing of their own beyond the boilerplate
    pairs = []
    for a, b in itertools.combinations(sorted(prints), 2):
        if prints[a].hashes.isdisjoint(prints[b].hashes):  # nothing shared: skip copydetect's slicing
            pairs.append(SimilarPair(assignment, a, b, 0.0, 0.0, 0.0, 0))
            continue
        tokens, (sa, sb), _ = compare_files(prints[a], prints[b])
        pair = SimilarPair(assignment, a, b, round(float(max(sa, sb)), 4), round(float(sa), 4),
                           round(float(sb), 4), int(tokens))
        pair.flagged = pair.score >= threshold and pair.matched_tokens >= MIN_TOKENS
        pairs.append(pair)
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs, prints


CONTEXT = 3  # unmatched lines kept before and after each matching passage


def segments(fingerprint, other) -> list[Segment]:
    """`fingerprint`'s raw code cut into passages that match `other` and passages that do not;
    long unmatched stretches keep CONTEXT lines at each end, so the matches are what one reads."""
    from copydetect import compare_files

    _, _, (slices, _) = compare_files(fingerprint, other)
    code = fingerprint.raw_code
    out, at = [], 0
    for start, end in zip(*(slices if len(slices) else ([], []))):
        start, end = int(start), int(end)
        if start > at:
            out.extend(_context(code[at:start], first=not out, last=False))
        out.append(Segment(code[start:end], True))
        at = end
    if at < len(code):
        out.extend(_context(code[at:], first=not out, last=True))
    return out


def _context(text: str, first: bool, last: bool) -> list[Segment]:
    lines = text.split("\n")
    head = [] if first else lines[:CONTEXT + 1]  # the rest of the matched line, then context
    tail = [] if last else lines[-(CONTEXT + 1):]
    if len(lines) <= len(head) + len(tail) + 1:
        return [Segment(text, False)]
    skipped = len(lines) - len(head) - len(tail)
    parts = []
    if head:
        parts.append(Segment("\n".join(head) + "\n", False))
    parts.append(Segment("", False, skipped))
    if tail:
        parts.append(Segment("\n".join(tail), False))
    return parts


def pair_page_name(pair: SimilarPair) -> str:
    return f"{PAGES}/{safe_name(pair.assignment)}--{safe_name(pair.a)}--{safe_name(pair.b)}.html"


def analyse_batch(groups: dict[str, dict[str, Path]], owned: dict[str, tuple[str, ...]],
                  templates: dict[str, Path], out_dir: Path, starters: tuple[Path, ...] = (),
                  threshold: float = THRESHOLD) -> SimilarityReport:
    """The whole batch: `groups` maps assignment -> student -> submission folder, `owned` the
    rubric's owned files per assignment, `templates` the template students received per
    assignment; `starters` are more folders of boilerplate (an older handout). Writes
    OUT/similarity.json and one side-by-side page per flagged pair under OUT/similarity/."""
    out_dir = Path(out_dir)
    report = SimilarityReport(threshold=threshold)
    report.starters = [str(d) for d in starters]
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = out_dir / PAGES
    if pages.is_dir():
        for stale in pages.glob("*.html"):
            stale.unlink()
    for assignment, students in sorted(groups.items()):
        documents = {name: own_code(path, owned[assignment]) for name, path in students.items()}
        starter = starter_texts([templates[assignment], *starters], owned[assignment])
        pairs, prints = compare(assignment, documents, starter, threshold)
        flagged = [p for p in pairs if p.flagged]
        report.compared[assignment] = len(pairs)
        report.highest_unflagged[assignment] = max((p.score for p in pairs if not p.flagged), default=0.0)
        for pair in flagged:
            pair.page = pair_page_name(pair)
            html = ENV.get_template("similarity_pair.html.j2").render(
                pair=pair, left=segments(prints[pair.a], prints[pair.b]),
                right=segments(prints[pair.b], prints[pair.a]), threshold=threshold, starters=report.starters)
            (out_dir / pair.page).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / pair.page).write_text(html, encoding="utf-8")
        report.pairs.extend(flagged)
    report.write(out_dir)
    return report


def clear(out_dir: Path) -> None:
    """`--similarity off`: no flags from an earlier run may linger on the summary page."""
    (Path(out_dir) / RESULT_FILE).unlink(missing_ok=True)
    pages = Path(out_dir) / PAGES
    if pages.is_dir():
        for stale in pages.glob("*.html"):
            stale.unlink()
