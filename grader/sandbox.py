"""Sandbox levels: how a probe process is started and what it is kept from.

`process` (any POSIX system): own session and process group (killed as a whole), rlimits,
a scrubbed environment, a working copy in a temporary folder, and an interpreter started
with `-I -S` whose import path holds the third-party packages but not the grader, the course
material or the reference. It does not hide the filesystem or the network: a student who knows
where the grader's files are can read them. `bwrap` adds a mount namespace with a read-only
minimal view, no network and its own pid namespace (see grader/bwrap.py).
"""
from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import GraderError

GiB = 1024**3
# Entries of site-packages a probe must not import: the grader, the course material, and the
# hooks of an editable install that would put the source checkout on the path.
HIDDEN_SITE_ENTRIES = ("grader", "grader_course", "mlp_grader")


@dataclass(frozen=True)
class Limits:
    wall_seconds: float
    memory_bytes: int = 4 * GiB
    max_file_bytes: int = 64 * 1024**2
    open_files: int = 256


def probe_environment(home: Path) -> dict[str, str]:
    """Nothing of the grader's environment (tokens, paths) reaches student code."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".matplotlib"),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def build_site_view(target: Path) -> list[str]:
    """A folder of links to everything in site-packages except the grader and its material."""
    target.mkdir(parents=True, exist_ok=True)
    for source in _site_dirs():
        for entry in sorted(source.iterdir()):
            name = entry.name
            if name.endswith(".pth") or name.startswith("__editable__"):
                continue
            if any(name == h or name.startswith(h + "-") or name.startswith(h + ".") for h in HIDDEN_SITE_ENTRIES):
                continue
            link = target / name
            if not link.exists():
                link.symlink_to(entry)
    return [str(target)]


def _site_dirs() -> list[Path]:
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return [Path(p) for p in sorted(paths) if Path(p).is_dir()]


class ProcessSandbox:
    name = "process"
    limitations = (
        "process level: rlimits, own process group, scrubbed environment and import path; "
        "the filesystem and the network are not hidden from student code"
    )

    def available(self) -> tuple[bool, str]:
        return (os.name == "posix", "" if os.name == "posix" else "needs a POSIX system")

    def command(self, argv: list[str], jobdir: Path, readable: list[Path], writable: list[Path]) -> list[str]:
        """The command line that starts argv at this level; `writable[0]` is the working copy."""
        return argv

    def preexec(self, limits: Limits) -> Callable[[], None]:
        def apply() -> None:
            # The runner and every task inherit these; tasks lower them further.
            _set(resource.RLIMIT_AS, limits.memory_bytes + GiB)
            _set(resource.RLIMIT_FSIZE, limits.max_file_bytes * 4)
            _set(resource.RLIMIT_CORE, 0)
            _set(resource.RLIMIT_NOFILE, limits.open_files)
            if os.getuid() != 0:  # root ignores RLIMIT_NPROC; elsewhere it stops fork bombs
                _set(resource.RLIMIT_NPROC, 256)

        return apply


def _set(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def sandbox_levels() -> dict[str, type]:
    """Strongest first."""
    from .bwrap import BwrapSandbox  # here, not at the top: bwrap.py imports this module

    return {"bwrap": BwrapSandbox, "process": ProcessSandbox}


def choose_sandbox(name: str | None = None):
    """The named level, or the strongest one that works here."""
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
        if sandbox.available()[0]:
            return sandbox
    raise GraderError("no sandbox level works on this machine (run `mlp-grader doctor`)")


def run_sandboxed(sandbox, argv: list[str], *, jobdir: Path, readable: list[Path], writable: list[Path],
                  limits: Limits, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run argv in the sandbox; on timeout the whole process group is killed."""
    cmd = sandbox.command(argv, jobdir, readable, writable)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=sandbox.preexec(limits))
    try:
        out, err = proc.communicate(timeout=limits.wall_seconds)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_session(proc)
        out, err = proc.communicate()
        timed_out = True
    _kill_session(proc)
    return subprocess.CompletedProcess(cmd, -9 if timed_out else proc.returncode, out, err)


def _kill_session(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def python_executable() -> str:
    return sys.executable or shutil.which("python3") or "python3"
