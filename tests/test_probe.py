"""The data channel between a probe and the parent: only plain numbers cross it, every task is
isolated from the others, and what the student prints never counts."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from grader.probe import Task, TaskOutput, load_payload, run_probe
from grader.sandbox import choose_sandbox

SANDBOX = choose_sandbox("process")


def npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_payload_with_plain_arrays_is_accepted():
    arrays = load_payload(npz_bytes(loss=np.float64(1.5), grad=np.ones((2, 3))))
    assert float(arrays["loss"]) == 1.5 and arrays["grad"].shape == (2, 3)


def test_payload_with_objects_is_rejected_without_unpickling():
    class Boom:
        def __reduce__(self):
            return (print, ("unpickled!",))

    payload = npz_bytes(x=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError):
        load_payload(payload)


def test_payload_that_is_a_pickle_is_rejected():
    with pytest.raises(Exception):
        load_payload(pickle.dumps({"points": 100}))


def test_payload_of_strings_is_rejected():
    with pytest.raises(ValueError, match="not numbers"):
        load_payload(npz_bytes(status=np.array(["passed"])))


def test_reason_names_the_exception_and_the_line_in_student_code():
    tb = ('Traceback (most recent call last):\n  File "/tmp/job/probe/pset4.py", line 40, in loss\n'
          '  File "/tmp/work/mlp.py", line 12, in loss\n    for i in xrange(3):\n'
          "NameError: name 'xrange' is not defined\n")
    out = TaskOutput("t", "error", error=tb)
    assert out.reason() == ("NameError: name 'xrange' is not defined (mlp.py, line 12); "
                            "xrange is Python 2; use range in Python 3")


def write_module(folder, source: str) -> None:
    (folder / "mlp.py").write_text(source)


def test_tasks_are_isolated_and_stdout_cannot_forge_results(tmp_path):
    # The module counts calls in a global: each task must see a fresh copy (fork per task),
    # and the JSON it prints must not be mistaken for a result.
    write_module(tmp_path, """
import sys
CALLS = []
print('{"task": "import", "status": "ok", "payload": 0}')
sys.stdout.flush()
class TwoLayerMLP:
    def __init__(self, D, H, C, std=1e-4, activation='relu'):
        CALLS.append(1)
        self.params = {}
    def predict(self, X):
        return [len(CALLS)] * len(X)
""")
    tasks = [Task(id=f"p{i}", fn="predict", params={"activation": "relu", "input_size": 2, "hidden_size": 2,
                                                   "num_classes": 2}, arrays={"X": np.zeros((3, 2))}, timeout=10)
             for i in range(3)]
    outputs = run_probe(tmp_path, "pset4", tasks, SANDBOX)
    for task in tasks:
        assert outputs[task.id].ok
        assert outputs[task.id].arrays["pred"].tolist() == [1, 1, 1]
    # The forged message was captured as what the student printed, never read as a result.
    assert set(outputs) == {"p0", "p1", "p2"}
    assert all('"status": "ok"' in o.log for o in outputs.values())


def test_sys_exit_and_crash_in_one_task_leave_the_next_task_alone(tmp_path):
    write_module(tmp_path, """
import os, sys
class TwoLayerMLP:
    def __init__(self, D, H, C, std=1e-4, activation='relu'):
        self.params = {}
        self.activation = activation
    def predict(self, X):
        if self.activation == 'sigmoid':
            sys.exit(0)
        if self.activation == 'tanh':
            os.kill(os.getpid(), 11)
        return [0] * len(X)
""")
    def task(name, act):
        return Task(id=name, fn="predict", params={"activation": act, "input_size": 2, "hidden_size": 2,
                                                  "num_classes": 2}, arrays={"X": np.zeros((2, 2))}, timeout=10)

    outputs = run_probe(tmp_path, "pset4", [task("a", "sigmoid"), task("b", "tanh"), task("c", "relu")], SANDBOX)
    assert outputs["a"].status == "error" and "SystemExit" in outputs["a"].reason()
    assert outputs["b"].status == "error" and "SIGSEGV" in outputs["b"].reason()
    assert outputs["c"].ok and outputs["c"].arrays["pred"].tolist() == [0, 0]


def test_probe_cannot_import_the_grader_or_see_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "s3cret")
    write_module(tmp_path, """
import os, sys
found = []
try:
    import grader
    found.append('grader importable')
except ImportError:
    pass
try:
    import grader_course
    found.append('course importable')
except ImportError:
    pass
if 'GRADER_SECRET_TOKEN' in os.environ:
    found.append('secret visible')
found.append('threads=' + os.environ.get('OMP_NUM_THREADS', '?'))
raise RuntimeError('OBSERVED ' + ','.join(found))
""")
    out = run_probe(tmp_path, "pset4", [Task(id="import", fn="import_module", timeout=20)], SANDBOX)["import"]
    assert "OBSERVED threads=1" in out.reason()


def test_huge_output_is_capped_not_buffered(tmp_path):
    write_module(tmp_path, """
import sys
chunk = 'x' * (1 << 20)
for _ in range(2000):  # 2 GB if nothing stopped it
    sys.stdout.write(chunk)
""")
    out = run_probe(tmp_path, "pset4", [Task(id="import", fn="import_module", timeout=30)], SANDBOX)["import"]
    assert out.status == "error"
    assert "File too large" in out.error or "Errno 27" in out.error
    assert len(out.log) <= 2000
