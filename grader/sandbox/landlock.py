"""The `landlock` sandbox level (Linux >= 5.13): no namespaces and no capabilities needed, so it
holds as root, inside Docker's default seccomp profile (Docker >= 23 allows the Landlock calls)
and on Gradescope, where bubblewrap cannot run.

The probe runner (grader/probes/runner.py) and the notebook kernel (grader/notebooks/kernel.py) restrict
themselves with Landlock before any student code is imported, from a policy this module writes
into the job folder (`landlock/policy.json`, beside a copy of grader/probes/landlock_rules.py):
- files: read and execute only the system folders, the Python installation minus site-packages,
  the site-packages entries student code may use (the job's site view: not the grader, not the
  course material, not scikit-learn's bundled datasets), the job folder and the data folder;
  write only the working copy and the job's `out/` and `home/` ($HOME and $TMPDIR);
- /proc: readable by the runner (it finds its tasks' leftover processes there); every task gets
  a second Landlock layer without /proc, and so does the kernel; the process status of other
  processes beyond their existence is refused by Landlock's ptrace rule anyway;
- network: TCP bind and connect refused (ABI 4+); with pyseccomp and libseccomp a seccomp filter
  refuses new IPv4/IPv6 sockets (UDP too) and, in every task and in the kernel once its own
  channels are open, new Unix sockets (Landlock does not cover connecting to one by path);
- signals and abstract Unix sockets: only within the probe (ABI 6+); a task is a nested domain,
  so it cannot signal its runner either;
- as root: every probe runs as an unprivileged uid of its own (see .unprivileged), no
  supplementary groups, so RLIMIT_NPROC caps fork loops and files outside the job stay
  unreadable by plain permissions even where the kernel lacks parts of Landlock;
- disk: the runner's size watch over the folders it may write, RLIMIT_FSIZE and the per-file cap
  (no tmpfs without namespaces).
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Callable

from grader.probes import landlock_rules
from grader.sandbox.core import Limits, site_dirs
from grader.sandbox.level import SandboxLevel
from grader.sandbox.unprivileged import (DATASET_ENTRIES, ETC_FILES, SANDBOX_UID, SANDBOX_UID_BASE, SYSTEM_DIRS,
                                         blocked_dir, chown_tree, interpreter_roots, limits_and_uid, reach)

DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
POLICY_DIR = "landlock"  # in the job folder: policy.json and landlock_rules.py
TRIAL_SECONDS = 30.0
# A trial in a child: it restricts itself as a probe would and must then be refused the grader's
# own source while the standard library still imports.
TRIAL = """
import json, sys
policy, forbidden = json.loads(sys.argv[1]), sys.argv[2]
gaps = restrict(policy)
import encodings.idna, json.decoder
try:
    open(forbidden).close()
    print("NOT-RESTRICTED")
except PermissionError:
    print("OK %d %s" % (abi_version(), gaps))
"""

_checked: dict[tuple, tuple[bool, str, str]] = {}


class LandlockSandbox(SandboxLevel):
    name = "landlock"
    confines_writes = True  # writes only to the probe's own folders: on-disk caches are safe

    def __init__(self, uid: int | None = None, gid: int | None = None) -> None:
        self.root = os.geteuid() == 0
        self._uid = uid
        self.gid = (SANDBOX_UID if gid is None else gid) if self.root else os.getgid()
        self.abi = landlock_rules.abi_version()

    @property
    def uid(self) -> int:
        if not self.root:
            return os.getuid()
        return self._uid if self._uid is not None else SANDBOX_UID_BASE + os.getpid()

    @property
    def limitations(self) -> str:
        text = ("landlock level (ABI %d): files outside the Python runtime, the allowed packages, the job and "
                "the working copy refused; TCP bind/connect refused; signals and abstract sockets scoped to "
                "the probe; rlimits; " % self.abi)
        text += ("an unprivileged uid of its own per grading process" if self.root else
                 "it runs as the grader's own user")
        if _seccomp_dir():
            text += ("; a seccomp filter refuses every new IPv4/IPv6 socket (UDP too) and, to student code, every "
                     "new Unix socket (so none by path either)")
        text += ("; not stopped: seeing which paths exist, and which processes exist (their command lines in "
                 "/proc, for the runner only); the disk cap is a size watch plus a per-file limit, not a quota")
        gaps = landlock_rules.missing(self.abi, {"net": True, "scope": True, "unix": True}, bool(_seccomp_dir()))
        return text + ("; this kernel lacks: " + gaps if gaps else "")

    # ------------------------------------------------------------------ level interface

    def available(self) -> tuple[bool, str]:
        ok, reason, fix = self.check()
        return ok, reason if ok or not fix else f"{reason} Fix: {fix}"

    def command(self, argv: list[str], jobdir: Path, readable: list[Path], writable: list[Path],
                disk_bytes: int | None = None) -> list[str]:
        """The command is unchanged: the runner or the kernel applies `jobdir/landlock/policy.json`
        to itself first thing. `disk_bytes` is enforced by the runner's size watch."""
        jobdir = Path(os.path.abspath(jobdir))
        writable = [Path(os.path.abspath(p)) for p in writable]
        writable = [p for p in [jobdir / "out", jobdir / "home", *writable] if p.is_dir()]
        readable = [Path(os.path.abspath(p)) for p in readable]
        folder = jobdir / POLICY_DIR
        folder.mkdir(exist_ok=True)
        shutil.copy2(landlock_rules.__file__, folder / "landlock_rules.py")
        policy = self.policy(jobdir, readable, writable)
        (folder / "policy.json").write_text(json.dumps(policy), encoding="utf-8")
        if self.root:
            for path in writable:
                chown_tree(path, self.uid, self.gid)
            for path in [jobdir, *readable, *writable]:
                reach(path, self.uid, self.gid)
        return argv

    def policy(self, jobdir: Path, readable: list[Path], writable: list[Path]) -> dict:
        view = jobdir / "site"
        allowed = [os.path.realpath(e) for e in sorted(view.iterdir())] if view.is_dir() else []
        read = [p for p in SYSTEM_DIRS if os.path.isdir(p) and not os.path.islink(p)]
        read += [p for p in (*ETC_FILES, *DEVICES) if os.path.exists(p)]
        read += [str(r) for r in interpreter_roots()] + [os.path.realpath(sys.executable)]
        read += allowed
        hidden = [str(d) for d in _hidden_site_parts()] + [str(d / rel) for d in site_dirs() for rel in DATASET_ENTRIES]
        hidden += [str(p) for p in _grader_material()]
        hidden = [h for h in hidden if os.path.exists(h)]  # (a name that is not there needs no split)
        own = [os.path.realpath(p) for p in (jobdir, *readable)]
        real = [os.path.realpath(h) for h in hidden]  # (the job's own folders: not cached, one per probe)
        read = [*_expanded(tuple(read), tuple(hidden)), *(e for o in own for e in landlock_rules._tree_without(o, real)),
                "/proc"]
        write = [str(p) for p in writable] + ["/dev/null"]
        # The second layer (each task, and the kernel): everything the first allows except /proc.
        # (Listed here: the runner may not list / once restricted.)
        tops = [f"/{n}" for n in sorted(os.listdir("/")) if n != "proc"]
        filter_dir = {"seccomp_dir": _seccomp_dir()} if _seccomp_dir() else {}
        # Student code (each task; the kernel once its channels are open) may not make Unix sockets.
        task_layer = {"read": tops, "write": tops, "hidden": [], "net": True, "scope": True, "unix": True,
                      **filter_dir}
        return {"read": read, "expanded": True, "write": write, "hidden": hidden, "net": True, "scope": True,
                "task_layer": task_layer, **filter_dir}

    def preexec(self, limits: Limits) -> Callable[[], None]:
        return limits_and_uid(limits, self.uid, self.gid, self.root)

    # ------------------------------------------------------------------ availability

    def check(self) -> tuple[bool, str, str]:
        """(works, reason, fix). A trial child restricts itself once per process (cached)."""
        key = (self.uid, self.gid, sys.executable)
        if key not in _checked:
            _checked[key] = self._check()
        return _checked[key]

    def _check(self) -> tuple[bool, str, str]:
        if not sys.platform.startswith("linux"):
            return False, "Landlock needs Linux.", "use the process level or the Docker image"
        if self.abi == 0:
            return (False, "this kernel has no Landlock (Linux 5.13+ with landlock in the `lsm=` boot list).",
                    "use a kernel >= 5.13 with CONFIG_SECURITY_LANDLOCK (most distributions since 2022), or "
                    "bubblewrap")
        if self.root:
            for path in interpreter_roots():
                blocked = blocked_dir(path, self.uid, self.gid)
                if blocked is not None:
                    return (False, f"Landlock ABI {self.abi} is present, but the Python installation at {path} is not "
                                   f"reachable by the sandbox user "
                                   f"(uid {self.uid}): {blocked} has mode {_mode(blocked)}. Landlock works on "
                                   f"the host's own folders (no mount namespace to lay another folder over it, "
                                   f"as the bwrap level does), so the sandbox user must pass through it.",
                            f"chmod o+x {blocked} (others may then pass through it, not list it), or install "
                            f"Python and the grader outside it, e.g. under /opt")
        forbidden = Path(__file__).resolve()
        policy = {"read": [p for p in SYSTEM_DIRS if os.path.isdir(p) and not os.path.islink(p)]
                  + [str(r) for r in interpreter_roots()], "hidden": [str(d) for d in _hidden_site_parts()],
                  "write": [], "net": True, "scope": True,
                  # the socket filter too, as probes get it: the trial's gaps are then what probes lack
                  **({"seccomp_dir": _seccomp_dir()} if _seccomp_dir() else {})}
        if forbidden.is_relative_to(Path(sys.prefix)) or forbidden.is_relative_to(Path(sys.base_prefix)):
            policy["hidden"].append(str(forbidden.parent))
        source = Path(landlock_rules.__file__).read_text(encoding="utf-8").split('if __name__ == "__main__"')[0]
        try:
            proc = subprocess.run([sys.executable, "-I", "-S", "-c", source + TRIAL, json.dumps(policy),
                                   str(forbidden)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  cwd="/", env={"PATH": "/usr/bin:/bin"}, timeout=TRIAL_SECONDS,
                                  preexec_fn=self.preexec(Limits(TRIAL_SECONDS)))
        except (OSError, subprocess.SubprocessError) as exc:
            return False, f"a trial Landlock sandbox could not be started ({exc}).", "run `mlp-grader doctor`"
        out = proc.stdout.strip()
        if proc.returncode == 0 and out.startswith("OK"):
            who = f"as uid {self.uid}" if self.root else "as the grader's user"
            gaps = out.split(" ", 2)[2] if out.count(" ") >= 2 else ""
            return (True, f"Landlock ABI {self.abi} works: probes run {who} with files, TCP, signals and abstract "
                          f"sockets restricted" + (f" (this kernel lacks: {gaps})" if gaps else "") + ".", "")
        err = (proc.stderr.strip().splitlines() or [out or f"exit status {proc.returncode}"])[-1]
        if out == "NOT-RESTRICTED":
            return False, "Landlock is present but did not restrict a trial process.", "check the kernel's lsm= list"
        if "seccomp" in err or "Operation not permitted" in err or "Function not implemented" in err:
            return (False, f"the Landlock system calls are refused here (a container's seccomp profile older than "
                           f"Docker 23?): {err}", "update the container runtime, or use --sandbox process")
        return False, f"a trial Landlock sandbox failed: {err}", "run `mlp-grader doctor`"


@functools.cache  # find_library runs ldconfig: once per process
def _seccomp_dir() -> str:
    """The folder holding pyseccomp (the `landlock` extra) when it and libseccomp are there."""
    import ctypes
    import ctypes.util
    import importlib.util

    spec = importlib.util.find_spec("pyseccomp")
    if spec is None or not spec.origin:
        return ""
    if ctypes.util.find_library("seccomp") is None:  # no ldconfig (a slim image): try the soname
        try:
            ctypes.CDLL(landlock_rules.SECCOMP_SONAME)
        except OSError:
            return ""
    return os.path.dirname(spec.origin)


def _hidden_site_parts() -> list[Path]:
    """Every site-packages under the Python installation: the site view grants what student code
    may import from those in use; others (a virtual environment's base) stay hidden whole."""
    found = set(site_dirs())
    for base in {sys.base_prefix, sys.prefix}:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
        found.update(Path(paths[k]) for k in ("purelib", "platlib") if Path(paths[k]).is_dir())
    return sorted(found)


@functools.cache  # the installation does not change while the grader runs
def _expanded(read: tuple[str, ...], hidden: tuple[str, ...]) -> tuple[str, ...]:
    """`read` minus `hidden` as the list of trees the runner places a rule on each: listed here
    once, so that a probe start costs one rule per entry and no folder listing."""
    real = [os.path.realpath(h) for h in hidden]
    entries = (e for r in read for e in landlock_rules._tree_without(os.path.realpath(r), real))
    return tuple(dict.fromkeys(entries))


def _grader_material() -> list[Path]:
    """The grader package and the course material, wherever they are installed (an editable
    install's source tree too): hidden even when under a folder that is readable."""
    import grader

    found = [Path(grader.__file__).resolve().parent]
    try:
        import grader_course

        found.append(Path(grader_course.__file__).resolve().parent)
    except ImportError:
        pass
    root = found[0].parent
    for name in ("reference", "rubrics", "tests", ".git"):
        if (root / name).exists():
            found.append(root / name)
    return found


def _mode(path: Path) -> str:
    import stat

    return stat.filemode(os.stat(path).st_mode)
