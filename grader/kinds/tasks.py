"""What a check kind asks a probe to run (a `Task`: one call into student code, with its inputs
and limits) and what comes back (a `TaskOutput`: named arrays, or why there are none).

Kinds build tasks and read outputs; the engine runs them through grader/grading/probe.py, the
parent's side of the probe protocol. Both sides of that boundary use these types, so they live
here, below both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.sandbox import GiB

EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)(?::.*)?)$", re.M)
FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)', re.M)
HINTS = (
    ("name 'xrange' is not defined", "xrange is Python 2; use range in Python 3"),
    ("has no attribute 'float'", "np.float was removed in NumPy 1.24; use float or np.float64"),
    ("has no attribute 'int'.", "np.int was removed in NumPy 1.24; use int or np.int64"),
    ("MemoryError", "the code tried to use more memory than the grader allows"),
)


@dataclass(frozen=True)
class Task:
    id: str
    fn: str
    params: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    timeout: float = 20.0
    memory: int = 2 * GiB
    needs_data: bool = False
    gate: bool = False  # when this task fails, the runner stops: later tasks cannot succeed


@dataclass
class TaskOutput:
    id: str
    status: str  # ok | error | timeout
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    detail: str = ""
    error: str = ""  # traceback tail
    log: str = ""  # what the student's code printed (tail)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    not_run: bool = False  # never started: an earlier task it depends on failed

    def reason(self) -> str:
        """One line for a student: the exception raised and where in their code, with a hint
        for the classic Python 2 / old NumPy leftovers; or why the process stopped."""
        if self.not_run or not self.error.strip():
            return self.detail or self.status
        exceptions = EXCEPTION_LINE.findall(self.error)
        text = exceptions[-1] if exceptions else self.error.strip().splitlines()[-1].strip()
        frames = [f for f in FRAME.findall(self.error) if "/probe/" not in f[0] and "<frozen" not in f[0]]
        if frames:
            text += f" ({Path(frames[-1][0]).name}, line {frames[-1][1]})"
        hints = [hint for needle, hint in HINTS if needle in self.error]
        return text + ("; " + hints[0] if hints else "")

    def safe_reason(self) -> str:
        """reason() for a student who may not see the check's inputs: the exception's type and
        where in their code, without its text (an exception may quote the input it choked on).
        Import failures, time and memory limits say nothing of the inputs and stay whole."""
        if self.not_run or not self.error.strip():
            return self.reason()
        exceptions = EXCEPTION_LINE.findall(self.error)
        text = (exceptions[-1] if exceptions else "an exception").split(":", 1)[0]
        frames = [f for f in FRAME.findall(self.error) if "/probe/" not in f[0] and "<frozen" not in f[0]]
        return text + (f" ({Path(frames[-1][0]).name}, line {frames[-1][1]})" if frames else "")
