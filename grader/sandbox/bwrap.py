"""The `bwrap` sandbox level (Linux): the probe runs under bubblewrap as an unprivileged uid.

What it adds to the `process` level: its own user, mount, pid, network, ipc and uts namespaces
(no network at all, no view of the grader's processes); a filesystem made only of read-only
system directories, the Python installation (with the grader's own entries in site-packages
masked, and so are the data files bundled with scikit-learn: the digits stand-in's labels), the
job folder (read-only except `out/` and `home/`), the working copy (read-write), the data folder
(read-only), a small private /tmp and a read-only /dev (with a small /dev/shm); an empty
environment apart from what the caller passes; no capabilities and no further user namespaces
inside. With `disk_bytes` (probes), `out/`, `home/` and the working copy are size-limited tmpfs
mounts instead of host folders (the runner copies the working copy in from a read-only `src/`),
so a probe cannot fill the host's disk, and what it writes is gone when it ends.

bwrap must not be started as root with a user namespace: a user namespace created by root keeps
root's uid on the host (it could write root-owned files it can see, and RLIMIT_NPROC does not
apply to it). So when the grader runs as root, `preexec()` drops to an unused uid
(SANDBOX_UID_BASE + the grading process's pid, group nogroup) before bwrap starts, and
`command()` hands that uid the folders it must write and lets it traverse the grader's temporary
folders (group permission for nogroup, only on folders the grader made under the temp dir).

That cannot work where the Python installation lies under a folder the sandbox uid cannot pass
through (pyenv under root's mode-700 home): bwrap, started as that uid, cannot bind what that uid
cannot reach. Then (and only then) bwrap starts as root *without* a user namespace ("closed
home" mode): it lays an empty, read-only tmpfs over each such folder, binds inside it only what
the probe needs (the Python tree, the data folder), and `setpriv` drops to the sandbox uid with no
capabilities, no supplementary groups and no_new_privs before the interpreter starts. Nothing on
the machine changes mode. What this mode does not have: bwrap's --disable-userns (it needs a user
namespace of bwrap's own), so student code may create a user namespace; the mounts it inherits
are locked there, so the hidden folders stay hidden.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Callable

from grader.errors import GraderError
from grader.sandbox.core import HIDDEN_SITE_ENTRIES, Limits, SandboxRun, site_dirs
from grader.sandbox.level import SandboxLevel
from grader.sandbox.unprivileged import (DATASET_ENTRIES, ETC_FILES, NPROC, SANDBOX_UID, SANDBOX_UID_BASE, SYSTEM_DIRS,
                                         blocked_dir, chown_tree, closed_folders, in_container, interpreter_roots,
                                         limits_and_uid, may_read, reach, read_or_empty, real_path, seccomp_filtered)

# util-linux, inside the sandbox's /usr
SETPRIV = "/usr/bin/setpriv"
PRLIMIT = "/usr/bin/prlimit"
TMP_BYTES = 64 * 1024**2  # the private /tmp: a tmpfs, so it costs memory outside RLIMIT_AS
SHM_BYTES = 16 * 1024**2  # /dev/shm (bwrap's /dev is a writable tmpfs without a size otherwise)
HOME_BYTES = 64 * 1024**2  # with disk_bytes: the tmpfs $HOME (matplotlib's cache, student files)
TRIAL_SECONDS = 30.0
# bwrap's options as _passable reads them: modifiers of the next operation, operand counts, and
# the operations that make a path in the sandbox's tree
MODIFIERS = ("--perms", "--size")
ARITY = {"--ro-bind": 2, "--bind": 2, "--symlink": 2, "--tmpfs": 1, "--dev": 1, "--proc": 1, "--dir": 1,
         "--remount-ro": 1, "--chdir": 1, "--hostname": 1}
MOUNTS = ("--ro-bind", "--bind", "--symlink", "--tmpfs", "--dev", "--proc", "--dir")
BINDS = ("--ro-bind", "--bind")
# Namespaces of the closed-home mode: --unshare-all without the user namespace (root's would map to root)
ROOT_UNSHARE = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")


_checked: dict[tuple, tuple[bool, str, str]] = {}  # available() runs a trial sandbox once per process
_help: dict[str, str] = {}  # `bwrap --help` per binary: which options this version has


class BwrapSandbox(SandboxLevel):
    name = "bwrap"
    pid_namespace = True  # every process of a probe dies with it
    confines_writes = True  # student code writes only its own folders: on-disk caches are safe
    limitations = (
        "bwrap level: unprivileged uid, own user/mount/pid/network namespaces, read-only minimal "
        "filesystem view, no network, rlimits, size-limited private folders; it shares the host kernel "
        "(no seccomp filter), and the probe's tmpfs folders cost host memory (up to their size limits); "
        "as root with Python under a folder the sandbox uid cannot pass (closed-home mode), student code may "
        "create user namespaces of its own (what they inherit stays locked)"
    )

    def __init__(self, uid: int | None = None, gid: int | None = None, bwrap: str | None = None) -> None:
        self.root = os.geteuid() == 0
        # Not root: bwrap runs as the grader's own unprivileged user; nothing to switch or chown.
        self._uid = uid
        self.gid = (SANDBOX_UID if gid is None else gid) if self.root else os.getgid()
        self.bwrap = bwrap or shutil.which("bwrap") or "/usr/bin/bwrap"

    @property
    def uid(self) -> int:
        """Read in the grading process (a batch worker has its own pid, hence its own uid)."""
        if not self.root:
            return os.getuid()
        return self._uid if self._uid is not None else SANDBOX_UID_BASE + os.getpid()

    # ------------------------------------------------------------------ level interface

    def available(self) -> tuple[bool, str]:
        ok, reason, fix = self.check()
        return ok, reason if ok or not fix else f"{reason} Fix: {fix}"

    def command(self, argv: list[str], jobdir: Path, readable: list[Path], writable: list[Path],
                disk_bytes: int | None = None) -> list[str]:
        """With `disk_bytes` (and a `src/` folder in the job as the mount point), the working copy
        is a tmpfs of that size, filled by the runner from `src/` (the real working copy, read-only),
        and `out/` and `home/` are tmpfs mounts too: nothing the probe writes reaches the host disk."""
        jobdir = Path(os.path.abspath(jobdir))
        workdir = Path(os.path.abspath(writable[0])) if writable else None
        writable = [jobdir / "out", jobdir / "home", *(Path(os.path.abspath(p)) for p in writable)]
        writable = [p for p in writable if p.is_dir()]
        readonly = [Path(os.path.abspath(p)) for p in readable]
        readonly = [p for p in readonly if p not in writable and p != jobdir]
        private = bool(disk_bytes) and workdir is not None and (jobdir / "src").is_dir() and self._supports("--size")
        closed = self.closed_home()
        if self.root:
            for path in writable:  # (in private mode: so that the runner can read src/)
                chown_tree(path, self.uid, self.gid)
            if closed:
                closed = closed_folders([*interpreter_roots(), jobdir, *readonly, *writable], self.uid, self.gid)
            for path in [jobdir, *readonly, *writable]:
                self._reach(path, closed)
        args = [self.bwrap, *self._base_args(hidden=_hidden_site_entries(jobdir / "site"), closed=closed)]
        args += ["--ro-bind", real_path(jobdir), str(jobdir)]
        for path in writable:
            if private:
                size = {jobdir / "out": disk_bytes, jobdir / "home": HOME_BYTES}.get(path, disk_bytes)
                args += [*self._open_perms(closed, 0o777), "--size", str(size), "--tmpfs", str(path)]
            else:
                args += ["--bind", real_path(path), str(path)]
        if private:
            args += ["--ro-bind", real_path(workdir), str(jobdir / "src")]
        for path in readonly:
            args += ["--ro-bind", real_path(path), str(path)]
        if workdir is not None:
            args += ["--chdir", str(workdir)]
        for folder in closed:  # its mount points are made: nothing more is written there
            args += ["--remount-ro", str(folder)]
        # The root is bwrap's own tmpfs (mount points, no size limit): writes there would cost memory.
        return self._passable(args + ["--remount-ro", "/", "--", *self._drop(closed), *argv], closed)

    def preexec(self, limits: Limits) -> Callable[[], None]:
        # In closed-home mode bwrap starts as root and setpriv drops the uid inside (see _drop).
        closed = bool(self.closed_home())
        return limits_and_uid(limits, self.uid, self.gid, self.root and not closed, nproc=not closed)

    def start_refused(self, run: SandboxRun) -> bool:
        # bwrap's own clone() of the new namespaces counts against the uid's process limit: where
        # a neighbour holds that limit it exits at once with this, before the runner starts.
        return (run.returncode != 0 and not run.stdout and run.stderr.startswith(b"bwrap: ")
                and b"Resource temporarily unavailable" in run.stderr)

    def closed_home(self) -> list[Path]:
        """As root: the folders above the Python installation that the sandbox uid cannot pass
        through (empty where there are none, or where setpriv is missing: then the trial explains)."""
        if not self.root or not (os.access(SETPRIV, os.X_OK) and os.access(PRLIMIT, os.X_OK)):
            return []
        return closed_folders(interpreter_roots(), self.uid, self.gid)

    def _drop(self, closed: list[Path]) -> list[str]:
        """Closed-home mode: the uid switch that preexec makes elsewhere, made inside the sandbox
        (bwrap runs as root there, and RLIMIT_NPROC binds from here on)."""
        if not closed:
            return []
        # The process limit comes after the switch (prlimit): set before it, a uid whose count is
        # over the limit (a neighbour's fork loop, where uids are shared) makes the exec after
        # setuid fail with EAGAIN, before the runner could wait it out (probes/runner.py, patiently).
        return [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--", PRLIMIT, f"--nproc={NPROC}:{NPROC}", "--"]

    # ------------------------------------------------------------------ availability

    def check(self) -> tuple[bool, str, str]:
        """(works, reason, fix). Runs a trial sandbox once per process and caches the answer."""
        key = (self.bwrap, self.uid, self.gid, sys.executable)
        if key not in _checked:
            _checked[key] = self._check()
        return _checked[key]

    def _check(self) -> tuple[bool, str, str]:
        if not sys.platform.startswith("linux"):
            return False, "bubblewrap needs Linux.", "use the process level (--sandbox process) or the Docker image"
        if not os.access(self.bwrap, os.X_OK):
            return False, "bubblewrap is not installed.", "apt-get install bubblewrap"
        # The same mounts a probe gets, minus the job: this also proves the interpreter is reachable.
        closed = self.closed_home()
        trial = self._passable([self.bwrap, *self._base_args(hidden=[], closed=closed),
                                *(arg for folder in closed for arg in ("--remount-ro", str(folder))),
                                "--remount-ro", "/", "--", *self._drop(closed), sys.executable, "-I", "-S", "-c",
                                "import os; print(os.getuid())"], closed)
        try:
            proc = subprocess.run(trial, stdin=subprocess.DEVNULL, capture_output=True, cwd="/",
                                  env={"PATH": "/usr/bin:/bin"}, timeout=TRIAL_SECONDS,
                                  preexec_fn=self.preexec(Limits(TRIAL_SECONDS)))
        except (OSError, subprocess.SubprocessError) as exc:
            return (False, f"bubblewrap could not be started as uid {self.uid} ({exc}).",
                    "run the grader as root or as an ordinary user")
        err = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode == 0 and proc.stdout.strip() == str(self.uid).encode():
            version = subprocess.run([self.bwrap, "--version"], capture_output=True, text=True).stdout.strip()
            how = ""
            if closed:
                how = (f" ({', '.join(map(str, closed))} cannot be passed through by that uid: bwrap starts "
                       f"as root, lays an empty read-only folder over it with only the Python installation "
                       f"inside, and drops to uid {self.uid} before Python starts; nothing changes mode)")
            return (True, f"{version or 'bubblewrap'} works: probes run as uid {self.uid} in their own "
                          f"namespaces{how}.", "")
        return (False, *self._diagnose(err or f"exit status {proc.returncode}"))

    def _diagnose(self, err: str) -> tuple[str, str]:
        last = err.splitlines()[-1] if err else ""
        if "source path" in err and "Permission denied" in err:
            for path in interpreter_roots():
                blocked = blocked_dir(path, self.uid, self.gid)
                if blocked is not None:
                    return (f"the Python installation at {path} is not reachable by the sandbox user "
                            f"(uid {self.uid}): {blocked} has mode {stat.filemode(os.stat(blocked).st_mode)}.",
                            f"chmod o+x {blocked} (others may then pass through it, not list it), or install "
                            f"Python and the grader outside it, e.g. under /opt")
            return (f"bubblewrap cannot read a folder it must mount: {last}",
                    f"make that folder readable by uid {self.uid}")
        if "mount proc" in err:  # Docker masks parts of /proc, and then a new proc may not be mounted
            return (f"bubblewrap cannot mount /proc here, usually a container with masked /proc paths: {last}",
                    "start the container with --security-opt systempaths=unconfined, or use --sandbox process")
        if "namespace" in err or "Operation not permitted" in err or "uid map" in err:
            if in_container() and seccomp_filtered():
                return ("this runs in a container whose seccomp profile blocks the calls bubblewrap needs "
                        f"(unshare, mount): {last}",
                        "start the container with --security-opt seccomp=unconfined (or a profile allowing "
                        "unshare/clone/mount/pivot_root), or use --sandbox process inside the container")
            for knob, bad, fix in (("/proc/sys/kernel/unprivileged_userns_clone", "0",
                                    "sysctl -w kernel.unprivileged_userns_clone=1"),
                                   ("/proc/sys/user/max_user_namespaces", "0",
                                    "sysctl -w user.max_user_namespaces=15000"),
                                   ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1",
                                    "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or add an "
                                    "AppArmor profile that allows userns for /usr/bin/bwrap)")):
                if read_or_empty(knob) == bad:
                    return f"unprivileged user namespaces are disabled ({knob} is {bad}).", fix
            return (f"bubblewrap cannot create its namespaces here: {last}",
                    "allow unprivileged user namespaces (sysctl), or use --sandbox process")
        return f"a trial bubblewrap sandbox failed: {last}", "run `bwrap --unshare-all --ro-bind / / true` to see why"

    # ------------------------------------------------------------------ mounts

    def _base_args(self, hidden: list[Path], closed: list[Path]) -> list[str]:
        if closed:
            args = [*ROOT_UNSHARE, "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        else:
            args = ["--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
            if self._supports("--disable-userns"):  # bubblewrap >= 0.8: no nested user namespaces
                args.append("--disable-userns")
        for path in SYSTEM_DIRS:
            if os.path.islink(path):  # merged /usr: /lib -> usr/lib
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in ETC_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        sized = self._supports("--size")  # bubblewrap >= 0.7
        args += ["--proc", "/proc", "--dev", "/dev"]
        if sized:
            args += [*self._open_perms(closed, 0o1777), "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
        # bwrap's /dev is a tmpfs the sandbox uid owns: without this, files there cost host memory
        args += ["--remount-ro", "/dev"]
        # The private /tmp first: an interpreter in a virtual environment under /tmp is bound on top.
        args += [*self._open_perms(closed, 0o1777), *(["--size", str(TMP_BYTES)] if sized else []), "--tmpfs", "/tmp"]
        for folder in closed:  # an empty folder in place of one the sandbox uid cannot pass through
            args += [*(["--size", str(SHM_BYTES)] if sized else []), "--tmpfs", str(folder)]
        for root in interpreter_roots():
            args += ["--ro-bind", real_path(root), str(root)]
        hidden = [*hidden, *(d / rel for d in site_dirs() for rel in DATASET_ENTRIES)]
        for entry in hidden:  # the grader and the course material stay invisible, not only off sys.path
            # (a symlinked entry is left alone: its target is not mounted unless it is needed anyway)
            if entry.is_dir() and not entry.is_symlink():
                perms = ["--perms", "0000"] if self._supports("--perms") else []
                args += [*perms, "--tmpfs", str(entry), "--remount-ro", str(entry)]
            elif entry.is_file() and not entry.is_symlink():
                args += ["--ro-bind", "/dev/null", str(entry)]  # on a nodev mount: opening it fails
        return args

    def _passable(self, args: list[str], closed: list[Path]) -> list[str]:
        """Closed-home mode: bwrap running as root makes the folders that lead to a mount point
        with mode 0700, which the probe's uid cannot pass; make each one first, with mode 0755."""
        if not closed or not self._supports("--perms"):
            return args
        out, made, trees, i = args[:1], {Path("/")}, set(), 1
        while i < len(args) and args[i] != "--":
            start = i
            while args[i] in MODIFIERS:
                i += 2
            option = args[i]
            operands = args[i + 1:i + 1 + ARITY.get(option, 0)]
            i += 1 + len(operands)
            if option in MOUNTS:
                dest = Path(operands[-1])
                for parent in reversed(dest.parents):
                    if parent not in made and not any(parent.is_relative_to(tree) for tree in trees):
                        out += ["--perms", "0755", "--dir", str(parent)]
                        made.add(parent)
                # what was made under a new mount is hidden by it; a bound folder brings its own tree
                made = {m for m in made if not m.is_relative_to(dest)} | {dest}
                trees = {t for t in trees if not t.is_relative_to(dest)} | ({dest} if option in BINDS else set())
            out += args[start:i]
        return out + args[i:]

    def _open_perms(self, closed: list[Path], mode: int) -> list[str]:
        """Closed-home mode: bwrap (root) makes each tmpfs root's; the probe's uid must write its own.
        Only this sandbox's mount namespace sees them."""
        return ["--perms", f"{mode:o}"] if closed and self._supports("--perms") else []

    def _supports(self, option: str) -> bool:
        if self.bwrap not in _help:
            try:
                _help[self.bwrap] = subprocess.run([self.bwrap, "--help"], capture_output=True, text=True,
                                                   timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                _help[self.bwrap] = ""
        return option + " " in _help[self.bwrap]

    def _reach(self, path: Path, closed: list[Path]) -> None:
        """Under a folder the sandbox lays a tmpfs over, only the bound path's own mode counts."""
        if not any(folder in Path(real_path(path)).parents or folder in path.parents for folder in closed):
            reach(path, self.uid, self.gid)
        elif not may_read(path, self.uid, self.gid):
            raise GraderError(f"the sandbox user (uid {self.uid}) cannot read {path} (mode "
                              f"{stat.filemode(os.stat(path).st_mode)}); run `chmod o+rx {path}` or use another folder")


def _hidden_site_entries(view: Path) -> list[Path]:
    """Everything in site-packages the job's site/ view does not link to (the grader, the course
    material, editable-install hooks, .pth files); by name when there is no view."""
    hidden = []
    for folder in site_dirs():
        for entry in folder.iterdir():
            if view.is_dir():
                if not (view / entry.name).is_symlink():
                    hidden.append(entry)
            elif entry.name.startswith("__editable__") or any(
                    entry.name == h or entry.name.startswith((h + "-", h + ".")) for h in HIDDEN_SITE_ENTRIES):
                hidden.append(entry)
    return hidden
