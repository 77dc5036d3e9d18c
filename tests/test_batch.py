"""Batch grading: parallel workers that survive being killed, a batch that resumes after
`kill -9` of its parent, results reused only when nothing that decides the score changed, and
the class summary built from the per-submission results."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from grader.batching.pool import kill_descendants, run_pool
from grader.cli import main

from conftest import PSET4_FIXTURES, REPO

COMMON = ["--dataset", "digits", "--sandbox", "process"]


# ---------------------------------------------------------------- the worker pool

def test_pool_returns_every_result(tmp_path):
    got = {}
    run_pool(7, 3, lambda i: i * i, got.__setitem__, lambda i, why: pytest.fail(why))
    assert got == {i: i * i for i in range(7)}


def test_a_killed_worker_costs_only_its_item_which_is_retried_once(tmp_path):
    def work(i: int) -> str:
        marker = tmp_path / f"died-{i}"
        if i == 2 and not marker.exists():  # dies the first time only: the retry succeeds
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if i == 4:  # dies every time: reported after the retry
            os.kill(os.getpid(), signal.SIGKILL)
        return f"ok {i}"

    got, lost = {}, {}
    run_pool(6, 2, work, got.__setitem__, lambda i, why: lost.setdefault(i, why) and f"lost {i}")
    assert got == {0: "ok 0", 1: "ok 1", 2: "ok 2", 3: "ok 3", 4: "lost 4", 5: "ok 5"}
    assert lost == {4: "the grading worker was killed by SIGKILL while grading this submission, twice"}


def test_an_exception_in_work_is_reported_not_raised():
    def work(i: int) -> int:
        if i == 1:
            raise RuntimeError("boom")
        return i

    got = {}
    run_pool(3, 2, work, got.__setitem__, lambda i, why: why)
    assert got[0] == 0 and got[2] == 2
    assert got[1].startswith("internal error while grading:") and "RuntimeError: boom" in got[1]


POOL_SCRIPT = textwrap.dedent("""
    import os, subprocess, sys, time
    sys.path.insert(0, {repo!r})
    from grader.batching.pool import run_pool

    def work(i):
        # like a probe: a child in its own session, which Ctrl-C to our group does not reach
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        with open(os.path.join({tmp!r}, f"pid-{{i}}"), "w") as fh:
            fh.write(str(child.pid))
        time.sleep(300)

    run_pool(2, 2, work, lambda i, v: None, lambda i, why: None)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _wait_gone(pids: list[int], seconds: float = 15) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _as_in_a_terminal() -> None:
    """Ctrl-C's signals at their defaults, as in a TA's terminal. A shell starts a background job
    (`pytest ... &`, a CI runner's) with SIGINT and SIGQUIT ignored, which every child inherits
    and Python keeps: the batch would never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def _where(pid: int) -> dict[int, str]:
    """pid -> its state, blocked and ignored signals and kernel stack, for it and its descendants."""
    found = {}
    for one in [pid, *_descendants(pid)]:
        try:
            status = Path(f"/proc/{one}/status").read_text().splitlines()
            stack = Path(f"/proc/{one}/stack").read_text() if os.access(f"/proc/{one}/stack", os.R_OK) else ""
        except OSError as exc:
            found[one] = str(exc)
            continue
        lines = [line for line in status if line.startswith(("Name", "State", "SigBlk", "SigIgn", "SigCgt"))]
        found[one] = " ".join(lines) + " wchan=" + Path(f"/proc/{one}/wchan").read_text() + " stack=" + stack
    return found


def _probe_pids(tmp_path: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("pid-*"))) < count:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    time.sleep(0.2)
    return [int(p.read_text()) for p in tmp_path.glob("pid-*")]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("how", ["ctrl-c", "kill -9 of the parent"])
def test_stopping_the_batch_stops_its_workers_and_their_probes(tmp_path, how):
    proc = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT.format(repo=str(REPO), tmp=str(tmp_path))],
                            start_new_session=True, stderr=subprocess.PIPE, preexec_fn=_as_in_a_terminal)
    probes = _probe_pids(tmp_path, 2)
    workers = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    assert len(workers) == 2 and all(_alive(p) for p in probes)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the foreground group
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:  # say where it hangs (the ignored SIGINT below was found so)
            where = _where(proc.pid)
            kill_descendants(proc.pid)  # nothing of it outlives the test
            proc.kill()
            proc.wait()
            raise AssertionError(f"the batch did not stop: {where}") from None
        assert b"KeyboardInterrupt" in proc.stderr.read()
    else:
        proc.kill()
        proc.wait()
    assert _wait_gone(workers + probes) == []


# ---------------------------------------------------------------- grading a class

def make_zip(path: Path, folder: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, prefix + file.relative_to(folder).as_posix())


def small_class(root: Path) -> dict[str, float | str]:
    """Every layout at once; returns the autograded points (or the error) each must get."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "reference" / "pset4" / "mlp.py", root / "smithjohn_LATE_1234_5678_mlp-1.py")
    make_zip(root / "bob.zip", PSET4_FIXTURES / "bug_predict_scores", prefix="bob_pset4/")
    with zipfile.ZipFile(root / "eve.zip", "w") as zf:
        zf.writestr("mlp.py", "x = 1\n")
        zf.writestr("../../../tmp/owned.py", "print('owned')\n")
    with zipfile.ZipFile(root / "mallory.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mlp.py", bytes(8 << 20))  # 8 MiB of zeros: ~1000-fold
    shutil.copytree(REPO / "student_template" / "pset4", root / "tom")
    (root / "dave").mkdir()
    (root / "dave" / "README.txt").write_text("no code here")
    return {"smithjohn": 45, "bob": 23, "tom": 0, "dave": 0,
            "eve": "eve.zip: unsafe path '../../../tmp/owned.py'", "mallory": "mallory.zip: mlp.py expands"}


def grade_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "grade", *args, *COMMON],
                          capture_output=True, text=True, timeout=900)


def results(out: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}


def check_points(out: Path, expected: dict[str, float | str]) -> None:
    got = results(out)
    assert set(got) == set(expected)
    for name, want in expected.items():
        if isinstance(want, str):
            assert got[name]["error"].startswith(want) and got[name]["autograded_points"] == 0
        else:
            assert not got[name]["error"] and got[name]["autograded_points"] == want, name


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        parent = stack.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            kids = [int(c) for c in (task / "children").read_text().split()] if (task / "children").exists() else []
            found += kids
            stack += kids
    return found


def kill_parent_after(args: list[str], out: Path, results_before_kill: int) -> int:
    """Start a batch, kill -9 its parent once that many results exist; returns how many there are."""
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", *args, *COMMON],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(list(out.glob("*/result.json"))) < results_before_kill:
        assert proc.poll() is None, "the batch ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    below = _descendants(proc.pid)
    assert below, "no workers"
    proc.kill()
    proc.wait()
    assert _wait_gone(below) == [], "workers or probes outlived their parent"
    return len(list(out.glob("*/result.json")))


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_kill_9_of_the_parent_loses_nothing_finished_and_a_rerun_resumes(tmp_path):
    expected = small_class(tmp_path / "class")
    out = tmp_path / "out"
    args = [str(tmp_path / "class"), "--out", str(out), "--jobs", "2"]
    kept = kill_parent_after(args, out, 3)
    assert 3 <= kept < len(expected)
    finished = {p: p.read_bytes() for p in out.glob("*/result.json")}
    for data in finished.values():
        json.loads(data)  # every result on disk is complete
    assert not (out / "gradebook.csv").exists()

    run = grade_cli(*args)
    assert run.returncode == 0, run.stderr
    assert f"grading {len(expected) - kept} submissions with 2 workers; {kept} kept from an earlier run" in run.stderr
    assert f"graded {len(expected) - 2} ({len(expected) - kept} now, {kept} kept from an earlier run), " \
           f"failed to grade 2," in run.stdout
    assert {p: p.read_bytes() for p in finished} == finished  # not regraded, not rewritten
    check_points(out, expected)
    assert not Path("/tmp/owned.py").exists()

    # the class summary, rebuilt from every result.json
    rows = {r[0]: r for r in csv.reader((out / "gradebook.csv").open())}
    assert rows["smithjohn"][-3:] == ["45", "45", "graded"] and rows["bob"][-2] == "23"
    assert rows["mallory"][-1].startswith("error: mallory.zip: mlp.py expands")
    index = (out / "index.html").read_text()
    assert '<img src="summary/pset4-scores.png"' in index
    assert (out / "summary" / "pset4-scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in index and "https://" not in index  # works offline: no CDN
    assert "Could not be graded (2)" in index and "unsafe path" in index
    for name in expected:
        assert f'href="{name}/report.html"' in index and (out / name / "report.html").is_file()
    smith = results(out)["smithjohn"]
    assert "marked LATE by Canvas" in smith["notes"]
    assert "Canvas export: smithjohn_LATE_1234_5678_mlp-1.py -> mlp.py" in smith["notes"]
    assert "marked LATE by Canvas" in index
    assert len(smith["content_hash"]) == 64 and smith["grading_hash"]
    assert smith["timings"]["student_code"] > 0



def test_force_regrades_and_a_lost_report_is_rebuilt_without_regrading(tmp_path, capsys):
    shutil.copytree(REPO / "student_template" / "pset4", tmp_path / "class" / "tom")
    out = tmp_path / "out"
    args = ["grade", str(tmp_path / "class"), "--out", str(out), *COMMON]
    assert main(args) == 0
    first = (out / "tom" / "result.json").read_bytes()
    (out / "tom" / "report.html").unlink()
    assert main(args) == 0
    assert "nothing to grade: 1 kept from an earlier run" in capsys.readouterr().err
    assert (out / "tom" / "result.json").read_bytes() == first and (out / "tom" / "report.html").is_file()
    assert main([*args, "--force"]) == 0
    assert "grading 1 submission with 1 worker\n" in capsys.readouterr().err
    # `summary` rebuilds the gradebook and the index from the results alone
    (out / "gradebook.csv").unlink()
    (out / "index.html").unlink()
    assert main(["summary", str(out)]) == 0
    assert "1 results" in capsys.readouterr().out
    assert (out / "index.html").is_file() and "tom" in (out / "gradebook.csv").read_text()
    assert main(["summary", str(tmp_path / "class")]) == 2


@pytest.fixture(scope="module")
def graded_template(pset4_grader, tmp_path_factory):
    from grader.batching.jobs import grade_one

    out = tmp_path_factory.mktemp("graded") / "tom"
    return grade_one(pset4_grader, REPO / "student_template" / "pset4", out), out


@pytest.mark.parametrize("key, value", [(None, None), ("content_hash", "0" * 64), ("rubric_hash", "0" * 64),
                                        ("grader_version", "0.0.1"), ("grading_hash", "old"),
                                        ("dataset", "other data"), ("sandbox", "bwrap"),
                                        ("error", "internal error while grading: KeyError"),
                                        ("error", "the grading worker was killed by SIGKILL ...")])
def test_a_result_is_reused_only_when_nothing_that_decides_it_changed(pset4_grader, graded_template, tmp_path,
                                                                      key, value):
    from grader.batching.jobs import reusable
    from grader.batching.layouts import Entry
    from grader.submission import load_submission

    result, graded = graded_template
    out = tmp_path / "tom"
    shutil.copytree(graded, out)
    folder = REPO / "student_template" / "pset4"
    entry = Entry("pset4", folder, "folder", content_hash=load_submission(folder).content_hash)
    if key:
        data = json.loads((out / "result.json").read_text())
        (out / "result.json").write_text(json.dumps({**data, key: value}))
        assert reusable(pset4_grader, entry, out) is None
    else:
        assert reusable(pset4_grader, entry, out).to_dict() == result.to_dict()
    (out / "result.json").write_text("{ torn")
    assert reusable(pset4_grader, entry, out) is None


TWENTY = ["correct_loops", "correct_is_compare", "correct_helpers", "correct_unstable_predict",
          "bug_relu_mask_inverted", "bug_sigmoid_derivative", "bug_grad_divided_twice", "bug_reg_grad_twice",
          "bug_missing_reg", "bug_predict_scores", "bug_xrange", "bug_np_float", "bug_hardcoded_loss",
          "bug_syntax_error", "bug_import_crash", "hostile_os_exit", "hostile_fake_print"]


@pytest.mark.slow  # the same class at full size: test_kill_9_of_the_parent_loses_nothing_finished_and_a_rerun_resumes
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_twenty_mixed_submissions_resume_after_kill_9_of_the_parent(tmp_path):
    """The issue's acceptance test: 20 mixed submissions, --jobs 2, kill -9 of the parent."""
    from test_pset4_fixtures import EXPECTED

    root = tmp_path / "class"
    for name in TWENTY:
        shutil.copytree(PSET4_FIXTURES / name, root / name)
    shutil.copytree(REPO / "reference" / "pset4", root / "reference")
    shutil.copytree(REPO / "student_template" / "pset4", root / "template")
    (root / "nocode").mkdir()
    (root / "nocode" / "notes.txt").write_text("forgot the code")
    expected = {**{n: EXPECTED[n][0] for n in TWENTY}, "reference": 45, "template": 0, "nocode": 0}
    assert len(expected) == 20
    out = tmp_path / "out"
    args = [str(root), "--out", str(out), "--jobs", "2"]
    kept = kill_parent_after(args, out, 8)
    finished = {p: p.read_bytes() for p in out.glob("*/result.json")}
    run = grade_cli(*args)
    assert run.returncode == 0, run.stderr
    assert f"{kept} kept from an earlier run" in run.stderr
    assert {p: p.read_bytes() for p in finished} == finished
    check_points(out, expected)
    rows = list(csv.reader((out / "gradebook.csv").open()))
    assert len(rows) == 2 + 20


@pytest.mark.slow
def test_benchmark_reports_one_and_n_workers_side_by_side():
    run = subprocess.run([sys.executable, str(REPO / "bench" / "batch.py"), "--copies", "2", "--jobs", "2",
                          "--sandbox", "process"], capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2 and rows[0].endswith("| 1.00x |")


def test_nothing_a_submission_started_outlives_its_grading(tmp_path):
    """A process that left its session and its parent (a notebook cell's setsid() grandchild,
    which outlives the kernel) comes back to the grading worker, its subreaper, and is killed
    when the submission's grading ends: it would hold the uid's process limit, which every
    submission shares in a container."""
    import time

    from grader.batching.pool import run_pool

    marker = tmp_path / "pid"

    def work(_: int) -> int:
        child = os.fork()
        if child == 0:
            if os.fork() == 0:
                os.setsid()
                marker.write_text(str(os.getpid()))
                time.sleep(120)
            os._exit(0)
        os.waitpid(child, 0)
        for _ in range(500):
            if marker.exists() and marker.read_text():
                return int(marker.read_text())
            time.sleep(0.01)
        raise AssertionError("the grandchild never started")

    got: list[int] = []
    run_pool(1, 1, work, lambda _, pid: got.append(pid), lambda _, why: pytest.fail(why))
    for _ in range(500):
        try:
            os.kill(got[0], 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {got[0]} outlived the grading that started it")
