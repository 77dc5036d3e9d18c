"""The runner without fork: every task in a fresh interpreter (what Windows gets, where `fork`
does not exist). On Linux it is forced with `runner="spawn"`; the public checks of every pset4
and modular fixture must get exactly the points the fork runner gives them (the tables of
test_pset4_fixtures.py and test_modular_fixtures.py, which run with fork)."""
from __future__ import annotations

import os
from dataclasses import replace

import pytest

from grader.grading import probe
from grader.grading.engine import Grader
from grader.kinds.tasks import Task
from grader.grading.probe import run_probe
from grader.sandbox import ProcessSandbox

from conftest import OPTIONS, PSET4_FIXTURES, default_subset
from test_modular_fixtures import EXPECTED as MODULAR_EXPECTED
from test_modular_fixtures import MODULAR
from test_modular_fixtures import OPTIONS as MODULAR_OPTIONS
from test_pset4_fixtures import BWRAP_ONLY
from test_pset4_fixtures import EXPECTED as PSET4_EXPECTED

SPAWN = dict(public_only=True, skip_data=True, execute="none", runner="spawn")
# Not here: the infinite loop (its fork test shortens every limit; here it would only cost
# minutes) and the fixture that needs the bwrap level.
PSET4_NAMES = [n for n in PSET4_EXPECTED if n not in ("hostile_infinite_loop", *BWRAP_ONLY)]


@pytest.fixture(scope="module")
def spawn_graders():
    with Grader("pset4", replace(OPTIONS, **SPAWN)) as pset4, \
            Grader("modular", replace(MODULAR_OPTIONS, **SPAWN)) as modular:
        yield {"pset4": pset4, "modular": modular}


def assert_public_points(result, expected_checks):
    ran = [c for c in result.checks() if c.status != "skipped"]
    assert ran and all(c.public for c in ran)
    for check in ran:
        points, phrase = expected_checks.get(check.id, (check.max_points, ""))
        assert check.points == pytest.approx(points, abs=1e-3), (check.id, check.message)
        assert phrase in check.message, (check.id, check.message)


# Spawn parity in the default run: one of each sort of fixture, a correct submission and os._exit()
# for pset4, a wrong weight decay (a bug) for modular; every other fixture is the same comparison
# again (slow).
@pytest.mark.parametrize("name", default_subset(PSET4_NAMES, {"correct_helpers", "hostile_os_exit"}))
def test_pset4_public_checks_get_the_fork_runners_points(spawn_graders, name):
    assert_public_points(spawn_graders["pset4"].grade(PSET4_FIXTURES / name), PSET4_EXPECTED[name][1])


@pytest.mark.parametrize("name", default_subset(list(MODULAR_EXPECTED), {"bug_wd_twice"}))
def test_modular_public_checks_get_the_fork_runners_points(spawn_graders, name):
    assert_public_points(spawn_graders["modular"].grade(MODULAR / name), MODULAR_EXPECTED[name][1])


def test_each_task_really_runs_in_its_own_interpreter(tmp_path):
    """The task's command line says which runner started it: `--task ID` only in spawn mode."""
    (tmp_path / "mlp.py").write_text("import sys\nraise RuntimeError('argv=' + ' '.join(sys.argv[1:]))\n")
    tasks = [Task(id="import", fn="import_module", timeout=20)]
    spawned = run_probe(tmp_path, "pset4", tasks, ProcessSandbox(), runner="spawn")["import"]
    forked = run_probe(tmp_path, "pset4", tasks, ProcessSandbox(), runner="fork")["import"]
    assert spawned.status == forked.status == "error"
    assert "--task import" in spawned.error and "RuntimeError: argv=" in spawned.error
    assert "--task" not in forked.error and "RuntimeError: argv=" in forked.error


def test_spawn_is_chosen_where_fork_does_not_exist(monkeypatch):
    assert probe.runner_mode(None) == "fork" and probe.runner_mode("spawn") == "spawn"
    monkeypatch.delattr(os, "fork")
    assert probe.runner_mode(None) == "spawn" and probe.runner_mode("fork") == "spawn"
    with pytest.raises(ValueError, match="unknown runner mode 'thread'"):
        probe.runner_mode("thread")


def test_spawned_tasks_keep_the_wall_clock_and_the_memory_limit(tmp_path):
    sandbox = ProcessSandbox()
    slow = Task(id="import", fn="import_module", timeout=1)
    (tmp_path / "mlp.py").write_text("while True:\n    pass\n")
    out = run_probe(tmp_path, "pset4", [slow], sandbox, runner="spawn")["import"]
    assert out.status == "timeout" and "did not finish within 1 s" in out.detail
    (tmp_path / "mlp.py").write_text("import numpy as np\nx = np.ones(2 * 1024**3 // 8)\n")
    big = Task(id="import", fn="import_module", timeout=20, memory=512 * 1024**2)
    out = run_probe(tmp_path, "pset4", [big], sandbox, runner="spawn")["import"]
    assert out.status == "error" and "MemoryError" in out.reason()
