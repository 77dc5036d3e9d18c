"""What an unprivileged sandbox uid can reach on the host, and which uid a probe gets when the
grader runs as root (shared by the `bwrap` and `landlock` levels).

Root must never run student code: root ignores RLIMIT_NPROC (a fork loop is unbounded), can
signal and read every process, and can write every file the sandbox does not hide. So as root a
probe switches to an unused uid of its own (SANDBOX_UID_BASE + the grading process's pid, group
nogroup, no supplementary groups), and the grader hands that uid the folders it must write and
lets it pass through the grader's temporary folders (only folders the grader made there).
"""
from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

from grader.errors import GraderError
from grader.sandbox.core import GiB, Limits, resource, set_rlimit, site_dirs

SANDBOX_UID = 65534  # nogroup: the sandbox gid when the grader runs as root
# The sandbox uid when the grader runs as root: one per grading process (this base + its pid), so
# that RLIMIT_NPROC, which counts every process of a uid on the host, counts the probes of one
# grading process only: a fork bomb in one worker's probe cannot starve another worker's probe
# (or anything else on the machine that runs as nobody). Below 2**31 and above the ranges that
# systemd gives to users and containers.
SANDBOX_UID_BASE = 2_000_000_000
NPROC = 256  # counts every process of the sandbox uid on the host, threads included
# Read-only pieces of the host that every level hiding the filesystem still grants. /etc is left
# out except what the dynamic loader and fontconfig read: no passwd, no hosts, no machine secrets.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime")
# Data files bundled with packages that a probe must not read: scikit-learn's copy of the digits
# (the offline stand-in) holds every label of its held-out split.
DATASET_ENTRIES = ("sklearn/datasets/data",)


class DoctorRow(NamedTuple):
    level: str
    works: bool
    reason: str
    fix: str  # a command or step that makes the level work here; "" when it works


def reach(path: Path, uid: int, gid: int) -> None:
    """Let the sandbox uid pass through every folder above `path` and read `path` itself.
    Only folders the grader made under the temp dir are changed (group = sandbox gid, g+x);
    anything else it cannot reach is an error the user must fix."""
    real = Path(real_path(path))
    for folder in [*reversed(real.parents), real]:
        want = 0o5 if folder == real else 0o1
        if _may(folder, uid, gid, want) or _has_acl(folder):
            continue
        st = os.stat(folder)
        if _grader_made(folder):
            os.chown(folder, -1, gid)
            os.chmod(folder, stat.S_IMODE(st.st_mode) | (want << 3))
            continue
        raise GraderError(f"the sandbox user (uid {uid}) cannot reach {path}: {folder} has mode "
                          f"{stat.filemode(st.st_mode)}; run `chmod o+x {folder}` or use another folder")


def _grader_made(folder: Path) -> bool:
    """A folder reach() may open to the sandbox group: the grader's own, under the temp dir."""
    st = os.stat(folder)
    tmp = Path(os.path.realpath(tempfile.gettempdir()))
    return tmp in folder.parents and st.st_uid == os.geteuid() and st.st_mode & 0o070 == 0


def closed_folders(paths: list[Path], uid: int, gid: int) -> list[Path]:
    """The outermost folders above `paths` that uid cannot pass through and reach() would not
    open: where the bwrap level lays an empty folder of its own (bwrap.py, closed-home mode)."""
    found: list[Path] = []
    for path in paths:
        path = Path(os.path.abspath(path))
        blocked = blocked_dir(path, uid, gid)
        if blocked is None or blocked == path or _grader_made(blocked):
            continue
        if not any(f == blocked or f in blocked.parents for f in found):
            found = [f for f in found if blocked not in f.parents] + [blocked]
    return sorted(found)


def may_read(path: Path, uid: int, gid: int) -> bool:
    return _may(Path(real_path(path)), uid, gid, 0o5) or _has_acl(Path(real_path(path)))


def interpreter_roots() -> list[Path]:
    """Folders holding the interpreter, its standard library and site-packages (outside /usr)."""
    roots: list[Path] = []
    candidates = [sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))), *map(str, site_dirs())]
    for cand in candidates:
        path = Path(os.path.abspath(cand))
        if any(path == r or r in path.parents for r in roots) or _under_system(path):
            continue
        roots = [r for r in roots if path not in r.parents] + [path]
    return roots


def _under_system(path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return any(real == Path(d) or Path(d) in real.parents for d in SYSTEM_DIRS if not os.path.islink(d))


def chown_tree(top: Path, uid: int, gid: int) -> None:
    # Never follow links: a submission may hold a symlink to /etc/shadow.
    os.chown(top, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def _may(path: Path, uid: int, gid: int, want: int) -> bool:
    """Mode bits as they apply to uid/gid (with no supplementary groups); ACLs not considered."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    shift = 6 if st.st_uid == uid else 3 if st.st_gid == gid else 0
    return (st.st_mode >> shift) & want == want


def _has_acl(path: Path) -> bool:
    try:
        return "system.posix_acl_access" in os.listxattr(path)
    except OSError:
        return False


def blocked_dir(path: Path, uid: int, gid: int) -> Path | None:
    """The first folder on the way to `path` that uid cannot pass through."""
    for folder in [*reversed(path.parents), path]:
        if not _may(folder, uid, gid, 0o1) and not _has_acl(folder):
            return folder
    return None


def real_path(path: Path | str) -> str:
    return os.path.realpath(path)


def read_or_empty(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def in_container() -> bool:
    return os.path.exists("/.dockerenv") or os.path.exists("/run/.containerenv") or any(
        word in read_or_empty("/proc/1/cgroup") for word in ("docker", "containerd", "kubepods", "libpod"))


def seccomp_filtered() -> bool:
    for line in read_or_empty("/proc/self/status").splitlines():
        if line.startswith("Seccomp:"):
            return line.split()[1] == "2"
    return False


def limits_and_uid(limits: Limits, uid: int, gid: int, switch: bool, nproc: bool = True) -> Callable[[], None]:
    """The preexec of the levels that run probes as an unprivileged uid (bwrap, landlock): the
    probe's rlimits (the runner and every task inherit them; tasks lower them further), then, as
    root, the switch to `uid`/`gid` without supplementary groups. `nproc=False`: the process
    limit is set later, after a uid switch made elsewhere (bwrap's closed-home mode)."""

    def apply() -> None:
        set_rlimit(resource.RLIMIT_AS, limits.memory_bytes + GiB)
        set_rlimit(resource.RLIMIT_FSIZE, limits.max_file_bytes * 4)
        set_rlimit(resource.RLIMIT_CORE, 0)
        set_rlimit(resource.RLIMIT_NOFILE, limits.open_files)
        if nproc:
            set_rlimit(resource.RLIMIT_NPROC, NPROC)
        if switch:  # order matters: groups and gid need root, so the uid goes last
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    return apply
