"""What every sandbox level shares: the limits, the probe's environment and import path, and
`run_sandboxed` (start a command at a level, with a wall clock and capped output, and kill every
process of it at the end).

Every level implements one interface, declared in level.py (SandboxLevel).
"""
from __future__ import annotations

import errno
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from grader.probes.runner import patiently

try:
    import resource
except ImportError:  # Windows: the process level keeps the wall clock and the scrubbed environment
    resource = None

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
    env = {"SYSTEMROOT": os.environ.get("SYSTEMROOT", r"C:\Windows")} if os.name == "nt" else {}
    return env | {
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
    for source in site_dirs():
        for entry in sorted(source.iterdir()):
            name = entry.name
            if name.endswith(".pth") or name.startswith("__editable__"):
                continue
            if any(name == h or name.startswith(h + "-") or name.startswith(h + ".") for h in HIDDEN_SITE_ENTRIES):
                continue
            link = target / name
            if not link.exists():
                try:
                    link.symlink_to(entry, target_is_directory=entry.is_dir())
                except OSError:
                    # No symlinks for this user (Windows without developer mode): the real folders.
                    # They hold the grader too, which a student's kit may show (it is public);
                    # grading others' code needs a level with a view (Linux).
                    return [str(d) for d in site_dirs()]
    return [str(target)]


def site_dirs() -> list[Path]:
    """site-packages of the environment whose interpreter runs the grader. Not sysconfig's
    default paths: under `python -S` (probes, tests that hide the checkout) Python 3.11 leaves
    sys.prefix at the base interpreter, whose packages are not the virtual environment's (and
    Debian's default scheme points at /usr/local even for a venv)."""
    venv = venv_prefix()
    if venv is None:
        paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    else:
        scheme = "venv" if "venv" in sysconfig.get_scheme_names() else ("nt" if os.name == "nt" else "posix_prefix")
        layout = sysconfig.get_paths(scheme, vars={"base": str(venv), "platbase": str(venv)})
        paths = [layout["purelib"], layout["platlib"]]
        if _venv_config(venv).get("include-system-site-packages", "false").lower() == "true":
            import site

            paths += site.getsitepackages([sys.base_prefix])
    return [Path(p) for p in dict.fromkeys(paths) if Path(p).is_dir()]


def venv_prefix() -> Path | None:
    """The virtual environment of sys.executable (its pyvenv.cfg, as the interpreter's own
    start-up finds it), or None."""
    exe = Path(sys.executable or "")
    for folder in (exe.parent, exe.parent.parent):
        if (folder / "pyvenv.cfg").is_file():
            return folder
    return None


def _venv_config(prefix: Path) -> dict[str, str]:
    try:
        lines = (prefix / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return {k.strip().lower(): v.strip() for k, _, v in (ln.partition("=") for ln in lines) if v}


def set_rlimit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


@dataclass
class SandboxRun:
    args: list[str]
    returncode: int  # -9 when the grader stopped it (timeout or too much output)
    stdout: bytes
    stderr: bytes  # the tail
    timed_out: bool = False
    overflow: bool = False  # stdout went over max_stdout: the probe was stopped there


STDERR_TAIL = 64 * 1024
TERM_GRACE = 1.0  # seconds between SIGTERM (the runner kills its tasks) and SIGKILL


def run_sandboxed(sandbox, argv: list[str], *, jobdir: Path, readable: list[Path], writable: list[Path],
                  limits: Limits, env: dict[str, str], cwd: Path, max_stdout: int = 256 * 1024**2,
                  disk_bytes: int | None = None,
                  on_stdout: Callable[[bytearray], None] | None = None) -> SandboxRun:
    """Run argv in the sandbox with a wall-clock limit. Its stdout is read up to `max_stdout`
    bytes and its stderr's tail is kept, so nothing it writes can fill the grader's memory; at
    the end every process of its session (and at the bwrap level its pid namespace) is killed.
    `on_stdout` sees the stdout received so far each time more arrives (read it, do not keep it).
    A start refused for lack of processes, the process's own (EAGAIN) or the level's
    (sandbox.start_refused), is retried for runner.PATIENCE, then raises BlockingIOError."""
    cmd = sandbox.command(argv, jobdir, readable, writable, disk_bytes=disk_bytes)

    def start() -> SandboxRun:
        run = _run_once(sandbox, cmd, limits, env, cwd, max_stdout, on_stdout)
        if sandbox.start_refused(run):
            raise BlockingIOError(errno.EAGAIN, f"the {sandbox.name} level could not start: "
                                                f"{run.stderr.decode('utf-8', 'replace').strip()}")
        return run

    return patiently(start)


def _run_once(sandbox, cmd: list[str], limits: Limits, env: dict[str, str], cwd: Path, max_stdout: int,
              on_stdout: Callable[[bytearray], None] | None) -> SandboxRun:
    group = ({"start_new_session": True} if os.name == "posix"
             else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=sandbox.preexec(limits), **group)
    deadline = time.monotonic() + limits.wall_seconds
    # bwrap's pid namespace dies as a whole; at the other levels the runner gets a chance to
    # kill the task processes that left its session before the group is killed.
    grace = 0.0 if sandbox.pid_namespace else TERM_GRACE
    try:
        out, err, stop = _read_capped(proc, deadline, max_stdout, on_stdout)
    except BaseException:  # Ctrl-C, or the caller's on_stdout failed: nothing keeps running
        _kill_session(proc)
        proc.wait()
        raise
    if stop:
        _terminate(proc, grace)
    else:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop = "timeout"
            _terminate(proc, grace)
    _kill_session(proc)
    proc.wait()
    for pipe in (proc.stdout, proc.stderr):
        pipe.close()
    return SandboxRun(cmd, -9 if stop else proc.returncode, bytes(out), bytes(err),
                      timed_out=stop == "timeout", overflow=stop == "overflow")


def _read_capped(proc: subprocess.Popen, deadline: float, max_stdout: int,
                 on_stdout: Callable[[bytearray], None] | None = None) -> tuple[bytearray, bytearray, str]:
    """Read both pipes until they close; "" when they did, else why reading stopped."""
    if os.name != "posix":
        return _read_capped_threads(proc, deadline, max_stdout, on_stdout)
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        exited_at = None
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                return out, err, "timeout"
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > 2.0:
                break  # the runner is gone; a leftover process that holds a pipe is not waited for
            for key, _ in sel.select(timeout=min(0.5, deadline - now)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = key.data
                buf += chunk
                if buf is out and len(out) > max_stdout:
                    del out[max_stdout:]
                    return out, err, "overflow"
                if buf is out and on_stdout is not None:
                    on_stdout(out)
                if buf is err and len(err) > STDERR_TAIL:
                    del err[:len(err) - STDERR_TAIL]
    return out, err, ""


def _read_capped_threads(proc: subprocess.Popen, deadline: float, max_stdout: int,
                         on_stdout: Callable[[bytearray], None] | None = None) -> tuple[bytearray, bytearray, str]:
    """_read_capped where pipes cannot be selected (Windows): one reader thread per pipe."""
    import threading

    out, err = bytearray(), bytearray()
    overflow = threading.Event()

    def pump(pipe, buf: bytearray, cap: int | None) -> None:
        for chunk in iter(lambda: pipe.read1(1 << 16), b""):
            buf += chunk
            if cap is not None and len(buf) > cap:
                del buf[cap:]
                overflow.set()
                return
            if cap is None and len(buf) > STDERR_TAIL:
                del buf[:len(buf) - STDERR_TAIL]

    threads = [threading.Thread(target=pump, args=(proc.stdout, out, max_stdout), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, None), daemon=True)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        if overflow.is_set():
            return out, err, "overflow"
        if time.monotonic() >= deadline:
            return out, err, "timeout"
        threads[0].join(timeout=0.2)
        if on_stdout is not None:  # here, not in the reader thread: the callback is not thread-safe
            on_stdout(out)
    return out, err, "overflow" if overflow.is_set() else ""


def _terminate(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM first: the runner then kills every task process it started (including those
    that left its session); SIGKILL to the whole group after `grace` seconds."""
    if grace:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
            pass
    _kill_session(proc)


def _kill_session(proc: subprocess.Popen) -> None:
    """The probe's process group, then every process still in its session: a task process
    sits in a group of its own, and outlives the runner when the runner is killed first."""
    if not hasattr(os, "killpg"):  # Windows: the runner itself (its tasks end with their wall clock)
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in _session_members(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _session_members(sid: int) -> list[int]:
    """Pids whose session id is `sid` (Linux /proc; elsewhere none are found)."""
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command name: state, ppid, pgrp, session
        if len(fields) > 3 and int(fields[3]) == sid and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def python_executable() -> str:
    return sys.executable or shutil.which("python3") or "python3"


def seed_matplotlib_cache(target: Path) -> None:
    """Copy the font cache so each probe skips matplotlib's multi-second font scan."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in font_cache_files():
        shutil.copy2(entry, target / entry.name)


def font_cache_files() -> list[Path]:
    """matplotlib's font cache (fontlist-*.json), looked for in its usual folders first, and
    with matplotlib.get_cachedir() only when none has one: importing matplotlib for that cost
    0.15 s, holding the GIL, in every process that started a probe or a notebook (also for code
    that never draws)."""
    folders = []
    try:
        if os.environ.get("MPLCONFIGDIR"):
            folders = [Path(os.environ["MPLCONFIGDIR"])]
        else:
            folders = [Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib",
                       Path.home() / ".matplotlib"]
            if os.environ.get("LOCALAPPDATA"):
                folders.append(Path(os.environ["LOCALAPPDATA"]) / "matplotlib")
    except RuntimeError:  # no home folder: ask matplotlib
        pass
    for folder in folders:
        found = sorted(folder.glob("fontlist-*.json"))
        if found:
            return found
    from grader.parsing import LOCK

    try:
        with LOCK:  # its import parses: not beside another thread's parse (parsing.py)
            import matplotlib
    except ImportError:
        return []
    return sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))
