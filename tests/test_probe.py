"""The data channel between a probe and the parent: only plain numbers cross it, every task is
isolated from the others, and what the student prints never counts."""
from __future__ import annotations

import io
import json
import pickle
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.kinds.base import rel_error
from grader.grading.probe import MAX_ARRAYS, MAX_HEADER, Messages, _parse, load_payload, run_probe
from grader.kinds.tasks import Task, TaskOutput
from grader.sandbox import Limits, choose_sandbox, run_sandboxed

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


# ---------------------------------------------------------------------- the message stream


def frame(task: str, status: str = "ok", payload: bytes | None = None, **extra) -> bytes:
    payload = npz_bytes(loss=np.float64(1.0)) if payload is None and status == "ok" else (payload or b"")
    header = {"task": task, "status": status, "detail": "", "error": "", "log": "", "seconds": 0.1,
              "payload": len(payload), **extra}
    return json.dumps(header).encode() + b"\n" + payload


def test_stream_of_the_runners_messages_is_read():
    outputs, tampered = _parse(frame("a") + frame("b", "error"), ["a", "b", "c"])
    assert not tampered and set(outputs) == {"a", "b"}  # c never ran: a stop, not tampering
    assert outputs["a"].ok and float(outputs["a"].arrays["loss"]) == 1.0 and outputs["b"].status == "error"


def test_fields_that_claim_points_are_ignored():
    outputs, tampered = _parse(frame("a", points=100, passed=True, score=100), ["a"])
    assert not tampered and outputs["a"].arrays.keys() == {"loss"}
    assert not hasattr(outputs["a"], "points") and not hasattr(outputs["a"], "passed")


@pytest.mark.parametrize("stream", [
    frame("a") + frame("a"),  # a forged copy before the real message
    frame("b") + frame("a"),  # another task's result first
    frame("a") + frame("b") + b"x",  # bytes after the last task
    frame("a", status="passed"),  # not a status the runner writes
    frame("a", payload=b"\0" * 10)[:-10].replace(b'"payload": 10', b'"payload": -5') + b"\0" * 10,
    b"{not json}\n",
    b"[1, 2]\n",
    b"x" * (MAX_HEADER + 10) + b"\n",
])
def test_anything_but_the_runners_messages_in_order_is_tampering(stream):
    outputs, tampered = _parse(stream, ["a", "b"])
    assert tampered and outputs == {}


def test_a_message_cut_off_by_a_kill_is_a_stop():
    whole = frame("a") + frame("b")
    outputs, tampered = _parse(whole[:-3], ["a", "b"])
    assert not tampered and set(outputs) == {"a"}


STREAMS = [frame("a") + frame("b", "error"), frame("a") + frame("b"), (frame("a") + frame("b"))[:-3],
           frame("a") + frame("a"), frame("a") + frame("b") + b"x", b"x" * (MAX_HEADER + 10) + b"\n",
           frame("a", payload=npz_bytes(big=np.arange(50_000.0)))]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 16])
@pytest.mark.parametrize("stream", STREAMS)
def test_a_stream_read_as_it_arrives_gives_what_the_whole_stream_gives(stream, chunk):
    """The parent reads each message as soon as it is complete (a task's result is used while
    the next task runs); in whatever pieces the bytes arrive, the verdict is the whole stream's."""
    messages, received, arrived = Messages(["a", "b"]), bytearray(), []
    for start in range(0, len(stream), chunk):
        received += stream[start:start + chunk]
        arrived += [out.id for out in messages.read(received)]
    outputs, tampered = messages.finish(received)
    whole, whole_tampered = _parse(stream, ["a", "b"])
    assert tampered == whole_tampered and outputs.keys() == whole.keys()
    for task_id, out in outputs.items():
        assert out.status == whole[task_id].status and out.arrays.keys() == whole[task_id].arrays.keys()
        assert all(np.array_equal(out.arrays[k], whole[task_id].arrays[k]) for k in out.arrays)
    if not tampered:  # each message reported once, in task order, as it completed
        assert arrived == list(outputs)


def test_a_header_is_read_once_however_many_pieces_its_payload_arrives_in(monkeypatch):
    """A forged header claiming a huge payload must not be parsed again for every 64 KiB read."""
    import grader.grading.probe as probe

    parsed = []
    monkeypatch.setattr(probe, "_header", lambda line, read=probe._header: parsed.append(line) or read(line))
    stream = frame("a", payload=npz_bytes(big=np.arange(200_000.0)))
    messages, received = Messages(["a"]), bytearray()
    for start in range(0, len(stream), 1 << 16):
        received += stream[start:start + (1 << 16)]
        messages.read(received)
    assert list(messages.outputs) == ["a"] and len(parsed) == 1


def test_where_pipes_cannot_be_selected_the_output_is_still_seen_as_it_grows():
    """Windows reads the pipes in threads (sandbox/core.py): on_stdout still sees each part as it
    arrives, from the calling thread."""
    import subprocess
    import threading

    from grader.sandbox.core import _read_capped_threads

    code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.5)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    out, _, stop = _read_capped_threads(proc, time.monotonic() + 30, 1 << 20,
                                        lambda received: seen.append((bytes(received), threading.current_thread())))
    proc.wait()
    assert stop == "" and bytes(out) == b"0\n1\n2\n"
    assert b"0\n" in [part for part, _ in seen] and all(t is threading.current_thread() for _, t in seen)


def test_each_task_is_reported_as_it_ends_while_later_tasks_still_run(tmp_path):
    (tmp_path / "steps.py").write_text("import time\n\ndef quick():\n    return 1.0\n\n"
                                       "def slow():\n    time.sleep(3)\n    return 2.0\n")
    tasks = [Task(id=name, fn="call", params={"module": "steps", "function": name, "args": []}, timeout=20)
             for name in ("quick", "slow")]
    seen = []
    outputs = run_probe(tmp_path, "generic", tasks, SANDBOX,
                        on_output=lambda out: seen.append((out.id, float(out.arrays["out0"]), time.monotonic())))
    returned = time.monotonic()
    assert [(task_id, value) for task_id, value, _ in seen] == [("quick", 1.0), ("slow", 2.0)]
    assert {k: float(v.arrays["out0"]) for k, v in outputs.items()} == {"quick": 1.0, "slow": 2.0}
    assert returned - seen[0][2] > 2.0  # quick's result was in hand while slow still slept


def test_a_stream_found_tampered_with_later_discards_what_was_reported_early():
    """What arrives early is provisional: a forged message after it (here a second "a") makes
    the whole run's outputs void, the early one included (run_probe returns the verdict)."""
    messages = Messages(["a", "b"])
    assert [out.id for out in messages.read(frame("a"))] == ["a"]
    assert messages.read(frame("a") + frame("a")) == []
    assert messages.finish(frame("a") + frame("a") + frame("b")) == ({}, True)


# ---------------------------------------------------------------------- payloads


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def npy_header(descr: str, shape: tuple) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).ljust(118) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def test_zip_bomb_payload_is_refused_before_decompressing():
    bomb = zip_bytes({"x.npy": npy_header("<f8", (8 * 1024**2,)) + b"\0" * (64 * 1024**2)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 1024**2
    with pytest.raises(ValueError, match="larger than the grader accepts|compressed"):
        load_payload(bomb)
    small = zip_bytes({"x.npy": npy_header("<f8", (4,)) + b"\0" * 32}, zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match="compressed"):
        load_payload(small)


def test_header_that_claims_a_huge_array_allocates_nothing():
    lying = zip_bytes({"x.npy": npy_header("<f8", (10**12,)) + b"\0" * 64})
    with pytest.raises(ValueError, match="does not match its size"):
        load_payload(lying)


@pytest.mark.parametrize("arrays", [
    {"c": np.ones(3, dtype=complex)},
    {"s": np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])},
    {"t": np.array(["2020-01-01"], dtype="datetime64[D]")},
    {f"a{i}": np.zeros(1) for i in range(MAX_ARRAYS + 1)},
])
def test_payloads_that_are_not_plain_numbers_are_refused(arrays):
    with pytest.raises(ValueError):
        load_payload(npz_bytes(**arrays))


def test_non_npy_members_and_garbage_are_refused():
    with pytest.raises(ValueError, match="unexpected member"):
        load_payload(zip_bytes({"x.txt": b"hello"}))
    with pytest.raises(ValueError, match="not an .npz"):
        load_payload(b"PK\x03\x04 garbage")


def test_non_finite_values_never_pass_a_tolerance():
    assert rel_error(np.ones(3), np.ones(3)) == 0.0
    assert rel_error(np.ones(3), np.array([1.0, np.nan, 1.0])) == float("inf")
    assert rel_error(np.array([np.inf]), np.array([np.inf])) == float("inf")
    assert rel_error(np.ones((2, 3)), np.ones((3, 2))) == float("inf")  # no broadcasting


# ---------------------------------------------------------------------- the parent's side


def test_output_flood_is_capped_and_the_probe_stopped(tmp_path):
    flood = "import sys\nwhile True:\n    sys.stdout.buffer.write(b'x' * 65536)\n"
    run = run_sandboxed(SANDBOX, [sys.executable, "-c", flood], jobdir=tmp_path, readable=[], writable=[tmp_path],
                        limits=Limits(wall_seconds=30), env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                        max_stdout=1024**2)
    assert run.overflow and run.returncode == -9 and len(run.stdout) <= 1024**2


def test_leftovers_of_the_session_are_killed(tmp_path):
    # The command starts a grandchild in its own process group (as the runner's tasks are), then
    # exits: killing the group would miss it; the session sweep does not.
    code = ("import os, sys, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n    os.setpgid(0, 0)\n    time.sleep(60)\n    os._exit(0)\n"
            "print(pid, flush=True)\n")
    run = run_sandboxed(SANDBOX, [sys.executable, "-c", code], jobdir=tmp_path, readable=[], writable=[tmp_path],
                        limits=Limits(wall_seconds=30), env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    pid = int(run.stdout.split()[0])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_font_cache_is_found_and_copied_without_importing_matplotlib(tmp_path):
    """Every probe and notebook gets a copy of matplotlib's font cache; finding it must not
    import matplotlib into the grader (0.15 s each time, for code that may never draw)."""
    import subprocess

    cache = tmp_path / "xdg" / "matplotlib"
    cache.mkdir(parents=True)
    (cache / "fontlist-v390.json").write_text("{}")
    code = ("import sys; from pathlib import Path; from grader.sandbox import seed_matplotlib_cache\n"
            f"seed_matplotlib_cache(Path({str(tmp_path / 'seed')!r}))\n"
            "print('matplotlib' in sys.modules)")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.strip() == "False", out.stderr
    assert (tmp_path / "seed" / "fontlist-v390.json").read_text() == "{}"


def test_a_process_start_waits_out_a_neighbours_fork_loop():
    """EAGAIN (the per-uid process limit, shared by every probe in a container) is another
    submission's doing: the runner's fork and the grader's start wait for it to pass."""
    from grader.probes.runner import patiently

    attempts = []

    def start():
        attempts.append(1)
        if len(attempts) < 3:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return "started"

    assert patiently(start, patience=5) == "started" and len(attempts) == 3

    def never():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    with pytest.raises(BlockingIOError):
        patiently(never, patience=0.2)  # a limit that never frees: the error, after the patience

    def refused():
        raise PermissionError(1, "Operation not permitted")

    with pytest.raises(PermissionError):
        patiently(refused, patience=5)  # anything else fails at once


class _RefusedAtFirst(type(SANDBOX)):
    """The process level with bwrap's start_refused, wrapped around a start that fails `refusals`
    times the way bwrap does when the uid's process limit is full (its clone() of the namespaces
    gets EAGAIN and it exits before the runner starts), then runs the real command."""

    def __init__(self, counter: Path, refusals: int):
        super().__init__()
        self.counter, self.refusals = counter, refusals

    def command(self, argv, jobdir, readable, writable, disk_bytes=None):
        script = ('n=$(cat "$0" 2>/dev/null || echo 0); echo $((n + 1)) > "$0"; '
                  f'if [ "$n" -lt {self.refusals} ]; then '
                  'echo "bwrap: Creating new namespace failed: Resource temporarily unavailable" >&2; exit 1; fi; '
                  'shift; exec "$@"')
        return ["/bin/sh", "-c", script, str(self.counter), "--", *argv]

    def start_refused(self, run):
        from grader.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox.start_refused(self, run)


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell stands in for bwrap")
def test_a_sandbox_start_refused_for_lack_of_processes_is_waited_out_then_not_graded(tmp_path, monkeypatch):
    """bwrap itself needs processes: where a neighbour holds the uid's limit, bwrap exits at once
    ("Creating new namespace failed: Resource temporarily unavailable"). That start is retried
    as patiently as a process start; if the limit stays full the submission is not graded (never
    scored 0 for it)."""
    from grader.errors import MachineBusy
    from grader.probes import runner

    monkeypatch.setattr(runner, "PATIENCE", 2.0)
    (tmp_path / "mlp.py").write_text("x = 1\n")
    task = [Task("import", "import_module", timeout=20)]
    counter = tmp_path / "starts"
    out = run_probe(tmp_path, "pset4", task, _RefusedAtFirst(counter, refusals=2))
    assert out["import"].status == "ok" and counter.read_text().strip() == "3"  # refused twice, then ran
    counter.unlink()
    with pytest.raises(MachineBusy) as caught:
        run_probe(tmp_path, "pset4", task, _RefusedAtFirst(counter, refusals=10**6))
    assert str(caught.value).startswith("not graded: the machine could not start a process (the probe's start)")
    assert int(counter.read_text()) > 2  # it kept trying for PATIENCE
