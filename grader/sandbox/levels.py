"""The sandbox levels side by side: which exist, which one grades by default, and what each one
does on this machine (`mlp-grader doctor`)."""
from __future__ import annotations

import os

from grader.errors import GraderError
from grader.sandbox.process import NoneSandbox, ProcessSandbox
from grader.sandbox.unprivileged import DoctorRow

if os.name == "posix":
    from grader.sandbox.bwrap import BwrapSandbox
    from grader.sandbox.landlock import LandlockSandbox


def sandbox_levels() -> dict[str, type]:
    """Strongest first: bwrap where user namespaces work, else landlock, else process; `none`
    last, and never chosen automatically. Windows (a student's self-check): process and none."""
    if os.name != "posix":
        return {"process": ProcessSandbox, "none": NoneSandbox}
    return {"bwrap": BwrapSandbox, "landlock": LandlockSandbox, "process": ProcessSandbox, "none": NoneSandbox}


def choose_sandbox(name: str | None = None):
    """The named level, or the strongest one that works here (never `none`)."""
    levels = sandbox_levels()
    if name:
        if name not in levels:
            raise GraderError(f"unknown sandbox level {name!r}; choose from {', '.join(levels)}")
        sandbox = levels[name]()
        ok, why = sandbox.available()
        if not ok:
            raise GraderError(f"sandbox level {name!r} is not available here: {why}")
        return sandbox
    for cls in levels.values():
        sandbox = cls()
        if sandbox.automatic and sandbox.available()[0]:
            return sandbox
    raise GraderError("no sandbox level works on this machine (run `mlp-grader doctor`)")


def doctor() -> list[DoctorRow]:
    """One row per sandbox level, strongest first: does it work here, what it stops, and how to
    fix it when it does not work."""
    ok, reason, fix = BwrapSandbox().check()
    rows = [DoctorRow("bwrap", ok, reason, fix)]
    landlock = LandlockSandbox()
    ok, reason, fix = landlock.check()
    rows.append(DoctorRow("landlock", ok, reason + (" " + landlock.limitations + "." if ok else ""), fix))
    proc = ProcessSandbox()
    ok, why = proc.available()
    rows.append(DoctorRow("process", ok, "rlimits, own process group, scrubbed environment and import path; "
                          "files and network stay visible" + (", and student code runs as root here"
                                                              if ok and os.geteuid() == 0 else "") + "."
                          if ok else why, "" if ok else "use the Docker image"))
    none = NoneSandbox()
    ok, why = none.available()
    rows.append(DoctorRow("none", ok, "no isolation at all, only a wall clock per check: for a student checking "
                          "their own code (--sandbox none); never chosen automatically." if ok else why, ""))
    return rows
