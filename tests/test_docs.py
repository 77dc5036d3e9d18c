"""The documentation: README.md stays a short front door, and every relative link in README.md
and docs/*.md leads to a file of the repository and, for `#anchor` links, to a heading of it
(GitHub's heading ids)."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from conftest import REPO

README_MAX_LINES = 230

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
# [text](target) and ![alt](target); the target may be <...> and may carry a "title"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def markdown_files(root: Path = REPO) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks (those lines blanked, so line numbers hold)."""
    lines, fenced = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fenced is None and match:
            fenced = match.group(1)
            lines.append("")
        elif fenced is not None:
            if line.strip().startswith(fenced):
                fenced = None
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


def slug(heading: str) -> str:
    """GitHub's id for a heading: its text without markup, lower case, without punctuation
    (letters, marks, digits, `_`, `-` and spaces stay), spaces as `-`."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link reads as its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    kept = [c for c in text if c in " -" or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"]
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading id of a Markdown file, the second `x` heading being `x-1` as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text(encoding="utf-8")).splitlines():
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link outside code blocks and code spans."""
    text = prose(path.read_text(encoding="utf-8"))
    text = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return [(text.count("\n", 0, m.start()) + 1, m.group(1).strip("<>")) for m in LINK.finditer(text)]


def broken_links(files: list[Path], root: Path = REPO) -> list[str]:
    problems = []
    for path in files:
        for line, target in links(path):
            where = f"{path.relative_to(root)}:{line}: {target}"
            if not target:
                problems.append(f"{where}: empty link")
                continue
            if SCHEME.match(target):
                continue  # a web address
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
            if file_part.startswith("/") or not resolved.is_relative_to(root.resolve()):
                problems.append(f"{where}: outside the repository")
            elif not resolved.exists():
                problems.append(f"{where}: no such file")
            elif anchor:
                if resolved.suffix != ".md" or not resolved.is_file():
                    problems.append(f"{where}: an anchor into a file that is not Markdown")
                elif anchor not in anchors(resolved):
                    problems.append(f"{where}: no heading #{anchor} in {resolved.relative_to(root.resolve())}")
    return problems


def test_every_relative_link_in_the_docs_resolves():
    files = markdown_files()
    assert all(path.is_file() for path in files)
    assert len(files) > 2  # README.md and docs/ are there
    assert sum(len(links(path)) for path in files) > 20  # the links were found at all
    assert broken_links(files) == []


def test_readme_is_a_short_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_link_check_finds_broken_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Title\n\n## Quick `start`: now\n\n"
        "[ok](docs/a.md) [ok](docs/a.md#some-heading) [ok](#quick-start-now) [web](https://example.org)\n"
        "`[in code](docs/missing.md)`\n\n```\n[in a block](docs/missing.md)\n```\n"
        "[missing file](docs/missing.md) [missing anchor](docs/a.md#nope) [outside](../elsewhere.md)\n"
        "[anchor in README](#title-1)\n",
        encoding="utf-8")
    (tmp_path / "docs" / "a.md").write_text("# A\n\n### Some heading\n", encoding="utf-8")
    (tmp_path / "elsewhere.md").write_text("x\n", encoding="utf-8")
    problems = broken_links(markdown_files(tmp_path), tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "docs/missing.md: no such file",
        "docs/a.md#nope: no heading #nope in docs/a.md",
        "../elsewhere.md: outside the repository",
        "#title-1: no heading #title-1 in README.md",
    ], problems


def test_github_heading_ids():
    assert slug("Notebooks: execution, edited cells, claimed numbers, written answers") == \
        "notebooks-execution-edited-cells-claimed-numbers-written-answers"
    assert slug("Assignment 1 checks (a1: 59 autograded of 100)") == "assignment-1-checks-a1-59-autograded-of-100"
    assert slug("The template: `mlp-grader assign`") == "the-template-mlp-grader-assign"
    assert slug("result.json") == "resultjson"
    assert slug("1. The reference solution, with its solution regions marked") == \
        "1-the-reference-solution-with-its-solution-regions-marked"


def test_the_student_guide_shows_the_readmes_student_commands():
    """The README's "For students" block (tests/test_kit_install.py runs it) is the one the
    student guide shows."""
    def block(text: str) -> str:
        return re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    readme = (REPO / "README.md").read_text(encoding="utf-8").split("\n## For students\n", 1)[1].split("\n## ", 1)[0]
    guide = (REPO / "docs" / "student-guide.md").read_text(encoding="utf-8")
    assert block(readme) == block(guide)
