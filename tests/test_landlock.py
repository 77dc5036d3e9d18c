"""The landlock level's own pieces: the ctypes Landlock module (rules, ABI gaps, what a
restricted process may still do), the policy a probe gets, and how an unavailable level is
explained. The attacks themselves run at this level in tests/test_hostile.py."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from grader.probes import landlock_rules
from grader.sandbox import build_site_view, landlock
from grader.sandbox.landlock import LandlockSandbox

from conftest import REPO

ABI = landlock_rules.abi_version()
needs_landlock = pytest.mark.skipif(ABI == 0, reason="this kernel has no Landlock")


def test_links_are_resolved_before_a_rule_is_placed(tmp_path):
    # A virtual environment's lib64 -> lib: a rule on the link would be a rule on lib, whose
    # site-packages (the grader's own entries) must stay hidden.
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3" / "site-packages"
    (site / "grader").mkdir(parents=True)
    (venv / "lib" / "python3" / "os.py").write_text("")
    (venv / "lib64").symlink_to("lib")
    (venv / "pyvenv.cfg").write_text("")
    entries = landlock_rules._tree_without(str(venv), [str(site)])
    assert str(venv / "lib64") not in entries
    assert sorted(entries) == [str(venv / "lib" / "python3" / "os.py"), str(venv / "pyvenv.cfg")]
    assert not any(e == str(site) or e.startswith(str(site) + "/") or str(site).startswith(e + "/")
                   for e in entries)


@pytest.mark.parametrize("abi,seccomp,gaps,absent", [
    (0, False, ["no Landlock in this kernel"], []),
    (1, False, ["moved between folders", "truncating", "TCP is not restricted", "signals and abstract", "UDP"], []),
    (1, True, ["moved between folders", "truncating", "signals and abstract"], ["TCP is not", "UDP"]),
    (3, True, ["signals and abstract"], ["truncating", "TCP is not", "UDP"]),
    (5, True, ["signals and abstract Unix sockets are not scoped"], ["TCP is not", "UDP"]),
    (6, True, [], ["TCP", "signals", "UDP"]),
    (7, False, ["UDP and other non-TCP sockets are not refused"], ["TCP is not", "signals"]),
])
def test_what_an_older_kernel_or_a_missing_filter_lacks_is_named(abi, seccomp, gaps, absent):
    text = landlock_rules.missing(abi, {"net": True, "scope": True}, seccomp)
    assert all(g in text for g in gaps), text
    assert not any(a in text for a in absent), text
    assert (text == "") == (not gaps)


@needs_landlock
def test_a_restricted_process_reads_writes_connects_and_signals_only_what_it_may(tmp_path):
    # (with pyseccomp installed, as it is on Linux, also no UDP)
    allowed, hidden, outside = tmp_path / "allowed", tmp_path / "allowed" / "hidden", tmp_path / "outside"
    for folder in (hidden, outside, tmp_path / "work"):
        folder.mkdir(parents=True, exist_ok=True)
    (allowed / "open.txt").write_text("ok")
    (hidden / "secret.txt").write_text("answers")
    (outside / "secret.txt").write_text("answers")
    policy = {"read": [str(allowed), sys.base_prefix, sys.prefix, "/usr", "/lib", "/lib64"],
              "hidden": [str(hidden)], "write": [str(tmp_path / "work")], "net": True, "scope": True,
              "seccomp_dir": landlock._seccomp_dir()}
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        script = textwrap.dedent(f"""
            import json, os, socket, sys
            sys.path.insert(0, {str(Path(landlock_rules.__file__).parent)!r})
            import landlock_rules
            gaps = landlock_rules.restrict(json.loads(sys.argv[1]))
            R = {{"gaps": gaps}}
            def attempt(name, action):
                try:
                    action()
                    R[name] = "done"
                except OSError as exc:
                    R[name] = type(exc).__name__
            attempt("read_allowed", lambda: open({str(allowed / 'open.txt')!r}).read())
            attempt("read_hidden", lambda: open({str(hidden / 'secret.txt')!r}).read())
            attempt("read_outside", lambda: open({str(outside / 'secret.txt')!r}).read())
            attempt("read_grader", lambda: open({str(REPO / 'grader' / 'kinds' / 'base.py')!r}).read())
            attempt("write_work", lambda: open({str(tmp_path / 'work' / 'new.txt')!r}, "w").write("x"))
            attempt("write_allowed", lambda: open({str(allowed / 'new.txt')!r}, "w").write("x"))
            attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
            attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {port})))
            attempt("unix", lambda: socket.socketpair())
            print(json.dumps(R))
        """)
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", script, json.dumps(policy)],
                              capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["read_allowed"] == seen["write_work"] == "done"
    assert seen["read_hidden"] == seen["read_outside"] == seen["read_grader"] == "PermissionError"
    assert seen["write_allowed"] == "PermissionError"
    if ABI >= 4:
        assert seen["connect"] == "PermissionError"
    if ABI >= 6:
        assert seen["signal_parent"] == "PermissionError"
    if landlock._seccomp_dir():  # the socket filter: no IPv4/IPv6 socket at all, Unix sockets still work
        assert seen["udp"] == "PermissionError" and seen["unix"] == "done"
    assert seen["gaps"] == landlock_rules.missing(ABI, policy, bool(landlock._seccomp_dir()))
    assert not (allowed / "new.txt").exists() and (tmp_path / "work" / "new.txt").read_text() == "x"


def test_the_policy_hides_the_grader_the_course_and_site_packages(tmp_path):
    jobdir = tmp_path / "job"
    for sub in ("out", "home"):
        (jobdir / sub).mkdir(parents=True)
    build_site_view(jobdir / "site")
    work = tmp_path / "work"
    work.mkdir()
    policy = LandlockSandbox().policy(jobdir, [jobdir], [jobdir / "out", jobdir / "home", work])
    hidden = set(policy["hidden"])
    assert str(REPO / "grader") in hidden and str(REPO / "reference") in hidden and str(REPO / "rubrics") in hidden
    assert all(str(d) in hidden for d in landlock.site_dirs())
    assert not any(r == str(REPO) or str(REPO).startswith(r.rstrip("/") + "/") for r in policy["read"])
    assert policy["write"] == [str(jobdir / "out"), str(jobdir / "home"), str(work), "/dev/null"]
    assert "/proc" in policy["read"] and "/proc" not in policy["task_layer"]["read"]
    assert policy["net"] and policy["scope"] and policy["task_layer"]["scope"]


@needs_landlock
def test_an_unreachable_interpreter_names_the_abi_the_folder_and_the_fix(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("only root switches probes to another uid")
    tmp_path = Path(tempfile.mkdtemp())  # under /tmp directly: pytest's own temp folders are not passable
    os.chmod(tmp_path, 0o755)
    locked = tmp_path / "home-of-root"
    python = locked / ".pyenv" / "versions" / "3.11"
    python.mkdir(parents=True)
    locked.chmod(0o700)
    monkeypatch.setattr(landlock, "interpreter_roots", lambda: [python])
    ok, reason, fix = LandlockSandbox(uid=65534, gid=65534)._check()
    assert not ok
    assert f"Landlock ABI {ABI} is present" in reason and str(locked) in reason and "drwx------" in reason
    assert fix.startswith(f"chmod o+x {locked}")
    locked.chmod(0o755)
    shutil.rmtree(tmp_path)


def test_doctor_shows_the_landlock_row():
    from grader.sandbox import doctor

    row = {r.level: r for r in doctor()}["landlock"]
    if ABI == 0:
        assert not row.works and "no Landlock" in row.reason
    elif row.works:
        assert f"Landlock ABI {ABI} works" in row.reason and "TCP" in row.reason and not row.fix
    else:
        assert f"Landlock ABI {ABI}" in row.reason and row.fix
    if row.works and landlock._seccomp_dir():
        # one voice: the trial runs with the socket filter probes get, so the gaps it names
        # never contradict the limitations text ("a seccomp filter refuses ... UDP too")
        assert "not refused (no pyseccomp" not in row.reason and "UDP too" in row.reason


def test_the_socket_filter_loads_libseccomp_by_its_soname_where_find_library_cannot(tmp_path):
    """A slim container image has no ldconfig and no compiler, so ctypes.util.find_library finds
    no libseccomp although libseccomp.so.2 is installed: the filter must load it all the same."""
    folder = landlock._seccomp_dir()
    if not folder:
        pytest.skip("pyseccomp or libseccomp is not installed here")
    code = textwrap.dedent(f"""
        import ctypes.util, sys
        real = ctypes.util.find_library
        ctypes.util.find_library = lambda name: None if name == "seccomp" else real(name)
        sys.path.insert(0, {str(Path(landlock_rules.__file__).parent)!r})
        import landlock_rules
        print(landlock_rules._seccomp({{"seccomp_dir": {folder!r}}}) is not None)
    """)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True"], out.stderr
