"""Hostile submissions cannot escape, forge, starve or stop the grader.

Each attack is a small student `mlp.py` in tests/fixtures/hostile/<attack>/ that subclasses a
correct model (tests/fixtures/hostile/_base/mlp_base.py, copied beside it) and puts its attack
in one method, usually predict(); so the exact score says what the attack cost. Every attack is
graded through the real engine with the offline digits data and the training-on-data checks
skipped (25 autograded points; predict_hidden is worth 2), at the `bwrap` and `landlock` levels
(each SKIPPED with the reason when it is not available here, never passed) and at the `process`
level, where the expectation says precisely what that level does not stop. Attacks on the data channel, which
no sandbox level takes part in, run once, at the strongest level that works here. Every test
also checks that no process of any probe is still running afterwards. The outcomes are listed
in tests/fixtures/hostile/SCENARIOS.md.

Everything is bounded so that a failing sandbox cannot take the machine down: per-task time
limits, memory and disk attacks that stop themselves, a fork loop with a cap, a kill(-1) only
inside a pid namespace, network only to a listener the test opens on 127.0.0.1, and no fixture
ever touches a process other than its own ancestors or a file outside the test's folders (at
the process level /proc shows the whole machine: a fixture that wrote into every pipe it could
reopen there would corrupt unrelated processes).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grader.grading.engine import GradeOptions, Grader
from grader.grading.probe import TAMPERED, run_probe
from grader.kinds.tasks import Task
from grader.sandbox import NoneSandbox, choose_sandbox, sandbox_levels

from conftest import FIXTURES, REPO

HOSTILE = FIXTURES / "hostile"
OPTIONS = GradeOptions(dataset="digits", skip_data=True)
MAX = 25.0
LEVELS = ("bwrap", "landlock", "process")
WALLED = ("bwrap", "landlock")  # the levels that hide the filesystem and the network
ROOT = os.geteuid() == 0

# The checks a probe runs after the first predict task, in task order: what killing the runner loses.
LOOP_SCALE = 0.3  # predict's 5 s limit becomes 1.5 s
AFTER_PREDICT = ("predict_hidden", "sigmoid_toy_training", "history_format", "relu_toy_loss", "relu_gradcheck",
                 "relu_loss_hidden", "relu_grads_hidden", "relu_toy_training")


# ---------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def _graders():
    made: dict[str, Grader] = {}
    yield made
    for grader in made.values():
        grader.close()


@pytest.fixture(params=LEVELS)
def level(request):
    if request.param in WALLED:  # a skip with the reason when the level does not work here
        request.getfixturevalue(f"{request.param}_sandbox")
    return request.param


@pytest.fixture
def grader(level, _graders):
    """One Grader per level for the module (the reference outputs are computed once)."""
    if level not in _graders:
        _graders[level] = Grader("pset4", replace(OPTIONS, sandbox=level))
    yield _graders[level]
    assert_nothing_left(_graders[level])


def _scaled(level: str, graders: dict, scale: float):
    key = f"{level}-x{scale}"
    if key not in graders:
        graders[key] = Grader("pset4", replace(OPTIONS, sandbox=level, timeout_scale=scale))
    yield graders[key]
    assert_nothing_left(graders[key])


@pytest.fixture
def looping_grader(level, _graders):
    """For attacks that wait out their task's time limit: a Grader per level whose limits are
    scaled by LOOP_SCALE (the honest tasks of the same submission take 0.02-0.2 s)."""
    yield from _scaled(level, _graders, LOOP_SCALE)


@pytest.fixture
def patient_grader(level, _graders):
    """For attacks that must be ended by a limit other than the clock: filling 2 GiB takes 2-4 s
    on its own here, more beside another test run, which predict's 5 s did not always allow."""
    yield from _scaled(level, _graders, 3.0)


@pytest.fixture
def strongest(request, _graders):
    """For attacks on the data channel, which no sandbox level is part of: graded once, at the
    strongest level that works here (bwrap in CI; landlock or the process level where it cannot run)."""
    level = "process"
    for name in WALLED:
        try:
            request.getfixturevalue(f"{name}_sandbox")
            level = name
            break
        except pytest.skip.Exception:
            pass
    if level not in _graders:
        _graders[level] = Grader("pset4", replace(OPTIONS, sandbox=level))
    yield _graders[level], level
    assert_nothing_left(_graders[level])


def submission(folder: Path, attack: str, **files: str) -> Path:
    """The attack's folder plus the shared correct base, and any setting files (port.txt...)."""
    dest = folder / attack
    shutil.copytree(HOSTILE / attack, dest)
    shutil.copy(HOSTILE / "_base" / "mlp_base.py", dest)
    for name, text in files.items():
        (dest / name).write_text(text)
    return dest


def correct(folder: Path, name: str = "honest") -> Path:
    dest = folder / name
    dest.mkdir()
    shutil.copy(HOSTILE / "_base" / "mlp_base.py", dest / "mlp.py")
    return dest


def by_id(result) -> dict:
    return {c.id: c for c in result.checks()}


def observed(result, check: str = "predict_hidden") -> dict:
    """What the attack reported (the OBSERVED line of the traceback in the check's details)."""
    text = by_id(result)[check].details.get("error", "")
    for line in reversed(text.splitlines()):
        if "OBSERVED " in line:
            return json.loads(line.split("OBSERVED ", 1)[1])
    raise AssertionError(f"no observation in {check}: {text[-800:]}")


def assert_score(result, level: str, total: float, lost: dict[str, tuple[str, str]]) -> None:
    """`lost`: check -> (status, phrase of its message) for every check that earns nothing; every
    other check (not skipped) must pass with full points."""
    assert result.sandbox == level
    checks = {c.id: c for c in result.checks() if c.status != "skipped"}
    assert set(lost) <= set(checks)
    for cid, check in checks.items():
        if cid in lost:
            status, phrase = lost[cid]
            assert (check.status, check.points) == (status, 0), (cid, check.status, check.message)
            assert phrase in check.message, (cid, check.message)
        else:
            assert check.status == "passed" and check.points == check.max_points, (cid, check.message)
    assert result.autograded_points == pytest.approx(total)


def probe_processes(marker: str) -> list[str]:
    """Processes whose command line contains `marker` (a job or scratch path of the grader)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd and int(pid) != os.getpid():
            found.append(f"{pid}: {cmd[:120]!r}")
    return found


def assert_nothing_left(grader: Grader) -> None:
    """No process of any probe of this grader is alive, and no job or working copy is left."""
    deadline = time.monotonic() + 5
    while probe_processes(str(grader.scratch)) and time.monotonic() < deadline:
        time.sleep(0.1)  # killed processes take a moment to disappear
    assert not probe_processes(str(grader.scratch)), "probe processes outlived their probe"
    left = [p.name for p in grader.scratch.iterdir() if not p.name.startswith("data-")]
    assert left in ([], ["planted-by-student.txt"]), left


ONLY_PREDICT = {"predict_hidden": ("error", "")}


# ---------------------------------------------------------------------- the data channel


def test_hardcoded_handout_numbers_earn_only_the_published_checks(strongest, tmp_path):
    grader, level = strongest
    # Hard-coding the handout's constants passes exactly the public checks whose expected value
    # is such a constant (toy losses, final toy training losses, history lengths: 7 points);
    # everything compared with the reference on hidden inputs, and the gradient checks, fail.
    result = grader.grade(submission(tmp_path, "hardcoded_numbers"))
    failed = ("sigmoid_scores_hidden", "sigmoid_loss_hidden", "sigmoid_grads_hidden", "predict_hidden",
              "relu_loss_hidden", "relu_grads_hidden")
    assert_score(result, level, 7, {**{c: ("failed", "") for c in failed},
                                    "sigmoid_gradcheck": ("failed", "the loss does not depend on W1"),
                                    "relu_gradcheck": ("failed", "the loss does not depend on W1")})


def test_searching_the_disk_for_the_reference(grader, level, tmp_path):
    # The model returns zeros unless it finds reference/pset4/mlp.py (it is even told where the
    # repository is, as a student who guessed it would be), in which case it becomes it.
    result = grader.grade(submission(tmp_path, "search_reference", **{"hint.txt": str(REPO)}))
    if level == "bwrap":
        # Only the zero model's history lengths pass; predict() reports the search.
        lost = {c.id: (c.status, "") for c in result.checks() if c.status not in ("skipped", "passed")}
        assert_score(result, level, 1, lost)
        assert set(lost) == {c.id for c in result.checks() if c.status != "skipped"} - {"history_format"}
        seen = observed(result)
        assert seen["found"] == [] and seen["visits"] > 1000  # it looked, and found nothing
    elif level == "landlock":
        # Landlock hides no names (no mount namespace): told where the repository is, the module
        # sees that reference/pset4/mlp.py exists, but opening it is refused, so it does not even
        # import. Every check is lost, each with the refusal as the reason.
        checks = [c for c in result.checks() if c.status != "skipped"]
        assert result.autograded_points == 0 and checks
        assert all(c.points == 0 and c.status == "error" for c in checks)
        assert "PermissionError" in by_id(result)["sigmoid_toy_loss"].message
        assert "reference/pset4/mlp.py" in by_id(result)["sigmoid_toy_loss"].details.get("error", "")
    else:
        # NOT STOPPED at the process level: the filesystem is visible, the reference is found.
        assert_score(result, level, MAX, {})
        assert "filesystem" in result.sandbox_limitations


def test_importing_and_patching_the_grader(grader, level, tmp_path):
    result = grader.grade(submission(tmp_path, "patch_grader", **{"hint.txt": str(REPO)}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    assert seen["imported"] == []  # not on its import path at any level
    assert seen["numpy_patched"]  # patches happen in its own process only: the score is unchanged
    if level in WALLED:
        assert seen["job_files_written"] == 0
        # (landlock as an ordinary user: access(2) answers from the file modes, which Landlock does not
        # change; opening the files is refused all the same, as the tamper test shows)
        assert seen["grader_files_writable"] == [] or (level == "landlock" and not ROOT)
    else:
        # Not stopped at the process level: it may write the job's files (already read, so
        # harmless), and the grader's own files are as writable as for the grader's user.
        writable = [r for r in ("grader/kinds/base.py", "grader/grading/engine.py", "rubrics/pset4.toml")
                    if os.access(REPO / r, os.W_OK)]
        assert seen["job_files_written"] > 0 and seen["grader_files_writable"] == writable


def test_patching_the_probe_forges_the_public_gradient_check(strongest, tmp_path):
    grader, level = strongest
    # KNOWN LIMITATION (every level): the handout's gradient check compares two numbers the child
    # computes (the analytic and the numerical gradient); code that patches the probe module in
    # its own process forges both. Made-up gradients then pass sigmoid_gradcheck and
    # relu_gradcheck (5 points); everything compared with the reference still fails.
    result = grader.grade(submission(tmp_path, "patch_probe"))
    assert_score(result, level, 14.5, {"sigmoid_grads_hidden": ("failed", "differ from the reference"),
                                       "relu_grads_hidden": ("failed", "differ from the reference"),
                                       "sigmoid_toy_training": ("failed", "outside the accepted band"),
                                       "relu_toy_training": ("failed", "outside the accepted band")})


def test_forged_messages_on_stdout_and_inherited_descriptors(grader, level, tmp_path):
    # predict() writes a message in the runner's format claiming "passed", 100 points and the right
    # predictions to stdout, stderr, every inherited descriptor and the runner's stdout via /proc.
    result = grader.grade(submission(tmp_path, "forge_stdout"))
    if level == "process" and ROOT:
        # Student code runs as root here, so it can reopen the runner's stdout: the parent sees a
        # stream that is not its messages in order and uses no result of the run at all.
        checks = [c for c in result.checks() if c.status != "skipped"]
        assert result.autograded_points == 0
        assert all(c.status == "error" and TAMPERED in c.message for c in checks)
        return
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    assert seen["reopened"] == []  # the runner is not dumpable; its pipes belong to the grader
    assert seen["fds"] == [0, 1, 2]  # /dev/null and its own log: nothing inherited


def test_arrays_named_points_or_passed_set_nothing(strongest, tmp_path):
    grader, level = strongest
    # Every predict task writes its own result archive with the right labels plus arrays named
    # points (1000), passed, score and max_points, and leaves with os._exit(0).
    result = grader.grade(submission(tmp_path, "forge_result_file"))
    assert_score(result, level, MAX, {})  # every check run passes: the values are right ...
    assert all(c.points <= c.max_points for c in result.checks())  # ... and not a point more
    assert sum(c.max_points for c in result.checks() if c.status != "skipped") == MAX


def test_objects_whose_eq_and_float_lie(strongest, tmp_path):
    grader, level = strongest
    # Liars equal everything and are NaN as floats; the gradients are made up. Only the history
    # lengths pass. (Before rel_error treated NaN as infinitely wrong, the NaN numerical gradient
    # passed both gradient checks: `nan > tol` is False.)
    result = grader.grade(submission(tmp_path, "lying_objects"))
    lost = {c.id: ("failed", "") for c in result.checks() if c.status != "skipped" and c.id != "history_format"}
    lost["sigmoid_toy_loss"] = ("failed", "loss is nan")
    lost["sigmoid_gradcheck"] = ("failed", "relative error inf")
    lost["relu_gradcheck"] = ("failed", "relative error inf")
    assert_score(result, level, 1, lost)


def test_pickle_and_zip_bomb_payloads_are_refused(strongest, tmp_path):
    grader, level = strongest
    marker = tmp_path / "UNPICKLED"
    result = grader.grade(submission(tmp_path, "pickle_payload", **{"marker.txt": str(marker)}))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "pred has dtype object, not numbers")})
    assert not marker.exists()


def test_oversized_result_is_refused(strongest, tmp_path):
    grader, level = strongest
    result = grader.grade(submission(tmp_path, "oversized_result"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "the grader accepts at most")})


# ---------------------------------------------------------------------- exits and resources


def test_os_exit(grader, level, tmp_path):
    result = grader.grade(submission(tmp_path, "os_exit"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "does the code call os._exit()")})


def test_sys_exit(strongest, tmp_path):
    grader, level = strongest
    result = grader.grade(submission(tmp_path, "sys_exit"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "SystemExit")})


def test_infinite_loop(looping_grader, level, tmp_path):
    started = time.monotonic()
    result = looping_grader.grade(submission(tmp_path, "infinite_loop"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("timeout", "did not finish within 1.5 s")})
    assert time.monotonic() - started < 60


def test_loop_that_ignores_signals_and_swallows_exceptions(looping_grader, level, tmp_path):
    result = looping_grader.grade(submission(tmp_path, "signal_loop"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("timeout", "did not finish within 1.5 s")})


def test_memory_blowup(patient_grader, level, tmp_path):
    result = patient_grader.grade(submission(tmp_path, "memory_blowup"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "more memory than the grader allows")})
    assert "safety stop" not in json.dumps([c.details for c in result.checks()])


def test_fork_loop_with_escapes_from_the_process_group(grader, level, tmp_path):
    # Up to 200 processes that setsid() or double-fork and sleep for ten minutes: the task's
    # process group does not hold them; the runner (their subreaper) or the pid namespace does.
    result = grader.grade(submission(tmp_path, "fork_loop"))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    assert seen["started"] > 0
    assert not probe_processes(seen["job"]), "forked processes outlived the task"


def test_disk_fill(grader, level, tmp_path):
    # bwrap: the working copy, home and output folders are size-limited tmpfs mounts; process:
    # the runner stops a task whose folders grow past the limit. Either way the task fails and
    # the next tasks start clean (what a task created is removed).
    result = grader.grade(submission(tmp_path, "disk_fill"))
    check = {c.id: c for c in result.checks()}["predict_hidden"]
    assert "wrote more than 256 MB" in check.message or "No space left" in check.message, check.message
    assert_score(result, level, MAX - 2, ONLY_PREDICT)


def test_huge_output_is_truncated_not_buffered(grader, level, tmp_path):
    # 500 MB printed in one call, then to stderr: the log is a file with a size cap, so the
    # write fails with EFBIG; what the grader keeps is a short tail.
    result = grader.grade(submission(tmp_path, "huge_output"))
    assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "File too large")})
    assert len(json.dumps([c.details for c in result.checks()])) < 50_000


# ---------------------------------------------------------------------- escaping


@contextlib.contextmanager
def recording(listener: socket.socket):
    """What connects to `listener` (bound by the test) while the block runs: the first 16 bytes
    each connection sends, in a list filled by a thread."""
    accepted: list[bytes] = []
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    accepted.append(conn.recv(16))
                except OSError:
                    accepted.append(b"")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        thread.join(5)


def test_network_connection(grader, level, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        with recording(listener) as accepted:
            port = listener.getsockname()[1]
            result = grader.grade(submission(tmp_path, "network", **{"port.txt": str(port)}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    if level == "bwrap":
        assert seen["connect"] in ("ConnectionRefusedError", "OSError", "TimeoutError")
        assert seen["interfaces"] == ["lo"] and accepted == []
    elif level == "landlock":
        # The host's interfaces stay visible (no namespace); TCP connect is refused by Landlock.
        assert seen["connect"] == "PermissionError" and accepted == []
    else:
        # NOT STOPPED at the process level: the probe shares the host's network.
        assert seen["connect"] == "connected" and accepted and set(accepted) == {b"LEAK"}


def test_unix_socket_by_path_and_abstract_name(grader, level, tmp_path):
    """A Unix socket outside the job that another process listens on (on a TA's machine: X11,
    ssh-agent, a container engine), opened by this test, mode 777 so that only the sandbox can
    refuse it."""
    path = str(tmp_path / "agent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        os.chmod(path, 0o777)
        with recording(listener) as accepted:
            result = grader.grade(submission(tmp_path, "unix_socket", **{"socket.txt": path}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    if level == "bwrap":  # the path is not in the sandbox's view; abstract names are per network namespace
        assert seen["path"] == "FileNotFoundError" and seen["abstract"] == "ConnectionRefusedError"
        assert accepted == []
    elif level == "landlock":  # the task's seccomp filter refuses every new Unix socket
        assert seen == {"path": "PermissionError", "abstract": "PermissionError"} and accepted == []
    else:
        # NOT STOPPED at the process level (its limitations say so): the probe shares the host's files.
        assert seen["path"] == "connected" and accepted and set(accepted) == {b"LEAK"}


def test_killing_the_runner_costs_only_the_remaining_checks(grader, level, tmp_path):
    # predict() kills the process that runs the probe and its process group (and, inside a pid
    # namespace, every process it may signal). What the probe had not run yet is lost; the
    # grader (this test run) survives and grades the next submission normally.
    result = grader.grade(submission(tmp_path, "kill_parent"))
    if level == "landlock":
        # Each task is a Landlock domain of its own, nested in the runner's: it may not signal the
        # runner (kill fails), and it may not list /proc (its search for more victims raises).
        assert_score(result, level, MAX - 2, {"predict_hidden": ("error", "PermissionError")})
    else:
        assert_score(result, level, 15, {c: ("error", "the probe stopped before this task ran")
                                         for c in AFTER_PREDICT})
    assert_score(grader.grade(correct(tmp_path)), level, MAX, {})


def test_killing_the_grader_with_one_job_costs_that_submission_only(level, tmp_path):
    # With --jobs 1 (and so for one-off grading and Gradescope) predict() kills the process that
    # grades it. The process that writes results never runs a probe itself: a worker does, and
    # the submission that kills its worker twice gets a row saying so; the next one is graded.
    from grader.api import grade_folder

    folder = tmp_path / "class"
    folder.mkdir()
    submission(folder, "kill_grading", **{"spare_pid.txt": str(os.getpid())}).rename(folder / "a-killer")
    correct(folder, "b-honest")
    summary = grade_folder(folder, tmp_path / "out", "pset4", replace(OPTIONS, sandbox=level), jobs=1)
    rows = {r.submission: r for r in summary.results}
    assert sorted(rows) == ["a-killer", "b-honest"] and summary.jobs == 1
    assert_score(rows["b-honest"], level, MAX, {})
    assert json.loads((tmp_path / "out" / "b-honest" / "result.json").read_text())["autograded_points"] == MAX
    killer = rows["a-killer"]
    if level == "process":
        # NOT STOPPED at the process level: it may kill the worker, every time; the row says so.
        assert killer.autograded_points == 0
        assert killer.error == "the grading worker was killed by SIGKILL while grading this submission, twice"
        assert (tmp_path / "out" / "a-killer" / "result.json").is_file()
    else:
        # bwrap: the grader is outside its pid namespace; landlock: it may not read the runner's
        # /proc entries to find it (nor signal it if it did).
        assert_score(killer, level, MAX - 2, ONLY_PREDICT)
        seen = observed(killer)
        assert seen["outcome"] == "not tried"
        assert seen["grader"] == ("found" if level == "bwrap" else "PermissionError")


def test_reading_proc_of_the_parent(grader, level, tmp_path):
    result = grader.grade(submission(tmp_path, "proc_parent", **{"grader_pid.txt": str(os.getpid())}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    if level == "landlock":
        # No /proc at all for a task: not its runner's files, not even the list of processes (so
        # it cannot find its parent's parent either).
        assert seen["visible"] == "PermissionError" and not seen["grader_visible"]
        assert seen["ancestors"] == [{"pid": seen["ancestors"][0]["pid"], "environ": "PermissionError",
                                      "cwd": "PermissionError"}]
        return
    runner, above = seen["ancestors"][0], seen["ancestors"][1:]
    if level == "bwrap":
        assert not seen["grader_visible"] and seen["visible"] <= 5  # its own pid namespace
        assert [a["pid"] for a in seen["ancestors"]] == [2, 1]  # the runner, bwrap's init: nothing above
        assert runner["environ"] == "PermissionError"  # the runner is not dumpable
    else:
        # NOT STOPPED at the process level: the grader (pytest) is its grandparent, visible, and
        # readable by the same user; the runner is not dumpable, which stops all but root.
        assert seen["grader_visible"] and above[0]["environ"] == "readable"
        assert runner["environ"] == ("readable" if ROOT else "PermissionError")


def test_signalling_and_reading_the_grader(grader, level, tmp_path):
    # predict() is told the grader's pid (this test run), reads its memory map and environment
    # via /proc and sends it signal 0 and SIGCONT (harmless, but proof that any signal would go
    # through), and signal 0 to the process that runs the probe.
    result = grader.grade(submission(tmp_path, "signal_grader", **{"grader_pid.txt": str(os.getpid())}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    if level == "bwrap":
        # Its own pid namespace: the grader's pid does not exist there.
        assert seen["grader_signal0"] == seen["grader_sigcont"] == "ProcessLookupError"
        assert seen["grader_maps"] == seen["grader_environ"] == "FileNotFoundError"
        assert seen["runner_signal0"] == "done"  # the runner is inside the same namespace
    elif level == "landlock":
        # Signals are scoped to the task's own Landlock domain: not the grader, not even its runner.
        assert seen["grader_signal0"] == seen["grader_sigcont"] == seen["runner_signal0"] == "PermissionError"
        assert seen["grader_maps"] == seen["grader_environ"] == "PermissionError"
    else:
        # NOT STOPPED at the process level: the same user (or root) may signal and read the grader.
        assert seen["grader_signal0"] == seen["grader_sigcont"] == seen["runner_signal0"] == "done"
        assert seen["grader_maps"] == seen["grader_environ"] == "done"


def test_environment_secrets(level, tmp_path):
    # A grader started with a secret in its environment (as a TA's shell would have it), in a
    # subprocess so that the secret is in its initial environment (what /proc/<pid>/environ shows).
    sub = submission(tmp_path, "env_secrets")
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from grader.grading.engine import GradeOptions, Grader
        with Grader("pset4", GradeOptions(sandbox={level!r}, dataset="digits", skip_data=True)) as g:
            r = g.grade(__import__("pathlib").Path({str(sub)!r}))
        print(json.dumps({{"points": r.autograded_points,
                          "error": {{c.id: c for c in r.checks()}}["predict_hidden"].details.get("error", "")}}))
    """)
    env = {**os.environ, "MLP_GRADER_TEST_SECRET": "hunter2-" + os.urandom(4).hex()}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["points"] == MAX - 2
    assert env["MLP_GRADER_TEST_SECRET"] not in proc.stdout
    seen = json.loads(out["error"].rsplit("OBSERVED ", 1)[1].splitlines()[0])
    assert "MLP_GRADER_TEST_SECRET" not in seen["own_env"]  # a scrubbed environment at every level
    if level in WALLED:
        assert seen["found"] == []
        if level == "landlock":
            assert seen["environ_readable"] == 0  # not even its own: no /proc for a task
    else:
        # NOT STOPPED at the process level: the grader's /proc/<pid>/environ is readable by the
        # same user, and the secret is there.
        assert seen["found"] == ["/proc/ancestor/environ"]


def test_tampering_with_other_submissions_and_the_output(grader, level, tmp_path):
    # Graded in sequence: the hostile one, then the victim whose folder it knows. It tries to
    # break the victim's mlp.py, plant files in the victim's folder and the output folder,
    # overwrite an already graded student's result.json, and plant a file in the grader's scratch.
    victim = correct(tmp_path, "victim")
    out_dir = tmp_path / "out"
    (out_dir / "early").mkdir(parents=True)
    graded = out_dir / "early" / "result.json"
    graded.write_text('{"autograded_points": 25}')
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (victim / "mlp.py", graded)}
    targets = {"victim": str(victim), "graded_result": str(graded), "out_dir": str(out_dir)}
    result = grader.grade(submission(tmp_path, "tamper_other", **{"targets.json": json.dumps(targets)}))
    assert_score(result, level, MAX - 2, ONLY_PREDICT)
    seen = observed(result)
    victim_result = grader.grade(victim)
    planted = (grader.scratch / "planted-by-student.txt").exists()
    if level in WALLED:
        assert seen["written"] == [] and not planted  # (its own private /tmp it may write)
        assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
        assert sorted(p.name for p in victim.iterdir()) == ["mlp.py"]
        assert sorted(p.name for p in out_dir.iterdir()) == ["early"]
        assert_score(victim_result, level, MAX, {})
    else:
        # NOT STOPPED at the process level: student code has the grader's user's rights over
        # every file that user can write.
        assert seen["written"] == ["victim/mlp.py", "victim/evil.py", "graded_result", "out_dir/evil.txt"]
        assert planted
        assert victim_result.autograded_points == 0  # its mlp.py now ends with raise SystemExit
        (grader.scratch / "planted-by-student.txt").unlink()


# ---------------------------------------------------------------------- the `none` level


def test_none_level_is_last_never_automatic_and_warns():
    levels = sandbox_levels()
    assert list(levels)[-1] == "none"
    assert choose_sandbox().name != "none"
    sandbox = choose_sandbox("none")
    assert "NO isolation" in sandbox.warning and "OWN code" in sandbox.warning
    assert "NO isolation" in sandbox.limitations
    assert not NoneSandbox.rlimits and not NoneSandbox.automatic
    assert all(not levels[name]().warning for name in ("bwrap", "process"))


def test_none_level_keeps_the_wall_clock(tmp_path):
    with Grader("pset4", replace(OPTIONS, sandbox="none", timeout_scale=LOOP_SCALE)) as grader:
        result = grader.grade(submission(tmp_path, "infinite_loop"))
        assert "NO isolation" in result.sandbox_limitations
        assert_score(result, "none", MAX - 2, {"predict_hidden": ("timeout", "did not finish within 1.5 s")})
        assert_nothing_left(grader)


# ---------------------------------------------------------------------- data seen by the probe


@pytest.fixture
def probe_level(level):
    return choose_sandbox(level)


@pytest.fixture
def scratch():
    """A folder under the temp dir (the bwrap level makes such folders passable for its uid)."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="hostile-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _dataset_dir(scratch: Path):
    from grader.data import handout_split

    rng = np.random.RandomState(0)
    ds = handout_split(rng.randn(60, 4), rng.randint(3, size=60), (30, 10, 20), name="tiny")
    folder = scratch / "data-tiny"
    ds.export_for_probe(folder)
    (scratch / "answers.npy").write_bytes(b"decoy beside the data folder")
    return folder, ds


def _observe_import(sandbox, workdir: Path, body: str, data_dir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "mlp.py").write_text("import json, os, sys\nR = {}\n" + textwrap.dedent(body)
                                    + "\nraise RuntimeError('OBSERVED ' + json.dumps(R))\n")
    out = run_probe(workdir, "pset4", [Task("import", "import_module", timeout=60)], sandbox, data_dir=data_dir)
    for line in reversed(out["import"].error.splitlines()):
        if "OBSERVED " in line:
            return json.loads(line.split("OBSERVED ", 1)[1])
    raise AssertionError(out["import"].error or out["import"].detail)


def test_probe_sees_only_the_arrays_it_needs(probe_level, level, scratch):
    data_dir, _ = _dataset_dir(scratch)
    seen = _observe_import(probe_level, scratch / "work", """
        job = json.load(open(os.path.join(sys.argv[1], 'job.json')))
        data = job['data_dir']
        R['data'] = sorted(os.listdir(data))
        try:
            R['beside'] = sorted(os.listdir(os.path.dirname(data)))
        except OSError as exc:
            R['beside'] = type(exc).__name__
        R['job_files'] = sorted(f for _, _, fs in os.walk(sys.argv[1]) for f in fs if 'y_test' in f)
        try:
            from sklearn.datasets import load_digits
            R['digits_labels'] = int(load_digits().target.shape[0])
        except Exception as exc:
            R['digits_labels'] = type(exc).__name__
    """, data_dir)
    # The held-out labels never leave the parent: only these five arrays exist for the probe.
    assert seen["data"] == ["X_test.npy", "X_train.npy", "X_val.npy", "y_train.npy", "y_val.npy"]
    assert seen["job_files"] == []
    if level in WALLED:
        # bwrap: only the data folder is mounted; landlock: the folder above it may not be listed
        assert "answers.npy" not in seen["beside"]
        assert level == "bwrap" or seen["beside"] == "PermissionError"
        assert seen["digits_labels"] != 1797  # scikit-learn's bundled copy (all digits labels) is masked
    else:
        # NOT STOPPED at the process level: files beside the data folder, and scikit-learn's
        # bundled digits (from which the digits stand-in's held-out labels can be rebuilt).
        assert "answers.npy" in seen["beside"] and seen["digits_labels"] == 1797


def test_poisoned_data_folder_is_not_reused(probe_level, level, scratch):
    # A probe that overwrites the exported training data would poison every later submission at
    # the process level; the parent notices the change and discards the export (re-made on demand).
    data_dir, ds = _dataset_dir(scratch)
    seen = _observe_import(probe_level, scratch / "work", """
        job = json.load(open(os.path.join(sys.argv[1], 'job.json')))
        try:
            with open(os.path.join(job['data_dir'], 'X_train.npy'), 'r+b') as fh:
                fh.seek(200)
                fh.write(b'\\0' * 64)
            R['poisoned'] = True
        except OSError as exc:
            R['poisoned'] = type(exc).__name__
    """, data_dir)
    if level in WALLED:
        assert seen["poisoned"] in ("OSError", "PermissionError")
        assert np.array_equal(np.load(data_dir / "X_train.npy"), ds.X_train)
    else:
        assert seen["poisoned"] is True and not list(data_dir.iterdir())
        ds.export_for_probe(data_dir)
        assert np.array_equal(np.load(data_dir / "X_train.npy"), ds.X_train)


# ---------------------------------------------------------------------- uploaded archives


def _zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("name,members,phrase", [
    ("bomb", {"mlp.py": b"x = 1\n", "data.bin": b"\0" * (60 * 1024**2)}, "zip bomb"),
    ("dotdot", {"mlp.py": b"x = 1\n", "../../escaped.py": b"print('out')\n"}, r"with '\.\.'"),
    ("absolute", {"mlp.py": b"x = 1\n", "/tmp/escaped-abs.py": b"print('out')\n"}, "absolute"),
])
def test_hostile_zip_uploads_are_refused(tmp_path, name, members, phrase):
    layouts = pytest.importorskip("grader.batching.layouts")
    archive = _zip(tmp_path / f"{name}.zip", members)
    dest = tmp_path / "scratch" / "x"
    dest.mkdir(parents=True)
    with pytest.raises(layouts.UnsafeArchive, match=phrase):
        layouts.extract_zip(archive, dest, ("mlp.py",))
    assert not (tmp_path / "escaped.py").exists() and not Path("/tmp/escaped-abs.py").exists()
    written = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file() and f != archive)
    assert written < 1024**2


def test_zip_whose_header_lies_about_its_size(tmp_path):
    layouts = pytest.importorskip("grader.batching.layouts")
    archive = _zip(tmp_path / "liar.zip", {"mlp.py": b"\0" * (30 * 1024**2)})
    raw = bytearray(archive.read_bytes())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist()[0]
    real = info.file_size.to_bytes(4, "little")
    fake = (1000).to_bytes(4, "little")
    assert raw.count(real) == 2  # local header and central directory
    archive.write_bytes(bytes(raw).replace(real, fake))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(layouts.UnsafeArchive):
        layouts.extract_zip(archive, dest, ("mlp.py",))
    assert sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) <= 1000


def test_zip_uploads_in_a_folder_become_rows_with_the_reason(tmp_path):
    layouts = pytest.importorskip("grader.batching.layouts")
    folder = tmp_path / "uploads"
    folder.mkdir()
    _zip(folder / "mallory.zip", {"mlp.py": b"x = 1\n", "../../evil.py": b"x = 2\n"})
    _zip(folder / "zed.zip", {"mlp.py": b"\0" * (60 * 1024**2)})
    found = layouts.discover_entries(folder, ("mlp.py",), ("mlp.py",), tmp_path / "scratch")
    errors = {e.name: e.error for e in found.entries}
    assert "unsafe path" in errors["mallory"] and "zip bomb" in errors["zed"]
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "scratch" / "evil.py").exists()


# ---------------------------------------------------------------------- a batch with hostile neighbours


CORRECT = ("correct_loops", "correct_is_compare", "correct_helpers", "correct_unstable_predict")


def _batch_scores(folder: Path, out: Path, skip_data: bool, level: str | None = None) -> dict[str, list]:
    from grader.api import grade_folder

    summary = grade_folder(folder, out, "pset4", GradeOptions(sandbox=level, dataset="digits", skip_data=skip_data))
    assert not summary.failed, [(r.submission, r.error) for r in summary.failed]
    return {r.submission: [r.sandbox, r.autograded_points] + [(c.id, c.points, c.status) for c in r.checks()]
            for r in summary.results}


def _batch_with_and_without(tmp_path: Path, honest: int, attacks: tuple[str, ...], skip_data: bool,
                            level: str | None = None) -> None:
    """`honest` correct submissions graded alone, then beside `attacks` (named to sort first, so
    they run before or beside them), by grade_folder at the default (strongest) level with the
    digits data and the default number of workers: every honest submission gets exactly the
    same result, check by check."""
    from conftest import PSET4_FIXTURES

    alone, mixed = tmp_path / "alone", tmp_path / "mixed"
    for i in range(honest):
        for folder in (alone, mixed):
            shutil.copytree(PSET4_FIXTURES / CORRECT[i % len(CORRECT)], folder / f"student{i:02d}")
    victim = mixed / "student00"
    for attack in attacks:
        sub = submission(mixed, attack)
        sub.rename(mixed / f"a-{attack}")
        (mixed / f"a-{attack}" / "targets.json").write_text(json.dumps({"victim": str(victim),
                                                                        "out_dir": str(tmp_path / "out-mixed")}))
    expected = _batch_scores(alone, tmp_path / "out-alone", skip_data, level)
    got = _batch_scores(mixed, tmp_path / "out-mixed", skip_data, level)
    assert {name: got[name] for name in expected} == expected
    assert all(v[0] == (level or choose_sandbox().name) for v in got.values())
    for attack in attacks:
        assert got[f"a-{attack}"][1] < (25 if skip_data else 45)  # each attack cost its author something
    assert sorted(p.name for p in victim.iterdir()) == sorted(p.name for p in (alone / "student00").iterdir())


def test_batch_with_three_hostile_neighbours(bwrap_sandbox, tmp_path):
    # Fast version (about 30 s): 4 correct, 3 hostile (fork loop, runner killer, tamperer), the
    # training checks skipped; the slow version below trains on digits (about 2 minutes per 10).
    _batch_with_and_without(tmp_path, 4, ("fork_loop", "kill_parent", "tamper_other"), skip_data=True)


@pytest.mark.slow
def test_batch_with_three_hostile_neighbours_at_landlock(landlock_sandbox, tmp_path):
    # The same at the landlock level (the default in Docker and on Gradescope): the tamperer
    # writes into a neighbour's working copy and folder while the parallel batch runs. A repetition
    # of the batch above at another level: the default run covers the class at bwrap (the test
    # above) and the tamperer and the runner killer at landlock on their own (HOSTILE_DEFAULT in
    # conftest.py: test_tampering_with_other_submissions_and_the_output,
    # test_killing_the_runner_costs_only_the_remaining_checks).
    _batch_with_and_without(tmp_path, 4, ("fork_loop", "kill_parent", "tamper_other"), skip_data=True,
                            level="landlock")


@pytest.mark.slow
def test_a_fork_loop_beside_correct_submissions_at_the_process_level(tmp_path):
    # The fork loop alone at the process level (where a neighbour's files are not protected, so the
    # tamperer has no place here), 2 workers: the correct ones lose nothing. The default run covers
    # the class at bwrap (test_batch_with_three_hostile_neighbours); the container's shared uid is in
    # test_docker.py.
    _batch_with_and_without(tmp_path, 3, ("fork_loop",), skip_data=True, level="process")


@pytest.mark.slow
def test_batch_of_twenty_with_five_hostile_neighbours(bwrap_sandbox, tmp_path):
    # The tamperer also overwrites the exported training data where it can (not under bwrap).
    _batch_with_and_without(tmp_path, 20, ("fork_loop", "kill_parent", "tamper_other", "disk_fill",
                                           "memory_blowup"), skip_data=False)
