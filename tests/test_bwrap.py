"""The bwrap sandbox level: what student code can and cannot do inside it.

Each hostile test writes a student `mlp.py` whose import does the hostile thing and then raises
`RuntimeError("OBSERVED <json>")`; the real pset4 probe's `import_module` task imports it inside
the sandbox, and the traceback tail that comes back carries what the code saw.

When the level is not available here, these tests are SKIPPED with the reason (never passed).
Where the Python installation sits in a folder the sandbox uid cannot traverse (pyenv under
/root, mode 700) and the grader runs as root, they run in bwrap's closed-home mode (bwrap.py);
no machine change is needed.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import stat
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from grader.sandbox import bwrap
from grader.sandbox.bwrap import BwrapSandbox
from grader.sandbox import doctor
from grader.kinds.tasks import Task
from grader.grading.probe import run_probe
from grader.sandbox import GiB, unprivileged

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def sandbox(bwrap_sandbox):
    return bwrap_sandbox


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="bwrap-test-"))
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def observe(sandbox, workdir: Path, body: str, *, timeout: float = 20.0, memory: int = 2 * GiB) -> dict:
    """Import a student module that runs `body` (which fills the dict `R`) and reports R."""
    source = "import json, os, sys\nR = {}\n" + textwrap.dedent(body) + \
        "\nraise RuntimeError('OBSERVED ' + json.dumps(R))\n"
    (workdir / "mlp.py").write_text(source, encoding="utf-8")
    out = run_probe(workdir, "pset4", [Task("import", "import_module", timeout=timeout, memory=memory)], sandbox)
    task = out["import"]
    for line in reversed(task.error.splitlines()):
        if "OBSERVED " in line:
            return json.loads(line.split("OBSERVED ", 1)[1])
    raise AssertionError(f"no observation came back: status={task.status} detail={task.detail!r}\n{task.error}")


# ---------------------------------------------------------------------- always run


def test_doctor_rows_say_why_and_how():
    rows = doctor()
    assert [r.level for r in rows] == ["bwrap", "landlock", "process", "none"]
    for row in rows:
        assert isinstance(row.works, bool) and row.reason.strip()
        if not row.works:
            assert row.fix.strip(), row


def test_missing_bwrap_is_reported_with_the_install_command():
    ok, reason = BwrapSandbox(bwrap="/nonexistent/bwrap").available()
    assert not ok and "not installed" in reason and "apt-get install bubblewrap" in reason


@pytest.mark.parametrize("container,seccomp,expect", [
    (True, True, "seccomp=unconfined"),  # Docker's default profile
    (False, False, "--sandbox process"),  # namespaces refused for another reason
])
def test_namespace_failures_are_explained(monkeypatch, container, seccomp, expect):
    # bubblewrap 0.8's message when clone(CLONE_NEWUSER) returns EPERM (sysctl, AppArmor or seccomp)
    err = ("bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
           "non-privileged user namespaces. On e.g. debian this can be enabled with "
           "'sysctl kernel.unprivileged_userns_clone=1'.")
    monkeypatch.setattr(bwrap, "in_container", lambda: container)
    monkeypatch.setattr(bwrap, "seccomp_filtered", lambda: seccomp)
    monkeypatch.setattr(bwrap, "read_or_empty", lambda path: "")  # no sysctl knob says "disabled"
    reason, fix = BwrapSandbox()._diagnose(err)
    assert reason.strip() and expect in fix
    reason, fix = BwrapSandbox()._diagnose("bwrap: Can't mount proc on /newroot/proc: Operation not permitted")
    assert "/proc" in reason and "systempaths=unconfined" in fix


NO_USERNS = ("bwrap: No permissions to creating new namespace, likely because the kernel does not allow "
             "non-privileged user namespaces. On e.g. debian this can be enabled with "
             "'sysctl kernel.unprivileged_userns_clone=1'.")


@pytest.mark.parametrize("knob,fix", [
    ("/proc/sys/kernel/unprivileged_userns_clone", "sysctl -w kernel.unprivileged_userns_clone=1"),
    ("/proc/sys/user/max_user_namespaces", "sysctl -w user.max_user_namespaces=15000"),
    ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
])
def test_disabled_user_namespaces_name_the_sysctl(monkeypatch, knob, fix):
    bad = "1" if "apparmor" in knob else "0"
    monkeypatch.setattr(bwrap, "in_container", lambda: False)
    monkeypatch.setattr(bwrap, "read_or_empty", lambda path: bad if path == knob else "")
    reason, got = BwrapSandbox()._diagnose(NO_USERNS)
    assert "user namespaces are disabled" in reason and knob in reason
    assert got.startswith(fix)


def test_unreadable_interpreter_names_the_folder_and_the_fix(monkeypatch, workdir):
    tmp_path = workdir  # under /tmp directly: pytest's own temp folders are not passable either
    locked = tmp_path / "home-of-root"
    python = locked / ".pyenv" / "versions" / "3.11"
    python.mkdir(parents=True)
    locked.chmod(0o700)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(bwrap, "interpreter_roots", lambda: [python])
    sandbox = BwrapSandbox(uid=65534, gid=65534)
    reason, fix = sandbox._diagnose(f"bwrap: Can't find source path {python}: Permission denied")
    assert str(python) in reason and str(locked) in reason and "drwx------" in reason
    assert fix.startswith(f"chmod o+x {locked}")


def test_closed_home_lays_its_own_folder_and_drops_the_uid_inside(sandbox, workdir, monkeypatch):
    """Python under a folder the sandbox uid cannot pass through (pyenv in root's mode-700 home):
    bwrap starts as root, lays an empty read-only tmpfs over that folder with only the Python
    tree bound inside, and setpriv drops to the sandbox uid before Python; no mode changes."""
    if os.geteuid() != 0:
        pytest.skip("closed-home mode is the root grader's: an ordinary user's bwrap binds what that user reaches")
    home = workdir / "home-of-root"
    python = home / ".pyenv" / "versions" / "3.x"
    python.mkdir(parents=True)
    (python / "marker.txt").write_text("the interpreter tree")
    (home / "secret.txt").write_text("root's own files")
    home.chmod(0o700)
    os.chown(home, 1, 1)  # not a folder of the grader's (those it opens to the sandbox group instead)
    os.chmod(workdir, 0o755)
    (workdir / "work").mkdir()
    real_roots = unprivileged.interpreter_roots()
    monkeypatch.setattr(bwrap, "interpreter_roots", lambda: [*real_roots, python])
    assert home in sandbox.closed_home()
    seen = observe(sandbox, workdir / "work", f"""
        R['uid'] = os.getuid()
        R['listing'] = sorted(os.listdir({str(home)!r}))
        R['marker'] = open({str(python / "marker.txt")!r}).read()
        R['secret'] = os.path.exists({str(home / "secret.txt")!r})
        status = open('/proc/self/status').read().splitlines()
        R['cap_eff'] = [l.split()[1] for l in status if l.startswith('CapEff')][0]
        R['nnp'] = [l.split()[1] for l in status if l.startswith('NoNewPrivs')][0]
        try:
            open({str(home / "planted.txt")!r}, 'w').write('x')
            R['write'] = 'written'
        except OSError as exc:
            R['write'] = type(exc).__name__
    """)
    assert seen["uid"] == sandbox.uid and seen["uid"] != 0
    assert seen["listing"] == [".pyenv"] and seen["marker"] == "the interpreter tree" and seen["secret"] is False
    assert int(seen["cap_eff"], 16) == 0 and seen["nnp"] == "1" and seen["write"] == "OSError"
    assert not (home / "planted.txt").exists()
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700  # nothing on the machine changed mode


def test_doctor_command_prints_every_level_and_the_install_command(monkeypatch, capsys):
    from grader.cli import main

    monkeypatch.setattr(bwrap.shutil, "which", lambda name: "/nonexistent/bwrap")
    monkeypatch.setattr(bwrap, "_checked", {})
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "bwrap    NOT AVAILABLE: bubblewrap is not installed." in out
    assert "fix: apt-get install bubblewrap" in out
    assert "process  works" in out and "none     works" in out and "never chosen automatically" in out
    from grader.sandbox.landlock import LandlockSandbox

    assert f"default level here: {'landlock' if LandlockSandbox().available()[0] else 'process'}" in out


def test_blocked_dir_names_the_folder_in_the_way():
    with tempfile.TemporaryDirectory() as tmp:
        locked = Path(tmp) / "locked"
        inner = locked / "python"
        inner.mkdir(parents=True)
        locked.chmod(0o700)
        os.chmod(tmp, 0o755)
        assert bwrap.blocked_dir(inner, 65534, 65534) == locked
        locked.chmod(0o711)
        assert bwrap.blocked_dir(inner, 65534, 65534) is None


# ---------------------------------------------------------------------- inside the sandbox


def test_command_shape(sandbox, workdir):
    jobdir = Path(tempfile.mkdtemp(prefix="bwrap-job-"))
    try:
        for name in ("out", "home", "site"):
            (jobdir / name).mkdir()
        args = sandbox.command(["python", "x.py"], jobdir, [jobdir], [workdir])
        joined = " ".join(args)
        closed = sandbox.closed_home()
        # Closed-home mode (root, Python under a folder the sandbox uid cannot pass): no user
        # namespace, and the uid drops inside, before Python
        namespaces = bwrap.ROOT_UNSHARE if closed else ("--unshare-all", "--unshare-user")
        for flag in (*namespaces, "--die-with-parent", "--new-session", "--proc /proc", "--dev /dev",
                     f"--ro-bind {jobdir} {jobdir}", f"--bind {jobdir / 'out'} {jobdir / 'out'}",
                     f"--bind {workdir} {workdir}", f"--chdir {workdir}"):
            assert flag in joined
        drop = sandbox._drop(closed)
        assert bool(drop) == bool(closed) and ("--unshare-user" in args) != bool(closed)
        assert args[-5 - len(drop):] == ["--remount-ro", "/", "--", *drop, "python", "x.py"]
        # The repository itself, its grader and its reference are never mounted (a virtual
        # environment inside the checkout is: it holds the interpreter).
        mounted = {args[i + 2] for i, a in enumerate(args[:-2]) if a in ("--bind", "--ro-bind")}
        for secret in (REPO, REPO / "grader", REPO / "reference", REPO / "rubrics"):
            assert str(secret) not in mounted
    finally:
        import shutil

        shutil.rmtree(jobdir, ignore_errors=True)


def test_cannot_see_grader_files(sandbox, workdir):
    import grader

    hidden = [str(p) for p in bwrap._hidden_site_entries(Path("/nonexistent"))]
    seen = observe(sandbox, workdir, f"""
        def probe(path):
            try:
                if os.path.isdir(path):
                    return sorted(os.listdir(path))
                with open(path, 'rb') as fh:
                    return len(fh.read())
            except OSError as exc:
                return type(exc).__name__
        R['repo'] = probe({str(REPO)!r}) if os.path.exists({str(REPO)!r}) else False
        R['grader_pkg'] = probe({str(Path(grader.__file__).parent)!r}) if os.path.exists({str(Path(grader.__file__).parent)!r}) else False
        R['root'] = sorted(os.listdir('/root')) if os.path.isdir('/root') else None
        R['etc_passwd'] = os.path.exists('/etc/passwd')
        R['hidden'] = {{p: probe(p) for p in {hidden!r}}}
        try:
            import grader
            R['import_grader'] = 'imported'
        except ImportError as exc:
            R['import_grader'] = type(exc).__name__
    """)
    # Absent, or (a virtual environment inside the checkout) only the mount point of `.venv`;
    # the installed grader package, when it lives there, is an empty unreadable mask.
    assert seen["repo"] in (False, [".venv"]), seen["repo"]
    assert seen["grader_pkg"] in (False, [], "PermissionError"), seen["grader_pkg"]
    assert seen["root"] in (None, [], [".pyenv"])  # only the mount point of the interpreter
    assert seen["etc_passwd"] is False
    assert seen["import_grader"] == "ModuleNotFoundError"
    for path, what in seen["hidden"].items():
        assert what in (0, [], "PermissionError"), (path, what)


def test_no_network(sandbox, workdir):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        seen = observe(sandbox, workdir, f"""
            import socket
            try:
                socket.create_connection(('127.0.0.1', {port}), timeout=3).close()
                R['connect'] = 'connected'
            except OSError as exc:
                R['connect'] = type(exc).__name__
            R['interfaces'] = [name for _, name in socket.if_nameindex()]
        """)
        listener.settimeout(0.2)
        with pytest.raises(OSError):  # nobody knocked
            listener.accept()
    assert seen["connect"] in ("ConnectionRefusedError", "OSError", "TimeoutError"), seen
    assert seen["interfaces"] == ["lo"]


def test_unprivileged_uid_and_no_capabilities(sandbox, workdir):
    seen = observe(sandbox, workdir, """
        R['uid'], R['euid'], R['gid'] = os.getuid(), os.geteuid(), os.getgid()
        status = open('/proc/self/status').read().splitlines()
        R['cap_eff'] = [l.split()[1] for l in status if l.startswith('CapEff')][0]
    """)
    assert seen["uid"] != 0 and seen["euid"] != 0 and seen["gid"] != 0
    assert int(seen["cap_eff"], 16) == 0


def test_pid_namespace_hides_the_grader(sandbox, workdir):
    seen = observe(sandbox, workdir, """
        cmds = {}
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()
                    cmds[pid] = cmd[:60] + ('pytest' if 'pytest' in cmd else '')  # short: the report is a tail
                except OSError:
                    pass
        R['cmds'] = cmds
    """)
    cmds = seen["cmds"]
    assert len(cmds) <= 5, cmds  # bwrap's init, the runner, this task
    assert not any("pytest" in c for c in cmds.values()), cmds


def test_environment_has_no_secret(sandbox, workdir, monkeypatch):
    monkeypatch.setenv("MLP_GRADER_SECRET_TOKEN", "hunter2-secret")
    seen = observe(sandbox, workdir, """
        R['env'] = dict(os.environ)
        try:  # pid 1 is bwrap: the sandbox uid's own in a user namespace, root's in closed-home mode
            R['init_env'] = open('/proc/1/environ', 'rb').read().decode(errors='replace')
        except PermissionError:
            R['init_env'] = 'PermissionError'
    """)
    assert "MLP_GRADER_SECRET_TOKEN" not in seen["env"]
    assert "hunter2" not in json.dumps(seen)
    assert set(seen["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "MALLOC_ARENA_MAX", "MPLBACKEND", "MPLCONFIGDIR",
                                "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "LC_CTYPE",
                                "PWD"}  # bwrap sets PWD after --chdir


def test_writes_only_in_working_copy_home_and_tmp(sandbox, workdir):
    import sys

    seen = observe(sandbox, workdir, f"""
        job = sys.argv[1]
        def attempt(path):
            try:
                with open(path, 'a') as fh:
                    fh.write('x')
                return 'written'
            except OSError as exc:
                return type(exc).__name__
        forbidden = ['/usr/evil', '/evil', '/etc/evil', '/root/evil', {sys.prefix + '/evil'!r},
                     {sys.executable!r}, job + '/job.json', job + '/probe/runner.py', job + '/evil',
                     '/proc/sys/kernel/hostname']
        allowed = [os.getcwd() + '/written.txt', '/tmp/evil', os.environ['HOME'] + '/evil']
        R['forbidden'] = {{p: attempt(p) for p in forbidden}}
        R['allowed'] = {{p: attempt(p) for p in allowed}}
    """)
    assert all(v != "written" for v in seen["forbidden"].values()), seen["forbidden"]
    assert all(v == "written" for v in seen["allowed"].values()), seen["allowed"]
    # The working copy a probe writes to is a private size-limited tmpfs (filled from the real one):
    # nothing it writes reaches the host's disk.
    assert not (workdir / "written.txt").exists()
    assert not Path("/evil").exists() and not Path("/tmp/evil").exists()


def test_fork_bomb_is_stopped(sandbox, workdir):
    started = time.monotonic()
    seen = observe(sandbox, workdir, """
        import time
        n, err = 0, None
        try:
            for _ in range(5000):
                if os.fork() == 0:
                    os.setsid()  # escape the task's process group: only the pid namespace catches it
                    while True:
                        try:
                            os.fork()
                        except OSError:
                            time.sleep(0.01)
                n += 1
        except OSError as exc:
            err = type(exc).__name__
        R['forks'], R['error'], R['job'] = n, err, sys.argv[1]
    """, timeout=5.0)
    assert seen["error"] == "BlockingIOError", seen
    assert seen["forks"] < unprivileged.NPROC
    assert time.monotonic() - started < 60
    time.sleep(0.5)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if seen["job"].encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                left.append(pid)
        except OSError:
            pass
    assert not left, f"sandbox processes outlived the probe: {left}"


def test_memory_cap(sandbox, workdir):
    seen = observe(sandbox, workdir, """
        import resource
        R['as_limit'] = resource.getrlimit(resource.RLIMIT_AS)[0]
        try:
            block = bytearray(3 * 1024**3)
            R['alloc'] = 'allocated'
        except MemoryError:
            R['alloc'] = 'MemoryError'
    """, memory=1 * GiB)
    assert seen["as_limit"] == 1 * GiB
    assert seen["alloc"] == "MemoryError"


def test_engine_grades_reference_full_marks(sandbox, monkeypatch):
    import grader.sandbox as levels
    from grader.grading.engine import GradeOptions, Grader

    monkeypatch.setattr(levels.levels, "sandbox_levels",
                        lambda: {"bwrap": BwrapSandbox, "process": levels.ProcessSandbox})
    with Grader("pset4", GradeOptions(sandbox="bwrap", dataset="digits")) as g:
        result = g.grade(REPO / "reference" / "pset4")
    assert result.sandbox == "bwrap"
    assert result.autograded_points == pytest.approx(45.0), [
        (c.id, c.status, c.message) for q in result.questions for c in q.checks if c.points < c.max_points]


def test_a_process_limit_held_by_others_is_not_charged(sandbox, workdir, monkeypatch):
    """Another program holds every process the sandbox uid may have (a neighbour's fork loop
    where uids are shared: a container, a TA who is not root). The probe cannot start its task
    however long it waits: the submission is not graded, with the reason, and never scored 0."""
    if os.geteuid() != 0:
        pytest.skip("filling another uid's process count needs root")
    from grader.errors import MachineBusy
    from grader.probes import runner

    monkeypatch.setattr(runner, "PATIENCE", 1.0)
    (workdir / "mlp.py").write_text("x = 1\n")
    uid = sandbox.uid  # (read here: as root it follows the reading process's pid)
    ready_r, ready_w = os.pipe()
    filler = os.fork()
    if filler == 0:  # the other program: the sandbox uid's processes up to the limit, held
        os.close(ready_r)
        import resource
        resource.setrlimit(resource.RLIMIT_NPROC, (unprivileged.NPROC, unprivileged.NPROC))
        os.setgroups([])
        os.setgid(sandbox.gid)
        os.setuid(uid)
        while True:
            try:
                if os.fork() == 0:
                    time.sleep(120)
                    os._exit(0)
            except BlockingIOError:
                break
        os.write(ready_w, b"x")
        time.sleep(120)
        os._exit(0)
    os.close(ready_w)
    try:
        assert os.read(ready_r, 1) == b"x"
        with pytest.raises(MachineBusy) as caught:
            run_probe(workdir, "pset4", [Task("import", "import_module", timeout=5)], sandbox)
        assert str(caught.value).startswith("not graded: the machine could not start a process")
        assert "no fault of this submission" in str(caught.value)
    finally:
        os.close(ready_r)
        subprocess.run(["pkill", "-KILL", "-U", str(uid)], check=False)
        os.waitpid(filler, 0)
