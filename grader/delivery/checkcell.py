"""`check("Q2.1")` in a student's notebook: the public checks of one question (every question
with `check()`), run exactly as `mlp-grader check` runs them, shown as a table in the cell.

The kernel never grades its own objects. Each call asks a separate process (`python -m grader
check --serve`, started at the first call) to run the engine, which runs the student's files
*as saved on disk* in a sandboxed probe, so the verdict is the one the terminal command and the TA's grading
give for those files (tests/test_checkcell.py proves it on the fixtures). What the notebook
itself holds (objects of an older import, unsaved edits) cannot change the verdict; the cell
warns where it can see that the notebook and the disk disagree.

No jinja2 here: the kit does not install it (the terminal check does not need it) and a kernel
with only ipykernel must still show the table; every text is escaped with html.escape.
"""
from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.delivery.selfcheck import STATUS_WORD, later_message, student_traceback
from grader.notebooks.checkcells import CHECK_CELL_VERSION, is_check_cell

COLOURS = {"PASS": "#1a7f37", "PARTIAL": "#9a6700", "FAIL": "#cf222e", "ERROR": "#cf222e", "TIMEOUT": "#cf222e"}


def notebook_checker(assignment: str, version: int = 1) -> "Checker | Unavailable":
    """What the notebook's import cell binds to `check`; a notebook written for a newer kit
    gets one line saying so."""
    if version > CHECK_CELL_VERSION:
        return Unavailable(f"this notebook expects self-check version {version}, the installed kit has "
                           f"{CHECK_CELL_VERSION}: reinstall the kit (pip install --force-reinstall ./selfcheck), "
                           f"or run `mlp-grader check` in a terminal")
    return Checker(assignment, _ImportTimes.install())


@dataclass
class Unavailable:
    message: str

    def __call__(self, question: str | None = None) -> None:
        print(self.message)


class Checker:
    """`check(question=None)`: returns a CheckView, which Jupyter shows as a table."""

    def __init__(self, assignment: str, imports: "_ImportTimes"):
        self.assignment = assignment
        self.imports = imports
        self.server = CheckServer()

    def __call__(self, question: str | None = None, folder: str | os.PathLike | None = None) -> "CheckView":
        folder = Path(folder or os.getcwd()).resolve()  # a kernel starts in its notebook's folder
        started = time.time()
        try:
            data = self.server.ask({"folder": str(folder), "assignment": self.assignment,
                                    "question": str(question) if question else None})
        except CheckServerError as exc:
            return CheckView(question, folder, error=f"the self-check did not run: {exc}")
        if "error" in data:
            return CheckView(question, folder, error=data["error"])
        view = CheckView(question, folder, data=data, ran_at=started)
        view.warnings = self.imports.stale(folder) + _unsaved_notebook(folder, data.get("notebook", ""))
        return view

    def __repr__(self) -> str:
        return f"check(question=None): the public checks of {self.assignment} on your saved files"


class CheckServerError(Exception):
    pass


class CheckServer:
    """`mlp-grader check --serve` in a separate process, started at the first check and kept
    for the next ones (an interpreter's start and the engine's imports cost about 0.5 s per
    check otherwise). It runs every check as `mlp-grader check` does and never sees the kernel's
    objects. Replies carry the request's id: one left over from a check the student interrupted
    is skipped, not taken for the next one's."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.stderr: Any = None  # the server's stderr, for the one line to show when it stops
        self.asked = 0

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        for attempt in (1, 2):  # a server that died (killed, or the kit reinstalled) is restarted once
            if self.process is None or self.process.poll() is not None:
                self.process = self._start()
            self.asked += 1
            try:
                self.process.stdin.write(json.dumps({"id": self.asked, **request}) + "\n")
                self.process.stdin.flush()
                while True:
                    line = self.process.stdout.readline()
                    if not line:
                        raise BrokenPipeError
                    reply = json.loads(line)
                    if reply.pop("id", None) == self.asked:
                        return reply
            except (BrokenPipeError, ValueError):
                self.process.kill()
                self.process.wait()
                if attempt == 2:
                    raise CheckServerError(self._last_error() or "the check process stopped")
        raise AssertionError("unreachable")

    def _start(self) -> subprocess.Popen:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        return subprocess.Popen([sys.executable, "-m", "grader", "check", "--serve"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def _last_error(self) -> str:
        self.stderr.seek(0)
        lines = [line for line in self.stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def __del__(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()  # the server ends at the end of its input


@dataclass
class CheckView:
    """One check cell's output: rich HTML in Jupyter, VS Code and JupyterLab, text elsewhere."""
    question: str | None
    folder: Path
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    ran_at: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, Any]]:
        asked = self._questions()
        return [c for q in asked for c in q["checks"] if c["status"] != "skipped"]

    @property
    def points(self) -> tuple[float, float]:
        return sum(c["points"] for c in self.rows), sum(c["max_points"] for c in self.rows)

    @property
    def passed(self) -> bool:
        return not self.error and all(c["status"] == "passed" for c in self.rows)

    def what_ran(self) -> str:
        scope = f"public checks of {self.question}" if self.question else "every public check"
        files = self._code_files()
        if not files:
            return f"{scope}, in {self.folder}"
        newest = max(files, key=lambda p: p.stat().st_mtime)
        saved = time.strftime("%H:%M:%S", time.localtime(newest.stat().st_mtime))
        if len(files) == 1:
            return f"{scope}, on {newest.name} as saved on disk at {saved}"
        return (f"{scope}, on your {len(files)} code files as saved on disk "
                f"(last saved: {newest.relative_to(self.folder).as_posix()} at {saved})")

    def notes(self) -> list[str]:
        """Below the table: training checks not run here, and what only the hand-in decides."""
        asked = self._questions()
        lines = []
        training = [c for q in asked for c in q["checks"] if c["status"] == "skipped" and "--full" in c["message"]]
        if training:
            lines.append(f"{sum(c['max_points'] for c in training):g} points of training checks are not run in the "
                         "notebook: run `mlp-grader check --full` in a terminal")
        later = self.data.get("graded_later", {})
        manual = sum(q["max_points"] for q in asked if q["manual"])
        message = later_message(sum(later.get(q["id"], 0.0) for q in asked), manual)
        if message:
            lines.append(message)
        return lines

    def __repr__(self) -> str:
        if self.error:
            return f"check: {self.error}"
        lines = [f"{self.what_ran()} (sandbox: {self.data['result'].get('sandbox')})"]
        lines += [f"warning: {w}" for w in self.warnings]
        for c in self.rows:
            word = STATUS_WORD.get(c["status"], c["status"].upper())
            lines.append(f"{word:8s}{c['points']:>5g}/{c['max_points']:<4g} {c['id']}  {c['message']}")
            lines += [f"        {line}" for line in self._detail(c)]
        earned, possible = self.points
        lines.append(f"public checks: {earned:g}/{possible:g} points ({self.data.get('seconds', 0):.1f} s)")
        return "\n".join(lines + self.notes())

    def _repr_html_(self) -> str:
        e = html.escape
        if self.error:
            return f'<div style="color:#cf222e"><b>check:</b> {e(self.error)}</div>'
        parts = [f"<div><b>{e(self.what_ran())}</b> <small>(sandbox: {e(str(self.data['result'].get('sandbox')))})"
                 "</small></div>"]
        parts += [f'<div style="color:#9a6700">&#9888; {e(w)}</div>' for w in self.warnings]
        parts.append('<table style="border-collapse:collapse;margin:4px 0"><tr><th style="text-align:left">result'
                     '</th><th>points</th><th style="text-align:left">check</th><th style="text-align:left">'
                     'message</th></tr>')
        for c in self.rows:
            word = STATUS_WORD.get(c["status"], c["status"].upper())
            detail = "".join(f"<pre style='margin:2px 0'>{e(line)}</pre>" for line in self._detail(c))
            parts.append(f'<tr><td style="color:{COLOURS.get(word, "inherit")};font-weight:bold">{word}</td>'
                         f'<td>{c["points"]:g}/{c["max_points"]:g}</td><td><code>{e(c["id"])}</code></td>'
                         f'<td style="text-align:left">{e(c["message"])}{detail}</td></tr>')
        earned, possible = self.points
        parts.append(f"</table><div>public checks: <b>{earned:g}/{possible:g}</b> points "
                     f"({self.data.get('seconds', 0):.1f} s)</div>")
        parts += [f"<div>{e(line)}</div>" for line in self.notes()]
        return "\n".join(parts)

    def _questions(self) -> list[dict[str, Any]]:
        questions = self.data.get("result", {}).get("questions", [])
        return [q for q in questions if not self.question or q["id"] == self.question]

    def _detail(self, check: dict[str, Any]) -> list[str]:
        if check["status"] == "passed":
            return []
        details = check.get("details") or {}
        lines = []
        got, expected = details.get("got"), details.get("expected")
        if got is not None or expected is not None:
            lines.append(f"measured: {got}   expected: {expected}")
        if details.get("error"):
            lines += student_traceback(details["error"])
        return lines

    def _code_files(self) -> list[Path]:
        """The student's own code files the check read (course-provided files left out)."""
        files = self.data.get("result", {}).get("files", {})
        owned = self.data.get("owned", [])
        mine = [rel for rel in files if rel.endswith(".py")
                and any(rel == o or rel.startswith(o.rstrip("/") + "/") for o in owned)]
        return [self.folder / rel for rel in (mine or [r for r in files if r.endswith(".py")])
                if (self.folder / rel).is_file()]


class _ImportTimes:
    """When this kernel imported each module: an audit hook (the `import` event fires when a
    module is loaded, not when it is found in sys.modules) records the time, so a file saved
    after that can be named. Modules imported before the import cell ran are not known, nor
    reloads (importlib.reload, %autoreload): for those the cell says nothing."""

    _installed: "_ImportTimes | None" = None

    def __init__(self) -> None:
        self.loaded: dict[str, float] = {}

    @classmethod
    def install(cls) -> "_ImportTimes":
        if cls._installed is None:  # one hook per kernel: audit hooks cannot be removed
            cls._installed = cls()
            sys.addaudithook(cls._installed._hook)
        return cls._installed

    def _hook(self, event: str, args: tuple) -> None:
        if event == "import":
            self.loaded[args[0]] = time.time()

    def stale(self, folder: Path) -> list[str]:
        warnings = []
        for name, loaded in sorted(self.loaded.items()):
            path = getattr(sys.modules.get(name), "__file__", None)
            if not path or not Path(path).resolve().is_relative_to(folder):
                continue
            mtime = os.stat(path).st_mtime
            if mtime > loaded:
                rel = Path(path).resolve().relative_to(folder).as_posix()
                warnings.append(f"{rel} was saved at {_clock(mtime)}, after this notebook imported it at "
                                f"{_clock(loaded)}: the check used the saved file, your notebook's cells still "
                                "use the old one (restart the kernel, or re-run the import)")
        return warnings


def _unsaved_notebook(folder: Path, notebook: str) -> list[str]:
    """Cells this kernel ran whose text is not in the notebook file as saved: unsaved edits (or
    cells edited after they ran). Only the kernel's own history is visible, never the editor."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    if shell is None:  # plain Python, not a kernel: no notebook to compare with
        return []
    path = _notebook_path(folder, notebook, shell.user_ns)
    if path is None:
        return []
    try:
        saved = {_norm(c.get("source", "")) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    ran = [s for s in shell.history_manager.input_hist_raw[1:-1] if s.strip() and not is_check_cell(s)]
    differ = [s for s in ran if _norm(s) not in saved]
    if not differ:
        return []
    return [f"{len(differ)} cell(s) you ran are not in {path.name} as saved at {_clock(path.stat().st_mtime)}: "
            "unsaved edits (or cells edited since they ran). The check reads files as saved: save the notebook "
            "(Ctrl-S) and your code files before you hand in"]


def _notebook_path(folder: Path, notebook: str, user_ns: dict[str, Any]) -> Path | None:
    """The notebook this kernel runs: VS Code names it in the namespace, Jupyter Server in
    JPY_SESSION_NAME (a path relative to the server's root, or absolute); else the rubric's
    notebook in the folder."""
    named = user_ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME") or ""
    for path in (Path(named), folder / Path(named).name) if named else ():
        if path.suffix == ".ipynb" and path.is_file():
            return path
    path = folder / notebook
    return path if notebook and path.is_file() else None


def _norm(source: Any) -> str:
    text = "".join(source) if isinstance(source, list) else str(source)
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))
