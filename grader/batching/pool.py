"""A pool of forked grading workers that survives what a long batch meets: a worker killed by
the OOM killer or `kill -9`, Ctrl-C, the parent itself killed.

Why fork and not a ProcessPoolExecutor: the parent prepares each Grader once (dataset loaded
and exported for the probes, reference outputs computed) and the forked workers inherit it as
it is, with nothing pickled; and a worker that dies costs the one submission it held (retried
once in a new worker), where a broken executor fails every pending future.

Each work item writes its own result (the caller's `work` does: atomically), so whatever ends
the batch loses at most the items in flight. Workers die with the parent (PR_SET_PDEATHSIG on
Linux) and kill their probes on the way out, so a killed batch leaves no grading behind.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Callable

RETRIES = 1  # a submission whose worker died is graded once more, in a fresh worker


GiB = 1024**3
MEMORY_PER_JOB = GiB  # a worker plus its probe training an MNIST-sized net stays well below this


def default_jobs() -> int:
    """The cores this process may use, but no more workers than a container's CPU quota and
    memory limit allow (`docker run --cpus 2 --memory 4g` on a 32-core host: 2, not 32)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    quota, memory = _cgroup_limits()
    if quota:
        cores = min(cores, max(1, int(quota + 0.5)))
    if memory:
        cores = min(cores, max(1, memory // MEMORY_PER_JOB))
    return max(1, cores)


def _cgroup_limits(root: Path = Path("/sys/fs/cgroup")) -> tuple[float | None, int | None]:
    """(CPU quota in cores, memory limit in bytes) of this cgroup (v2, else v1), None when unlimited."""
    quota = memory = None
    try:
        if (root / "cpu.max").is_file():  # v2: "max 100000" or "200000 100000"
            q, period = (root / "cpu.max").read_text().split()[:2]
            quota = None if q == "max" else int(q) / int(period)
            m = (root / "memory.max").read_text().strip() if (root / "memory.max").is_file() else "max"
            memory = None if m == "max" else int(m)
        else:  # v1
            q = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
            quota = None if q <= 0 else q / int((root / "cpu" / "cpu.cfs_period_us").read_text())
            m = int((root / "memory" / "memory.limit_in_bytes").read_text())
            memory = None if m >= 1 << 60 else m
    except (OSError, ValueError):
        pass
    return quota, memory


def run_pool(count: int, workers: int, work: Callable[[int], Any], on_result: Callable[[int, Any], None],
             on_lost: Callable[[int, str], Any], warmup: Callable[[], None] | None = None) -> None:
    """Run `work(i)` for i in range(count) in `workers` forked processes and call
    `on_result(i, value)` in the parent as each one finishes (in completion order). When the
    worker holding item i dies, i is retried once; after that `on_lost(i, reason)` gives its
    value. `work` must catch its own errors; one that escapes is passed to on_lost too.
    `warmup` runs in a thread of the parent once the first workers are started (work the parent
    needs only later, e.g. an import, done while it waits anyway); it is joined before any later
    fork (a fork while another thread imports could leave the child a held import lock) and
    before run_pool returns."""
    ctx = multiprocessing.get_context("fork")
    todo: deque[int] = deque(range(count))
    attempts = [0] * count
    pool: dict[Connection, tuple[Any, int | None]] = {}  # parent end -> (process, item it holds)
    parent = os.getpid()
    warming: threading.Thread | None = None

    def spawn() -> None:
        if warming is not None:
            warming.join()
        ours, theirs = ctx.Pipe()
        inherited = [*pool, ours]  # the parent's ends, which the child closes (EOF must mean "parent gone")
        proc = ctx.Process(target=_worker, args=(theirs, inherited, work, parent), daemon=True)
        proc.start()
        theirs.close()
        pool[ours] = (proc, None)

    def lost(conn: Connection, reason: str) -> None:
        proc, item = pool.pop(conn)
        conn.close()
        proc.join(5)
        if item is None:
            return
        attempts[item] += 1
        if attempts[item] <= RETRIES:
            todo.appendleft(item)
        else:
            on_result(item, on_lost(item, reason))

    try:
        for _ in range(min(workers, count)):
            spawn()
        if warmup is not None:
            warming = threading.Thread(target=warmup, name="warmup", daemon=True)
            warming.start()
        while todo or any(item is not None for _, item in pool.values()):
            for conn, (proc, item) in list(pool.items()):
                if item is None and todo:
                    item = todo.popleft()
                    # marked busy before the send: a Ctrl-C right after it must not take the worker
                    # for idle (_stop would then wait for it instead of terminating it and its probe)
                    pool[conn] = (proc, item)
                    try:
                        conn.send(item)
                    except (OSError, ValueError):  # it just died: wait() below sees it go
                        pool[conn] = (proc, None)
                        todo.appendleft(item)
            if not pool:
                spawn()
                continue
            sentinels = {proc.sentinel: conn for conn, (proc, _) in pool.items()}
            for ready in wait(list(pool) + list(sentinels)):
                conn = sentinels.get(ready, ready)
                if conn not in pool:
                    continue
                proc, item = pool[conn]
                message = None
                try:
                    if conn.poll():  # a result can be waiting although the worker is gone
                        message = conn.recv()
                except (EOFError, OSError):
                    pass
                if message is not None:
                    kind, index, value = message
                    pool[conn] = (proc, None)
                    if kind == "ok":
                        on_result(index, value)
                    else:
                        on_result(index, on_lost(index, value))
                elif not proc.is_alive() or ready is proc.sentinel:
                    proc.join(5)
                    lost(conn, _death(proc.exitcode))
                    if todo and len(pool) < workers:
                        spawn()
    finally:
        _stop(pool)
        if warming is not None:
            warming.join()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the grading worker was killed by {signal.Signals(-code).name} while grading this submission, twice"
    return f"the grading worker exited (status {code}) while grading this submission, twice"


def _stop(pool: dict[Connection, tuple[Any, int | None]]) -> None:
    """Idle workers get None and exit; busy ones are terminated (they kill their probes)."""
    for conn, (proc, item) in pool.items():
        try:
            if item is None and proc.is_alive():
                conn.send(None)
            else:
                proc.terminate()
        except (OSError, ValueError):
            proc.terminate()
    for conn, (proc, _) in pool.items():
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(10)  # bounded: a Ctrl-C must end the batch even if the kernel holds a dying worker
        conn.close()


def _worker(conn: Connection, inherited: list[Connection], work: Callable[[int], Any], parent: int) -> None:
    for other in inherited:
        other.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, _on_terminate)
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        _on_terminate()
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        try:
            message = ("ok", item, work(item))
        except Exception:  # noqa: BLE001 - reported to the parent as a lost item, never swallowed
            message = ("error", item, "internal error while grading: " + traceback.format_exc(limit=5)[-1500:])
        _end_leftovers()
        try:
            conn.send(message)
        except (OSError, ValueError):
            return


def _on_terminate(*_: Any) -> None:
    kill_descendants()
    os._exit(143)


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when its parent dies, even by kill -9; and make it the child
    subreaper of everything its grading starts, so that a process a submission left behind
    (a notebook cell's setsid() child outlives the kernel and its nanny) is still below it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        libc.prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _end_leftovers() -> None:
    """After a submission: nothing it started outlives its grading (a process left running holds
    its uid's process limit, which in a container every submission shares). Repeated, because
    the orphans of a killed process come back to this worker, the subreaper."""
    for _ in range(50):
        _reap()
        if not kill_descendants():
            break
        time.sleep(0.002)
    _reap()


def _reap() -> None:
    """Collect the exit of every child of this worker that has ended (it adopts orphans)."""
    while hasattr(os, "WNOHANG"):
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_descendants(pid: int | None = None) -> list[int]:
    """SIGKILL every process below `pid` (default: this one); returns them. Probes run in their
    own sessions and their tasks in their own process groups, so killing our group would not
    reach them; this walks /proc (Linux; elsewhere it does nothing)."""
    root = pid or os.getpid()
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat_file.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError, IndexError):
            continue
        if state != "Z":  # a zombie is dead already: its parent collects it
            children.setdefault(int(ppid), []).append(int(stat_file.parent.name))
    stack, victims = [root], []
    while stack:
        for child in children.get(stack.pop(), []):
            victims.append(child)
            stack.append(child)
    for victim in victims:
        try:
            os.kill(victim, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return victims
