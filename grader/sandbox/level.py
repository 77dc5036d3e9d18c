"""The interface every sandbox level implements, declared once: the attributes with their one
default each, and the four methods. The levels subclass it (bwrap.py, landlock.py, process.py)
and the rest of the grader reads a level only through these names."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol

from grader.sandbox.core import Limits, SandboxRun


class SandboxLevel(Protocol):
    name: str  # as every report names it: bwrap, landlock, process, none
    # What the level does not stop, in words, for every result (a property at some levels).
    limitations: str
    warning: str = ""  # printed by the CLI when the level is chosen; empty for the grading levels
    automatic: bool = True  # may be chosen as the default
    rlimits: bool = True  # the runner applies its per-task limits
    pid_namespace: bool = False  # every process of a probe dies with it (no grace period needed)
    confines_writes: bool = False  # student code writes only its own folders: on-disk caches are safe
    # The grader is root and the probes run as the unprivileged `uid`:`gid` (files they must
    # reach are handed to that uid); False: they run as the grader's own user.
    root: bool = False

    def available(self) -> tuple[bool, str]:
        """(works here, why not)."""
        ...

    def command(self, argv: list[str], jobdir: Path, readable: list[Path], writable: list[Path],
                disk_bytes: int | None = None) -> list[str]:
        """The command line that starts argv at this level; `writable[0]` is the working copy.
        `disk_bytes`: cap on what the probe may write (a level that cannot enforce it ignores it;
        the runner also watches the size of its folders)."""
        ...

    def preexec(self, limits: Limits) -> Callable[[], None] | None:
        """What runs in the child before exec (rlimits, the uid switch); None where the platform
        has no such hook."""
        ...

    def start_refused(self, run: SandboxRun) -> bool:
        """The level's own start (not the probe) failed because the machine's process limit was
        full: run_sandboxed waits that out as it waits out a refused process start."""
        return False
