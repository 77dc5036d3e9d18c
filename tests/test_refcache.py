"""The reference outputs' disk cache: a second grading reuses them, with identical points, and
any change to what they depend on is a miss."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from grader import data
from grader.grading import engine
from grader.grading.engine import GradeOptions, Grader
from grader.kinds.tasks import Task, TaskOutput
from grader.grading.refcache import ReferenceCache

REPO = Path(__file__).resolve().parent.parent


def test_round_trip_and_every_input_in_the_key(tmp_path):
    cache = ReferenceCache(tmp_path, "context-a")
    task = Task(id="t", fn="f", params={"reg": 0.1}, arrays={"X": np.arange(6.0).reshape(2, 3)})
    assert cache.load(task) is None
    cache.store(task, TaskOutput("t", "ok", arrays={"loss": np.array(1.25), "g": np.ones((2, 2))}, seconds=0.5))
    got = cache.load(task)
    assert got is not None and got.ok and float(got.arrays["loss"]) == 1.25
    np.testing.assert_array_equal(got.arrays["g"], np.ones((2, 2)))
    assert cache.load(Task(id="t", fn="f", params={"reg": 0.2}, arrays=task.arrays)) is None
    assert cache.load(Task(id="t", fn="f", params=task.params, arrays={"X": np.zeros((2, 3))})) is None
    assert ReferenceCache(tmp_path, "context-b").load(task) is None
    cache.store(Task(id="bad", fn="f"), TaskOutput("bad", "error", detail="crashed"))
    assert cache.load(Task(id="bad", fn="f")) is None  # failures are never kept


def test_damaged_entry_is_recomputed(tmp_path):
    cache = ReferenceCache(tmp_path, "c")
    task = Task(id="t", fn="f")
    cache.store(task, TaskOutput("t", "ok", arrays={"x": np.ones(3)}))
    entry = next(p for p in tmp_path.iterdir() if not p.name.startswith("."))
    (entry / "arrays.npz").write_bytes(b"not an archive")
    assert cache.load(task) is None


def test_second_grading_reuses_the_reference_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path)
    reference_runs = []
    real_run_probe = engine.run_probe

    def counting(workdir, probe, tasks, *args, **kwargs):
        reference_runs.append(len(tasks))
        return real_run_probe(workdir, probe, tasks, *args, **kwargs)

    monkeypatch.setattr(engine, "run_probe", counting)
    submission = REPO / "tests" / "fixtures" / "pset4" / "bug_missing_reg"
    results, runs = [], []
    for _ in range(2):
        reference_runs.clear()
        with Grader("pset4", GradeOptions(sandbox="process", dataset="digits", skip_data=True, execute="none")) as g:
            g.sandbox.confines_writes = True  # as at the bwrap and landlock levels
            results.append(g.grade(submission))
        runs.append(len(reference_runs))
    assert runs == [2, 1]  # student + reference, then the student's probe only
    points = [[(c.id, c.points, c.message) for q in r.questions for c in q.checks] for r in results]
    assert points[0] == points[1]
    assert any(c.points < c.max_points for q in results[1].questions for c in q.checks)  # not a blanket pass


def test_process_level_never_uses_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEFAULT_DATA_DIR", tmp_path)
    with Grader("pset4", GradeOptions(sandbox="process", dataset="digits", skip_data=True, execute="none")) as g:
        g.grade(REPO / "examples" / "submissions" / "pset4-template")
    assert not (tmp_path / "reference-outputs").exists()


def test_a_failed_reference_run_costs_its_checks_not_the_submission(monkeypatch):
    """A reference run that times out (e.g. TinyNet at a student's huge epoch count on a loaded
    machine) leaves the student's other checks graded, and names why the rest are not."""
    real_run_probe = engine.run_probe
    reference_dir = (REPO / "reference" / "pset4").resolve()

    def reference_times_out(workdir, probe, tasks, *args, **kwargs):
        outputs = real_run_probe(workdir, probe, tasks, *args, **kwargs)
        if (Path(workdir) / "mlp.py").read_bytes() == (reference_dir / "mlp.py").read_bytes():
            outputs = {k: TaskOutput(k, "timeout", detail="did not finish within 1 s (wall clock)")
                       if k.startswith("case-") else o for k, o in outputs.items()}
        return outputs

    monkeypatch.setattr(engine, "run_probe", reference_times_out)
    with Grader("pset4", GradeOptions(sandbox="process", dataset="digits", skip_data=True, execute="none",
                                      reference_cache=False)) as g:
        result = g.grade(REPO / "tests" / "fixtures" / "pset4" / "correct_loops")
    checks = {c.id: c for q in result.questions for c in q.checks}
    assert checks["sigmoid_toy_loss"].points == checks["sigmoid_toy_loss"].max_points  # handout value: graded
    hidden = checks["sigmoid_loss_hidden"]
    assert hidden.status == "error" and hidden.points == 0
    assert "the grader's run of the reference solution failed" in hidden.message
