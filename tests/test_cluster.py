"""Grading on a Dask cluster: a real `dask scheduler` and two `dask worker` processes on
127.0.0.1 (single-threaded, each under a nanny that restarts it), a mixed class of both
assignments graded on them while a worker is killed and then the driver is killed, resumed,
and compared check by check with the local pool."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from grader.batching.pool import kill_descendants  # noqa: E402
from grader.cli import main  # noqa: E402
from grader.batching.cluster_config import ClusterSpec, load_cluster_config  # noqa: E402
from grader.errors import GraderError  # noqa: E402

from conftest import FIXTURES, REPO  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")

DASK = Path(sys.executable).parent / "dask"
EXAMPLES = REPO / "examples" / "submissions"
HOSTILE = FIXTURES / "hostile"
# --execute none: the notebook step is graded the same way everywhere and only costs time here
FLAGS = ["--dataset", "auto", "--sandbox", "process", "--execute", "none"]


# ---------------------------------------------------------------- a real cluster on 127.0.0.1


class DaskProcesses:
    """`dask scheduler` plus `dask worker`s, each in its own session, all on 127.0.0.1."""

    def __init__(self, folder: Path, workers: int = 2):
        from grader.batching.cluster import scheduler_environment

        self.procs: list[subprocess.Popen] = []
        try:
            self._start_all(folder, workers, scheduler_environment())
        except BaseException:
            self.stop()
            raise

    def _start_all(self, folder: Path, workers: int, env: dict[str, str]) -> None:
        sched_file = folder / "scheduler.json"
        # --dashboard-address: the HTTP endpoints Dask serves even without a dashboard would
        # otherwise listen on every interface
        # --idle-timeout, --death-timeout: should the test run itself be killed (no teardown),
        # the scheduler ends after 10 idle minutes and its workers a minute later
        self._start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--dashboard-address", "127.0.0.1:0", "--idle-timeout", "600",
                     "--scheduler-file", str(sched_file)], folder / "scheduler.log", env)
        deadline = time.monotonic() + 90
        while not sched_file.is_file() or not sched_file.read_text().strip():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        self.address = json.loads(sched_file.read_text())["address"]
        assert self.address.startswith("tcp://127.0.0.1:")
        for i in range(workers):
            self._start([str(DASK), "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                         "--nworkers", "1", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                         "--memory-limit", "0", "--death-timeout", "60",
                         "--name", f"w{i}"], folder / f"worker{i}.log", env)
        self.wait_for_workers(workers)

    def _start(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        with log.open("wb") as fh:
            self.procs.append(subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                               start_new_session=True, cwd=log.parent))

    def workers(self) -> dict[str, int]:
        """Worker address -> pid of the worker process (the nanny's child)."""
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            return client.run(os.getpid)

    def busy_worker(self) -> int:
        """The pid of a worker process that is grading a submission right now."""
        from distributed import Client

        deadline = time.monotonic() + 120
        with Client(self.address, timeout="30s") as client:
            while True:
                busy = [addr for addr, keys in client.processing().items() if keys]
                if busy:
                    return client.run(os.getpid, workers=busy[:1])[busy[0]]
                assert time.monotonic() < deadline, "no worker got a submission"
                time.sleep(0.2)

    def wait_for_workers(self, count: int, seconds: float = 120) -> dict[str, int]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.workers()
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"only {len(found)} of {count} workers joined"
            time.sleep(0.5)

    def pids(self) -> list[int]:
        """Every process these started, with their descendants (nannies' workers, probes)."""
        found = []
        for proc in self.procs:
            found += [proc.pid, *_descendants(proc.pid)]
        return found

    def stop(self) -> None:
        everything = self.pids()
        for proc in self.procs:
            kill_descendants(proc.pid)
            with _quiet():
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(30)
        assert _wait_gone(everything) == []


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        return kind is not None and issubclass(kind, ProcessLookupError)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pids: list[int], seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = DaskProcesses(tmp_path_factory.mktemp("dask"))
    try:
        yield cluster
    finally:
        cluster.stop()


# ---------------------------------------------------------------- helpers


def grade_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", "grade", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def hostile(root: Path, attack: str, name: str | None = None) -> None:
    dest = root / (name or attack)
    shutil.copytree(HOSTILE / attack, dest)
    shutil.copy(HOSTILE / "_base" / "mlp_base.py", dest)


def checks(out: Path) -> dict[str, list]:
    """Per submission: the sandbox level, then (check, points, status) of every check."""
    found = {}
    for path in sorted(out.glob("*/result.json")):
        r = json.loads(path.read_text())
        found[path.parent.name] = [r["sandbox"], r["error"]] + [(c["id"], c["points"], c["status"])
                                                                for q in r["questions"] for c in q["checks"]]
    return found


def progress_names(stderr: str) -> list[str]:
    return [line.split("] ", 1)[1].split("  (", 1)[0] for line in stderr.splitlines() if line.startswith("[")]


def local_pool(root: Path, out: Path) -> dict[str, list]:
    run = grade_cli(str(root), "--out", str(out), "--jobs", "2", *FLAGS)
    assert run.returncode == 0, run.stderr
    return checks(out)


# ---------------------------------------------------------------- the cluster, end to end


# slow: a killed worker on the cluster is test_a_submission_that_kills_its_worker_twice_is_a_row_and_the_batch_goes_on;
# a killed driver that resumes is test_batch.py's test_kill_9_of_the_parent_loses_nothing_finished_and_a_rerun_resumes
@pytest.mark.slow
def test_a_mixed_class_survives_a_killed_worker_and_a_killed_driver_and_matches_the_local_pool(
        dask_cluster, tmp_path):
    root = tmp_path / "class"
    for name in ("pset4-reference", "pset4-bug-relu-mask-inverted", "modular-bug-wd-twice"):
        shutil.copytree(EXAMPLES / name, root / name)
    hostile(root, "kill_parent")  # kills its probe runner: costs it checks, not the worker
    out = tmp_path / "out-dask"
    args = [str(root), "--out", str(out), "--scheduler", dask_cluster.address, *FLAGS]
    log = tmp_path / "driver.log"
    with log.open("wb") as fh:
        driver = subprocess.Popen([sys.executable, "-m", "grader", "grade", *args], cwd=REPO,
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=fh)
    try:
        # a worker dies mid-batch (both hold a submission: one per worker at a time) ...
        deadline = time.monotonic() + 600
        while not any(p.stat().st_size for p in (out.glob("*/result.json") if out.is_dir() else [])):
            assert driver.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        os.kill(dask_cluster.busy_worker(), signal.SIGKILL)
        # ... then the driver is killed once another result has arrived
        while len(list(out.glob("*/result.json"))) < 2:
            assert driver.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        driver.kill()
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    first = {p.parent.name: p.read_bytes() for p in out.glob("*/result.json")}
    assert 2 <= len(first) < 4
    dask_cluster.wait_for_workers(2)  # the nanny started a fresh worker

    run = grade_cli(*args)
    assert run.returncode == 0, run.stderr
    assert f"{len(first)} kept from an earlier run" in run.stderr
    assert sorted(progress_names(run.stderr)) == sorted(set(checks(out)) - set(first))  # the rest, once each
    assert {n: (out / n / "result.json").read_bytes() for n in first} == first  # kept, not regraded
    got = checks(out)
    assert set(got) == {"pset4-reference", "pset4-bug-relu-mask-inverted", "modular-bug-wd-twice", "kill_parent"}
    assert all(v[0] == "process" and v[1] == "" for v in got.values()), got
    expected = local_pool(root, tmp_path / "out-local")
    assert got == expected
    # exact points, so that "identical" cannot mean "identically broken"
    total = {n: round(sum(c[1] for c in v[2:]), 4) for n, v in got.items()}
    assert total == {"pset4-reference": 45, "pset4-bug-relu-mask-inverted": 42.75, "modular-bug-wd-twice": 32,
                     "kill_parent": 15}  # as in tests/fixtures/hostile/SCENARIOS.md
    assert (out / "index.html").is_file() and len((out / "gradebook-pset4.csv").read_text().splitlines()) == 2 + 3
    for name in got:  # figures came back from the workers as bytes, beside the report that links them
        report = (out / name / "report.html").read_text()
        for figure in json.loads((out / name / "result.json").read_text())["figures"].values():
            assert (out / name / figure).is_file() and figure in report


def test_a_submission_that_kills_its_worker_twice_is_a_row_and_the_batch_goes_on(dask_cluster, tmp_path):
    root = tmp_path / "class"
    hostile(root, "kill_worker", "a-kills-its-worker")
    shutil.copytree(EXAMPLES / "pset4-bug-np-float", root / "b-np-float")
    out = tmp_path / "out"
    run = grade_cli(str(root), "--out", str(out), "--scheduler", dask_cluster.address, *FLAGS)
    assert run.returncode == 0, run.stderr
    got = json.loads((out / "a-kills-its-worker" / "result.json").read_text())
    assert got["error"].startswith("the grading worker died while grading this submission, twice")
    assert "a-kills-its-worker" in run.stdout and "NOT GRADED: the grading worker died" in run.stdout
    neighbour = checks(out)["b-np-float"]  # graded as it is everywhere (test_pset4_fixtures: 3 points)
    assert neighbour[1] == "" and round(sum(c[1] for c in neighbour[2:]), 4) == 3
    assert "np.float was removed in NumPy 1.24" in (out / "b-np-float" / "report.html").read_text()
    dask_cluster.wait_for_workers(2)  # the nannies replaced both workers it killed
    from grader.batching.jobs import RETRY_ERRORS

    # a re-run grades it again: a lost worker may have been the machine's fault, not the student's
    assert got["error"].startswith(RETRY_ERRORS)


# ---------------------------------------------------------------- choosing a cluster


SLURM_EXAMPLE = """
[cluster]
kind = "slurm"
workers = 20
data_dir = "/shared/mlp-grader-data"

[jobqueue]
queue = "normal"
account = "cs189"
cores = 1
processes = 1
memory = "4GB"
walltime = "02:00:00"
job_extra_directives = ["--cpus-per-task=1"]
"""


def test_the_readme_slurm_config_reads_and_builds_a_slurm_job_script(tmp_path):
    """The Slurm example of the TA guide ("Grading on a cluster"; once in the README)."""
    assert SLURM_EXAMPLE.strip() in (REPO / "docs" / "ta-guide.md").read_text()
    config = tmp_path / "cluster.toml"
    config.write_text(SLURM_EXAMPLE)
    spec = load_cluster_config(config)
    assert spec == ClusterSpec("slurm", workers=20, data_dir=Path("/shared/mlp-grader-data"),
                               jobqueue={"queue": "normal", "account": "cs189", "cores": 1, "processes": 1,
                                         "memory": "4GB", "walltime": "02:00:00",
                                         "job_extra_directives": ["--cpus-per-task=1"]})
    assert load_cluster_config(config, workers=3).workers == 3
    jobqueue = pytest.importorskip("dask_jobqueue")
    # the job script only: nothing is submitted (this machine has no Slurm); loopback scheduler
    loopback = {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}
    with jobqueue.SLURMCluster(**spec.jobqueue, scheduler_options=loopback) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH -p normal", "#SBATCH -A cs189", "#SBATCH --cpus-per-task=1", "#SBATCH -t 02:00:00",
                 "--nthreads 1"):
        assert line in script, script


@pytest.mark.parametrize("text, problem", [
    ("[cluster]\nkind = 'kubernetes'\n", "kind must be one of local, slurm"),
    ("[cluster]\nkind = 'slurm'\nqueue = 'x'\n", "unknown keys cluster.queue"),
    ("[slurm]\nqueue = 'x'\n", "unknown keys slurm"),
    ("[cluster\n", "cluster.toml"),
])
def test_a_bad_cluster_config_is_refused_with_the_reason(tmp_path, text, problem):
    config = tmp_path / "cluster.toml"
    config.write_text(text)
    with pytest.raises(GraderError, match=problem):
        load_cluster_config(config)


@pytest.mark.parametrize("flags, problem", [
    (["--scheduler", "tcp://127.0.0.1:1", "--cluster", "local"], "does not go with --cluster"),
    (["--cluster", "slurm"], "--cluster slurm needs --cluster-config"),
])
def test_contradictory_cluster_flags_are_refused(tmp_path, capsys, flags, problem):
    assert main(["grade", str(EXAMPLES / "pset4-reference"), "--out", str(tmp_path / "o"), *flags]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_dask_is_imported_only_when_a_cluster_is_asked_for():
    code = ("import sys; from grader.cli import build_parser; from grader.api import grade_folder; "
            "build_parser().parse_args(['grade', 'x']); "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr


# ---------------------------------------------------------------- what a worker checks and keeps


def test_a_worker_with_other_grader_code_refuses_to_grade():
    from grader.batching.cluster import GradingPlugin, WorkerSetup
    from conftest import OPTIONS

    plugin = GradingPlugin({"pset4": WorkerSetup("pset4", OPTIONS, grading_hash="0" * 64)})
    with pytest.raises(GraderError, match="runs other grader code or course files than the driver"):
        plugin.grader("pset4")


def test_the_dataset_travels_once_per_worker_unless_the_workers_share_a_data_dir(pset4_grader, tmp_path):
    from grader.batching.cluster import worker_setups

    shipped = worker_setups([pset4_grader, pset4_grader], None, {"pset4": "h"})
    assert list(shipped) == ["pset4"] and shipped["pset4"].dataset is pset4_grader.dataset
    assert shipped["pset4"].options == pset4_grader.options
    shared = worker_setups([pset4_grader], tmp_path, {"pset4": "h"})["pset4"]
    assert shared.dataset is None and shared.options.data_dir == tmp_path
    assert shared.options.dataset == "digits"  # what the driver resolved, so a worker without it fails loudly


def test_on_a_cluster_without_sandbox_flag_a_result_keeps_the_level_its_worker_used(pset4_grader, tmp_path):
    from grader.batching.jobs import reusable, ungradable, write_result
    from grader.batching.jobs import grading_hash
    from grader.batching.layouts import Entry
    from grader.submission import load_submission

    folder = REPO / "student_template" / "pset4"
    entry = Entry("pset4", folder, "folder", content_hash=load_submission(folder).content_hash)
    result = ungradable(pset4_grader, entry, "")  # a graded result's identity, without grading it
    result.error, result.grading_hash = "", grading_hash(pset4_grader)
    result.dataset = pset4_grader.dataset.description
    out = tmp_path / "tom"
    write_result(result, out)
    assert reusable(pset4_grader, entry, out).sandbox == "process"
    result.sandbox = "bwrap"  # graded on a worker node with bubblewrap
    write_result(result, out)
    assert reusable(pset4_grader, entry, out) is None  # locally, or with --sandbox given: graded again
    assert reusable(pset4_grader, entry, out, any_sandbox=True).sandbox == "bwrap"


# ---------------------------------------------------------------- larger, slow


@pytest.mark.slow
def test_both_example_assignments_and_hostile_neighbours_on_a_local_cluster_match_the_local_pool(tmp_path):
    """Every example submission plus four hostile ones, with training and the notebook step, on
    `--cluster local --jobs 2` and on the local pool: identical check by check."""
    root = tmp_path / "class"
    for sub in sorted(EXAMPLES.iterdir()):
        shutil.copytree(sub, root / sub.name)
    for attack in ("kill_parent", "fork_loop", "os_exit", "infinite_loop"):
        hostile(root, attack)
    flags = ["--dataset", "auto", "--sandbox", "process"]
    run = grade_cli(str(root), "--out", str(tmp_path / "dask"), "--cluster", "local", "--jobs", "2", *flags,
                    timeout=3600)
    assert run.returncode == 0, run.stderr
    assert "with 2 workers" in run.stderr
    local = grade_cli(str(root), "--out", str(tmp_path / "local"), "--jobs", "2", *flags, timeout=3600)
    assert local.returncode == 0, local.stderr
    got, expected = checks(tmp_path / "dask"), checks(tmp_path / "local")
    assert len(got) == len([p for p in EXAMPLES.iterdir() if p.is_dir()]) + 4 and got == expected
    assert not any(v[1] for v in got.values())
