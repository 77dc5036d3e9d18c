"""Notebook execution in a sandboxed kernel: a kernel that dies mid-notebook, cells that ignore
SIGINT (`signal.signal(SIGINT, SIG_IGN); while True: pass` and `while True: try/except: pass`),
the whole-notebook limit, light-mode planning. Time limits are short so the suite stays fast."""
from __future__ import annotations

import os
import socket

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.notebooks.kernel import KernelJob, execute_notebook, names_of, plan_cells
from grader.notebooks.reading import load_notebook
from grader.sandbox import choose_sandbox

from conftest import REPO

NOTEBOOKS = REPO / "tests" / "fixtures" / "notebooks"


def run(nb, tmp_path, sandbox=None, cell_timeout=20.0, notebook_timeout=60.0, skip=None):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    plans = plan_cells(nb, skip or {}, cell_timeout)
    job = KernelJob(sandbox or choose_sandbox("process"), work, tmp_path)
    return execute_notebook(nb, plans, job, mode="light", notebook_timeout=notebook_timeout)


def text(nb, index):
    return "".join(o.get("text", "") for o in nb.cells[index].outputs if o.get("output_type") == "stream")


def test_kernel_that_dies_mid_notebook_is_reported_and_replaced(tmp_path):
    nb = load_notebook(NOTEBOOKS / "kernel_dies.ipynb").nb
    report = run(nb, tmp_path)
    assert [c.status for c in report.cells] == ["ok", "died", "ok"]
    assert "exited (status 3)" in report.cells[1].reason and "new kernel" in report.cells[1].reason
    assert text(nb, 2) == "alive 42\n"  # the new kernel got the state back by replaying cell 1
    assert report.restarts == 1 and len(report.kernel_starts) == 2


def test_cells_that_ignore_interrupts_are_killed(tmp_path):
    nb = load_notebook(NOTEBOOKS / "ignores_sigint.ipynb").nb
    report = run(nb, tmp_path, cell_timeout=2.0)
    assert [c.status for c in report.cells] == ["ok", "timeout", "timeout", "ok"]
    assert "killed" in report.cells[1].reason
    assert text(nb, 3) == "still here 1\n"
    assert report.restarts == 2


def test_whole_notebook_limit_and_error_tail(tmp_path):
    nb = new_notebook(cells=[new_code_cell("def f():\n    return 1 / 0\nf()"), new_code_cell("import time\ntime.sleep(60)"),
                             new_code_cell("print('never')")])
    report = run(nb, tmp_path, cell_timeout=60.0, notebook_timeout=6.0)  # includes the kernel start
    assert [c.status for c in report.cells] == ["error", "timeout", "not_run"]
    assert "notebook's time limit (6 s) ran out" in report.cells[1].reason
    assert "ZeroDivisionError" in report.cells[0].error.splitlines()[-1]
    assert "time limit" in report.cells[2].reason


def test_output_flood_is_capped(tmp_path):
    nb = new_notebook(cells=[new_code_cell("print('x' * 500_000)\nfor i in range(200): print(i)")])
    report = run(nb, tmp_path)
    assert report.cells[0].status == "ok"
    assert sum(len(o.get("text", "")) for o in nb.cells[0].outputs) <= 110_000


def test_kernel_runs_without_the_grader_and_in_the_working_copy(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "mine.py").write_text("VALUE = 7\n")
    nb = new_notebook(cells=[new_code_cell("from mine import VALUE\nprint(VALUE)"), new_code_cell("import grader"),
                             new_code_cell("import os\nprint(sorted(k for k in os.environ if 'TOKEN' in k), "
                                           "os.environ['OPENBLAS_NUM_THREADS'])")])
    report = run(nb, tmp_path)
    assert [c.status for c in report.cells] == ["ok", "error", "ok"]
    assert text(nb, 0) == "7\n" and "No module named 'grader'" in report.cells[1].error
    assert text(nb, 2) == "[] 1\n"


def test_light_plan_skips_what_depends_on_skipped_cells():
    nb = new_notebook(cells=[new_code_cell("import numpy as np\nseed = 0"),
                             new_code_cell("data = load()\nseed = 5"),  # skipped by the rubric
                             new_code_cell("x = data[0]"),  # uses data: skipped too
                             new_code_cell("seed = 1234\nprint(seed, np.pi)"),  # assigns seed before use: runs
                             new_code_cell("data = 5\nprint(data)"),  # defines data again: runs
                             new_code_cell("print(data, x)")])  # x only from a skipped cell
    plans = {p.index: p for p in plan_cells(nb, {1: "loads the data"}, 10)}
    assert [plans[i].run for i in range(6)] == [True, False, False, True, True, False]
    assert plans[2].reason == "uses data from skipped cell 2"
    assert plans[5].reason == "uses x from skipped cell 3"


def test_names_of_a_cell():
    reads, writes = names_of("%matplotlib inline\nfor k, v in data.items():\n    print(k, v)\ndef f(a):\n    return b\n"
                             "import numpy as np\nmodel = Net(x)\n")
    assert reads == {"data", "print", "Net", "x"} and writes == {"k", "v", "f", "np", "model"}


def test_bwrap_kernel_has_no_network_and_no_view_of_the_grader(tmp_path, bwrap_sandbox):
    with socket.socket() as server:  # a port on the host's loopback, invisible from bwrap's own
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        nb = new_notebook(cells=[
            new_code_cell("import socket\ns = socket.socket(); s.settimeout(2)\n"
                          f"try:\n    s.connect(('127.0.0.1', {port})); print('reached')\n"
                          "except OSError as e:\n    print('blocked')"),
            new_code_cell(f"import os\nprint(os.path.exists({str(REPO / 'reference')!r}), os.getuid())"),
            new_code_cell("import os\nos._exit(0)"), new_code_cell("print('after')")])
        report = run(nb, tmp_path, sandbox=bwrap_sandbox)
    assert [c.status for c in report.cells] == ["ok", "ok", "died", "ok"], [c.error for c in report.cells]
    assert text(nb, 0) == "blocked\n"
    assert text(nb, 1).startswith("False")
    assert report.sandbox == "bwrap"


def test_landlock_kernel_cannot_connect_read_the_grader_or_signal_it(tmp_path, landlock_sandbox):
    # A Unix socket outside the job, listened on by this test (an X11 or ssh-agent socket on a TA's
    # machine): the kernel's cells may not connect to it, while its own channels keep working.
    unix_path = str(tmp_path / "agent.sock")
    with socket.socket() as server, socket.socket(socket.AF_UNIX) as unix_server:
        unix_server.bind(unix_path)
        os.chmod(unix_path, 0o777)  # reachable by any uid: only the sandbox may refuse it
        unix_server.listen(1)
        unix_server.settimeout(0.5)
        server.bind(("127.0.0.1", 0))  # the host's loopback: visible, but connect() is refused
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        nb = new_notebook(cells=[
            new_code_cell("import socket\n"  # refused at socket() (seccomp filter) or at connect() (Landlock)
                          f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2); print('reached')\n"
                          "except OSError as e:\n    print(type(e).__name__)"),
            new_code_cell(f"try:\n    open({str(REPO / 'reference' / 'pset4' / 'mlp.py')!r}).read(); print('read')\n"
                          "except OSError as e:\n    print(type(e).__name__)"),
            # signal 0: the permission check of a kill, delivering nothing (the grader is this test run)
            new_code_cell("import os\ntry:\n    os.kill(os.getppid(), 0); print('may signal')\n"
                          "except OSError as e:\n    print(type(e).__name__)"),
            new_code_cell("import socket\ntry:\n    s = socket.socket(socket.AF_UNIX)\n"
                          f"    s.connect({unix_path!r}); s.sendall(b'LEAK'); print('reached')\n"
                          "except OSError as e:\n    print(type(e).__name__)"),
            new_code_cell("import os\nos._exit(0)"), new_code_cell("print('after')"),
            new_code_cell(f"import socket\ntry:\n    socket.socket(socket.AF_UNIX).connect({unix_path!r})\n"
                          "except OSError as e:\n    print(type(e).__name__)\nprint(len(socket.socketpair()))")])
        report = run(nb, tmp_path, sandbox=landlock_sandbox)
        reached = []
        for listener in (server, unix_server):
            try:
                listener.accept()[0].close()
                reached.append(listener.family)
            except OSError:
                pass
    assert [c.status for c in report.cells] == ["ok", "ok", "ok", "ok", "died", "ok", "ok"], \
        [c.error for c in report.cells]
    assert text(nb, 0) == "PermissionError\n" and not reached
    assert text(nb, 1) == "PermissionError\n"
    assert text(nb, 2) == "PermissionError\n"
    assert text(nb, 3) == "PermissionError\n"  # no new Unix socket: none by path
    assert text(nb, 5) == "after\n"  # a new kernel, restricted the same way
    assert text(nb, 6) == "PermissionError\n2\n"  # socketpair (asyncio, multiprocessing pipes) still works
    assert report.sandbox == "landlock"


@pytest.mark.parametrize("level", ["process", "landlock"])
def test_a_cell_that_kills_its_parent_ends_only_its_own_kernel(tmp_path, level, request):
    # Before the kernel had a parent of its own, this cell killed the grader (here: this test
    # run); it checks that its parent is not the grader before it kills, so that a regression
    # fails this test instead of ending the test run.
    sandbox = request.getfixturevalue("landlock_sandbox") if level == "landlock" else choose_sandbox("process")
    grader = os.getpid()
    nb = new_notebook(cells=[
        new_code_cell(f"import os, signal\nprint(os.getppid() != {grader})"),
        new_code_cell(f"if os.getppid() != {grader}:\n    os.kill(os.getppid(), signal.SIGKILL)"),
        new_code_cell("print('after')")])
    report = run(nb, tmp_path, sandbox=sandbox)
    assert text(nb, 0) == "True\n"
    assert text(nb, 2) == "after\n"  # the grader went on, in a new kernel
    if level == "landlock":
        # The kernel's parent is outside its Landlock domain: the kill itself is refused.
        assert [c.status for c in report.cells] == ["ok", "error", "ok"]
        assert "PermissionError" in report.cells[1].error
    else:
        # NOT STOPPED at the process level: the kill works, but what dies is the kernel's own parent,
        # and with it the kernel: the cell is reported and a new kernel runs the rest.
        assert [c.status for c in report.cells] == ["ok", "died", "ok"]
        assert "SIGKILL" in report.cells[1].reason
        assert report.restarts == 1


def test_notebook_module_is_not_on_the_kernel_path(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[new_code_cell("import sys\nprint(any('grader' in p for p in sys.path "
                                                       "if p.endswith('/main')))")])
    run(nb, tmp_path)
    assert text(nb, 0) == "False\n"


def test_prelude_and_replay_leave_the_notebook_cells_alone(tmp_path):
    nb = new_notebook(cells=[new_code_cell("z = 2"), new_code_cell("import os\nos._exit(1)"),
                             new_code_cell("print(z, PRELUDE)")])
    work = tmp_path / "work"
    work.mkdir()
    job = KernelJob(choose_sandbox("process"), work, tmp_path, prelude="PRELUDE = 'set'")
    report = execute_notebook(nb, plan_cells(nb, {}, 20), job, mode="light", notebook_timeout=60)
    assert [c.status for c in report.cells] == ["ok", "died", "ok"]
    assert [c.source for c in nb.cells] == ["z = 2", "import os\nos._exit(1)", "print(z, PRELUDE)"]
    assert text(nb, 2) == "2 set\n"
