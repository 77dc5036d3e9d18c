"""Landlock (Linux >= 5.13) through ctypes: restrict this process and everything it starts,
irrevocably, without namespaces or capabilities (so it holds as root, inside Docker's default
seccomp profile and on Gradescope).

Standard library only: the probe runner and the notebook kernel import it from the job folder
before any student code runs and before site-packages is on their path.

Why our own module and not a package: the `landlock` package on PyPI (1.0.0.dev5, alpha) has
filesystem rules only, no TCP rules (ABI 4) and no signal / abstract-socket scoping (ABI 6),
and it would have to be importable before site-packages is; the kernel interface is three
system calls and three structures, written down here once, for every ABI from 1 up.

A policy is plain data (JSON in the job folder), written by the trusted grader:
  {"read": [paths], "write": [paths], "hidden": [paths], "net": true, "scope": true,
   "seccomp_dir": folder holding pyseccomp.py, or absent, "expanded": true when `read` is
   already resolved and split around `hidden` by the grader}
`read` paths get read and execute rights on their whole tree minus `hidden` subtrees (a tree
that holds a hidden path is split into its entries, recursively); `write` paths get every
file-system right. `net`: refuse TCP bind and connect (ABI 4+). `scope`: signals and abstract
Unix sockets only within this domain (ABI 6+). With `net` and `seccomp_dir`, a seccomp filter
(pyseccomp over libseccomp: maintained, one module, no BPF written by hand) also refuses new
AF_INET/AF_INET6 sockets: UDP too, which Landlock does not cover, and TCP on kernels before
ABI 4. `unix` (with `seccomp_dir`): new Unix sockets refused too, so student code cannot connect
to a socket by path (an X11, ssh-agent or container-engine socket: Landlock does not cover
connect()); socketpair() stays. The notebook kernel gets that part only once its own channels are
open (`refuse_unix_sockets`). What the running kernel lacks is returned in words by `restrict()`,
for the report.
"""
import ctypes
import json
import os
import platform
import stat
import sys

# System call numbers: the same on every architecture (the unified table), Linux 5.13+.
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2
PR_SET_NO_NEW_PRIVS = 38

# Access rights on files (ABI in which each appeared).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER = 1 << 13  # ABI 2: link/rename across folders
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

FS_ABI1 = (1 << 13) - 1
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # all a rule on a non-folder may hold
READ_RIGHTS = EXECUTE | READ_FILE | READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # packed in the kernel's header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi_version():
    """The kernel's Landlock ABI (1, 2, ...), or 0 when it has none (not Linux, too old, or
    disabled at boot: `lsm=` without landlock)."""
    if not sys.platform.startswith("linux"):
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                           ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(version))


def handled_fs(abi):
    rights = FS_ABI1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def missing(abi, policy, seccomp=False):
    """What this kernel's Landlock (and, with `seccomp`, the socket filter) cannot enforce of
    `policy`, in words ("" when nothing)."""
    if abi == 0:
        return "no Landlock in this kernel: files, network and signals are not restricted by it"
    gaps = []
    if policy.get("net") and not seccomp:
        gaps.append("UDP and other non-TCP sockets are not refused (no pyseccomp/libseccomp)")
    if policy.get("unix") and not seccomp:
        gaps.append("connecting to Unix sockets by path is not refused (no pyseccomp/libseccomp)")
    if abi < 2:
        gaps.append("files may not be moved between folders (Landlock ABI 1)")
    if abi < 3:
        gaps.append("truncating a readable file is not restricted (Landlock ABI < 3)")
    if policy.get("net") and abi < 4 and not seccomp:
        gaps.append("TCP is not restricted by Landlock (ABI < 4, kernel < 6.7)")
    if policy.get("scope") and abi < 6:
        gaps.append("signals and abstract Unix sockets are not scoped to the probe (Landlock ABI < 6, kernel < 6.12)")
    return "; ".join(gaps)


def restrict(policy):
    """Apply `policy` to this process (and all it starts from now on). Returns what the kernel
    could not enforce, in words. Raises OSError when Landlock exists but refuses the ruleset
    (the caller must then not run student code)."""
    abi = abi_version()
    seccomp = _seccomp(policy) if policy.get("net") or policy.get("unix") else None  # imported while readable
    gaps = missing(abi, policy, seccomp is not None)
    if abi == 0:
        if seccomp is not None:
            _set_no_new_privs(_libc())
            _refuse_inet_sockets(seccomp, unix=policy.get("unix"))
        return gaps
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    fs = handled_fs(abi)
    attr = _RulesetAttr(fs, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        if policy.get("net"):
            attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP  # and no rule allows any port
    if abi >= 6:
        size = 24
        if policy.get("scope"):
            attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    ruleset = libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise _error("landlock_create_ruleset")
    try:
        hidden = [os.path.realpath(p) for p in policy.get("hidden", [])]
        for path in policy.get("read", []):
            # "expanded": the grader already resolved the paths and took out the hidden trees
            entries = [path] if policy.get("expanded") else _tree_without(os.path.realpath(path), hidden)
            for entry in entries:
                _add(libc, ruleset, entry, READ_RIGHTS & fs)
        for path in policy.get("write", []):
            for entry in _tree_without(os.path.realpath(path), hidden):
                _add(libc, ruleset, entry, fs)
        _set_no_new_privs(libc)
        if libc.syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise _error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    if seccomp is not None:
        _refuse_inet_sockets(seccomp, unix=policy.get("unix"))
    return gaps


def _set_no_new_privs(libc):
    if libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        raise _error("prctl(PR_SET_NO_NEW_PRIVS)")


SECCOMP_SONAME = "libseccomp.so.2"


def _seccomp(policy):
    """pyseccomp from the folder the grader named, or None (not installed, no libseccomp)."""
    folder = policy.get("seccomp_dir")
    if not folder:
        return None
    import ctypes.util

    # pyseccomp finds libseccomp with ctypes.util.find_library, which needs ldconfig or a
    # compiler; slim container images have neither, but the library by its soname loads fine.
    by_name = ctypes.util.find_library
    ctypes.util.find_library = lambda name: by_name(name) or (SECCOMP_SONAME if name == "seccomp" else None)
    sys.path.insert(0, folder)
    try:
        import pyseccomp
    except Exception:  # RuntimeError or OSError when libseccomp is missing; a gap the report names
        return None
    finally:
        sys.path.remove(folder)
        ctypes.util.find_library = by_name
    return pyseccomp


def _refuse_inet_sockets(seccomp, unix=False, all_threads=False):
    """New IPv4/IPv6 sockets refused (and with `unix`, new Unix sockets: connecting to a socket by
    path or abstract name needs one; socketpair(), which asyncio and multiprocessing pipes use,
    stays allowed). `all_threads`: every thread of the process (a kernel's I/O threads run already)."""
    import errno
    import socket

    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    if all_threads:
        rules.set_attr(seccomp.Attr.CTL_TSYNC, 1)
    for family in (socket.AF_INET, socket.AF_INET6, *((socket.AF_UNIX,) if unix else ())):
        rules.add_rule(seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.EQ, family))
    rules.load()


def refuse_unix_sockets(policy):
    """For the notebook kernel, once its own channels to the grader are open (Unix sockets it
    made before): no new Unix socket in any of its threads from now on. Returns what could not
    be enforced, in words ("" when nothing)."""
    seccomp = _seccomp(policy)
    if seccomp is None:
        return "connecting to Unix sockets by path is not refused (no pyseccomp/libseccomp)"
    _refuse_inet_sockets(seccomp, unix=True, all_threads=True)
    return ""


def _tree_without(root, hidden):
    """`root` as a list of paths whose trees together hold everything under it except `hidden`."""
    inside = [h for h in hidden if h == root or h.startswith(root.rstrip("/") + "/")]
    if not inside:
        return [root] if os.path.exists(root) else []
    if root in inside or not os.path.isdir(root):
        return []
    out = []
    try:
        with os.scandir(root) as found:
            entries = sorted(found, key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        # A link is resolved first: a rule on a link is a rule on its target (a venv's lib64 -> lib
        # would otherwise grant all of lib, the hidden site-packages included).
        child = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
        out += _tree_without(child, hidden)
    return list(dict.fromkeys(out))  # a link to a sibling gives its entries twice


def _add(libc, ruleset, path, rights):
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone, or not reachable by this uid: nothing to allow
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if libc.syscall(ctypes.c_long(SYS_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH),
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise _error(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _error(call):
    err = ctypes.get_errno()
    return OSError(err, f"{call} failed: {os.strerror(err)} (kernel {platform.release()})")


def restrict_from_file(path):
    """For the runner and the kernel: the policy the grader wrote (no file: nothing to do)."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        policy = json.load(fh)
    return restrict(policy)


if __name__ == "__main__":  # `python landlock_rules.py` prints the ABI (used by `mlp-grader doctor`)
    print(abi_version())
