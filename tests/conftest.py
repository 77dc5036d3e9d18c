"""Shared test set-up: one Grader per session (the reference outputs and the dataset are
computed once), each submission of the repository graded once per test run (SharedGrader), and
paths to the fixture submissions."""
from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import subprocess
import warnings
from pathlib import Path

import pytest

from grader.sandbox import bwrap
from grader.sandbox import landlock, unprivileged
from grader.grading.engine import GradeOptions, Grader
from grader.results import Result

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
PSET4_FIXTURES = FIXTURES / "pset4"

# The process level runs everywhere; the bwrap level has its own tests (test_bwrap.py).
OPTIONS = GradeOptions(sandbox="process", dataset="digits")


class SharedGrader(Grader):
    """A Grader whose results for the repository's own submissions (fixtures, reference,
    template) are graded once per test run and read back by every other test that asks, in any
    xdist worker: files under `store`, one per (assignment, options, folder), written under a
    lock by the first worker that needs it. Each caller gets its own copy of the Result."""

    def __init__(self, assignment: str, options: GradeOptions, store: Path, test_temp: Path):
        super().__init__(assignment, options)
        self._store = store
        self._test_temp = test_temp  # tests' own folders (tmp_path): their contents vary per test

    def grade(self, path, out_dir=None):
        path = Path(path).resolve()
        if out_dir is not None or REPO not in path.parents or self._test_temp in path.parents:
            return super().grade(path, out_dir)
        key = hashlib.sha256(repr((self.rubric.assignment, self.options, str(path))).encode()).hexdigest()[:32]
        target = self._store / f"{key}.json"
        with open(self._store / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not target.exists():
                super().grade(path).write_json(target)
        return Result.read_json(target)



@pytest.fixture(scope="session")
def shared_graders(request, tmp_path_factory):
    """shared_graders(assignment, options) -> the SharedGrader of this process for them."""
    base = tmp_path_factory.getbasetemp()
    test_temp = (base.parent if hasattr(request.config, "workerinput") else base).resolve()  # all workers'
    store = test_temp / "shared-results"
    store.mkdir(exist_ok=True)
    made: dict[tuple, SharedGrader] = {}

    def get(assignment: str, options: GradeOptions = OPTIONS) -> SharedGrader:
        if (assignment, options) not in made:
            made[(assignment, options)] = SharedGrader(assignment, options, store, test_temp)
        return made[(assignment, options)]

    yield get
    for grader in made.values():
        grader.close()


@pytest.fixture(scope="session")
def pset4_grader(shared_graders):
    return shared_graders("pset4")


FIX_ENV = "MLP_GRADER_TEST_LANDLOCK_FIX"


def pytest_configure(config):
    """With MLP_GRADER_TEST_LANDLOCK_FIX=1 (CI's landlock run only), make the folders above the
    Python installation passable for the sandbox uid once for the whole run, and restore them at
    its end. The landlock level needs it where Python lives under a closed home (pyenv under
    root's mode-700 home): it confines probes on the host's own folders. The bwrap level does
    not: it lays a folder of its own over the closed one (closed-home mode, bwrap.py). Once, in
    the process that starts the run (the xdist controller, or pytest itself without xdist): a
    fix applied and restored per module raced between parallel workers."""
    config.addinivalue_line("markers", "landlock: runs student code at the landlock level (CI runs these "
                                       f"with {FIX_ENV}=1 where Python lives under a closed home)")
    if hasattr(config, "workerinput") or os.environ.get(FIX_ENV) != "1" or os.geteuid() != 0:
        return
    changed: list[tuple[Path, int]] = []
    sb = landlock.LandlockSandbox()
    for root in unprivileged.interpreter_roots():
        blocked = unprivileged.blocked_dir(root, sb.uid, sb.gid)
        if blocked is not None and all(blocked != c for c, _ in changed):
            mode = stat.S_IMODE(os.stat(blocked).st_mode)
            os.chmod(blocked, mode | 0o001)
            changed.append((blocked, mode))
            warnings.warn(f"{FIX_ENV}=1: machine change for the landlock tests: chmod o+x {blocked} "
                          f"(mode {mode:o} is restored at the end of the run)")
    config._sandbox_fix = changed


# The hostile suite's attacks at the landlock and process levels that the default run keeps: each
# level's own containment (landlock: files, network, Unix sockets, signals, neighbours; process:
# the limits and the runner it relies on). The default run has every attack at bwrap
# (test_hostile.py, `level` fixture) but those in HOSTILE_SLOW_AT_BWRAP; the same attack at the other
# two levels is a repetition of that, marked slow (CI runs it: .ci/run). (os._exit at the process
# level: test_runner_spawn.py grades the hostile_os_exit fixture there in the default run.)
HOSTILE_DEFAULT = {
    "landlock": {"test_searching_the_disk_for_the_reference", "test_network_connection",
                 "test_unix_socket_by_path_and_abstract_name", "test_signalling_and_reading_the_grader",
                 "test_tampering_with_other_submissions_and_the_output", "test_killing_the_runner_costs_only_the_remaining_checks"},
    "process": {"test_infinite_loop", "test_memory_blowup", "test_fork_loop_with_escapes_from_the_process_group",
                "test_killing_the_runner_costs_only_the_remaining_checks"},
}
# Attacks at bwrap that repeat another attack's class there: attack -> the default test that covers it.
HOSTILE_SLOW_AT_BWRAP = {
    "test_loop_that_ignores_signals_and_swallows_exceptions": "test_infinite_loop[bwrap] (the time limit)",
    "test_reading_proc_of_the_parent": "test_signalling_and_reading_the_grader[bwrap] (the grader's /proc)",
    "test_unix_socket_by_path_and_abstract_name": "test_network_connection[bwrap] and this attack at landlock",
}


# The order in which xdist hands out the test files (addopts: --dist loadfile --no-loadscope-reorder):
# the longest first, measured in the default run, then every other file in name order. A long file
# handed out last keeps one worker busy while the others have finished (xdist's own order, most
# tests first, ran the 4 tests of the kit install last: 90 s of one worker alone).
LONGEST_FIRST = ("test_hostile.py", "test_kit_install.py", "test_checkcell.py", "test_pset4_fixtures.py",
                 "test_modular.py", "test_modular_fixtures.py", "test_notebook_execute.py", "test_batch.py",
                 "test_runner_spawn.py", "test_docker.py", "test_cli.py", "test_summary_browser.py",
                 "test_bwrap.py", "test_notebook_grading.py", "test_regrade.py", "test_cluster.py")


# The same for the slow set (CI's last phase), measured there: the Docker image first (on a machine
# without podman's cache it builds its base image: minutes), then the longest files.
LONGEST_FIRST_SLOW = ("test_docker.py", "test_runner_spawn.py", "test_cluster.py", "test_checkcell.py",
                      "test_hostile.py", "test_modular_fixtures.py", "test_batch.py", "test_kit_install.py",
                      "test_pset4_fixtures.py", "test_gradescope.py")


def _file_rank(item, order: tuple[str, ...]) -> tuple[int, str]:
    name = item.path.name
    return (order.index(name) if name in order else len(order), name)


def _runs_the_slow_set(config) -> bool:
    markexpr = config.getoption("markexpr") or ""
    return "slow" in markexpr and "not slow" not in markexpr


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (addopts): one worker more than there are cores for the default run. A good part of
    it waits rather than computes (kernels and browsers starting, time limits running out; 146 %
    CPU on 2 cores), and a third worker fills that time: measured on 2 cores, 4 min 57 s with 2
    workers and 4 min 36 s with 3 (docs/development.md). The slow set keeps one per core: its
    benchmarks and cluster runs compare workers side by side. PYTEST_XDIST_AUTO_NUM_WORKERS wins."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS") or _runs_the_slow_set(config):
        return None  # xdist's own count
    from grader.batching.pool import default_jobs  # the cores we may use (affinity, a container's quota)

    return default_jobs() + 1


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers set here
def pytest_collection_modifyitems(config, items):
    order = LONGEST_FIRST_SLOW if _runs_the_slow_set(config) else LONGEST_FIRST
    items.sort(key=lambda item: _file_rank(item, order))  # stable: each file keeps its own order
    for item in items:  # every test of the landlock level, whichever file holds it
        params = getattr(getattr(item, "callspec", None), "params", {})
        at_landlock = any(v == "landlock" for v in params.values() if isinstance(v, str))
        if at_landlock or item.nodeid.startswith("tests/test_landlock.py") or \
                "landlock_sandbox" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.landlock)
        level = params.get("level")
        if item.nodeid.startswith("tests/test_hostile.py") and (
                (level in HOSTILE_DEFAULT and item.originalname not in HOSTILE_DEFAULT[level])
                or (level == "bwrap" and item.originalname in HOSTILE_SLOW_AT_BWRAP)):
            item.add_marker(pytest.mark.slow)


def git(repo: Path, *args: str, when: str = "") -> str:
    """git in `repo` as a student's clone is made: fixed author, no user or system config, and
    with `when` as the author's and committer's date (late work reads commit dates)."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s",
           "GIT_COMMITTER_EMAIL": "s@x", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    if when:
        env.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def notebook_with_answer(source: Path, heading: str, answer: str | None) -> str:
    """The notebook at `source` with `answer` in the cell after the markdown cell that holds
    `heading` (a written question's answer cell); unchanged when `answer` is None."""
    import nbformat

    nb = nbformat.read(str(source), as_version=4)
    if answer is not None:
        at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and heading in c.source)
        nb.cells[at + 1].source = answer
    return nbformat.writes(nb)


def default_subset(values, keep):
    """parametrize values: those in `keep` run in the default run, every other one is marked slow
    (a repetition of their class; CI runs them: .ci/run). Each call site names what it keeps."""
    missing = set(keep) - set(values)
    assert not missing, f"not among the values: {missing}"
    return [v if v in keep else pytest.param(v, marks=pytest.mark.slow) for v in values]


def pytest_unconfigure(config):
    for path, mode in reversed(getattr(config, "_sandbox_fix", [])):
        os.chmod(path, mode)


def _level_or_skip(sb, checked: dict, label: str):
    """The level `sb`, or a skip that says why it is unavailable (see pytest_configure for the
    fix CI applies)."""
    checked.clear()
    ok, reason = sb.available()
    if not ok:
        hint = "" if os.environ.get(FIX_ENV) or label != "landlock" else (
            f" (tests/CI only: set {FIX_ENV}=1 to let the tests apply the fix for the run)")
        pytest.skip(f"{label} level not available: {reason}{hint}")
    return sb


@pytest.fixture(scope="module")
def bwrap_sandbox():
    """The bwrap level, or a skip that says why it is unavailable (see _level_or_skip)."""
    return _level_or_skip(bwrap.BwrapSandbox(), bwrap._checked, "bwrap")


@pytest.fixture(scope="module")
def landlock_sandbox():
    """The landlock level, or a skip that says why it is unavailable (see _level_or_skip)."""
    return _level_or_skip(landlock.LandlockSandbox(), landlock._checked, "landlock")


def check_result(result, expected_total, expected_checks, every=None):
    """A fixture's exact grade: the autograded total, and for each check in `expected_checks`
    (check -> (points, phrase of its message)) those points, that phrase and not "passed";
    every other check passes with full points. `every`: the complete set of check ids."""
    got = {c.id: c for c in result.checks()}
    if every is not None:
        assert set(got) == set(every)
    for check_id, check in got.items():
        if check_id in expected_checks:
            points, phrase = expected_checks[check_id]
            assert check.points == pytest.approx(points, abs=1e-3), (check_id, check.message)
            assert phrase in check.message, (check_id, check.message)
            assert check.status != "passed"
        else:
            assert check.status == "passed" and check.points == check.max_points, (check_id, check.message)
    assert set(expected_checks) <= set(got)
    assert result.autograded_points == pytest.approx(expected_total, abs=1e-3)
