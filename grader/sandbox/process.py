"""The `process` level (any POSIX system) and the `none` level (a student's self-check only).

`process`: own session and process group (killed as a whole, and every process still in that
session too), rlimits, a scrubbed environment, a working copy in a temporary folder, and an
interpreter started with `-I -S` whose import path holds the third-party packages but not the
grader, the course material or the reference. It does not hide the filesystem or the network: a
student who knows where the grader's files are can read them. `none`: no limits beyond the
per-task wall clock and the process group; never chosen automatically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from grader.sandbox.core import GiB, Limits, resource, set_rlimit
from grader.sandbox.level import SandboxLevel


class ProcessSandbox(SandboxLevel):
    name = "process"
    # confines_writes stays False: student code can write wherever the grader's user can

    @property
    def limitations(self) -> str:
        text = ("process level: rlimits, own process group, scrubbed environment and import path, every "
                "leftover process of the probe killed; the filesystem and the network are not hidden from "
                "student code, which runs as the grader's user and can read, write or signal whatever that "
                "user can (other submissions, the output folder, the grader's /proc entries); disk writes "
                "are capped per file and in the probe's own folders only")
        if resource is None:
            text += ("; on this system (no `resource` module, e.g. Windows) there are no rlimits: no memory, CPU "
                     "or file-size limit, only the wall clock per task, and each task is a fresh interpreter")
        if getattr(os, "geteuid", lambda: -1)() == 0:
            text += "; here the grader runs as root, so student code runs as root too"
        return text

    def available(self) -> tuple[bool, str]:
        # Windows too (spawn runner, wall clock only; see `limitations`): a student's self-check
        # needs some level there, and `none` is never chosen automatically.
        return (os.name in ("posix", "nt"), "" if os.name in ("posix", "nt") else "needs a POSIX system or Windows")

    def command(self, argv: list[str], jobdir: Path, readable: list[Path], writable: list[Path],
                disk_bytes: int | None = None) -> list[str]:
        return argv

    def preexec(self, limits: Limits) -> Callable[[], None] | None:
        if resource is None:
            return None

        def apply() -> None:
            # The runner and every task inherit these; tasks lower them further.
            set_rlimit(resource.RLIMIT_AS, limits.memory_bytes + GiB)
            set_rlimit(resource.RLIMIT_FSIZE, limits.max_file_bytes * 4)
            set_rlimit(resource.RLIMIT_CORE, 0)
            set_rlimit(resource.RLIMIT_NOFILE, limits.open_files)
            if os.getuid() != 0:  # root ignores RLIMIT_NPROC; elsewhere it stops fork bombs
                set_rlimit(resource.RLIMIT_NPROC, 256)

        return apply


NONE_WARNING = (
    "WARNING: --sandbox none runs the code with NO isolation: it runs as you, can read and change "
    "your files, use the network and see your environment, and has no memory, CPU or disk limits "
    "(only a wall-clock limit per check). Use it only to check your OWN code, never to grade "
    "someone else's.")


class NoneSandbox(ProcessSandbox):
    """For a student self-checking their own code where the process level does not work: the
    probe gets its own process group and the per-task wall clock, nothing else. Never chosen
    automatically; the CLI prints `warning`."""

    name = "none"
    warning = NONE_WARNING
    automatic = False
    rlimits = False
    limitations = "none: " + NONE_WARNING.removeprefix("WARNING: ")

    def preexec(self, limits: Limits) -> Callable[[], None] | None:
        return None if resource is None else (lambda: None)
