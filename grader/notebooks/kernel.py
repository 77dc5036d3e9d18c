"""Executing a submitted notebook in a Jupyter kernel that lives inside the sandbox.

The kernel is an ordinary ipykernel started the way a probe is started: the sandbox level's
`command(...)` wraps its command line (bwrap: own namespaces, no network, read-only view), the
same rlimits and scrubbed environment apply, and its interpreter runs with `-I -S` and an
import path made of the `site/` view (third-party packages, ipykernel included, never the
grader or the course material) plus the working copy. The grader talks to it over ZeroMQ
`ipc` sockets (files in the job folder): they work across bwrap's network namespace, where
TCP on 127.0.0.1 would not, so both levels use them.

A cell that raises is recorded and execution goes on (the next cells may still run). A cell
that runs past its timeout is never trusted to honour an interrupt (`except: pass` swallows
them): the kernel's whole process group is killed, a new kernel is started and the cells
that had succeeded are replayed silently to restore the state; so is a cell that kills the
kernel (`os._exit`, a memory blow-up). Over the whole notebook a wall-clock budget applies;
cells left when it is used up are reported as not run.
"""
from __future__ import annotations

import asyncio
import math
import os
import re
import resource
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from grader.parsing import parse_cell, statement_names
from grader.sandbox import GiB, Limits, build_site_view, probe_environment, python_executable, seed_matplotlib_cache

# The kernel's entry point: the site view first (with -S nothing else is on the path), then the
# notebook's folder (Jupyter's behaviour: a notebook imports the modules beside it).
# At the landlock level the kernel restricts itself (both layers of the job's policy: no /proc)
# before anything else is imported; a policy the kernel refuses stops the kernel.
LANDLOCK_BOOT = (
    "import os, json; d = os.path.join(os.path.dirname(sys.argv[1]), 'landlock'); "
    "p = os.path.join(d, 'policy.json'); sys.path.insert(0, d); "
    "L = __import__('landlock_rules') if os.path.isfile(p) else None; sys.path.remove(d); "
    "P = L and json.load(open(p)); L and (L.restrict(P), L.restrict({**P['task_layer'], 'unix': False})); ")
# The kernel's own channels are Unix sockets (ZeroMQ ipc): it refuses new ones (to cells) only once
# they are open, just before the kernel runs any code (IPKernelApp.init_code: after the sockets,
# the heartbeat and the I/O threads; the filter covers every thread).
UNIX_AFTER_CHANNELS = (
    "A = kernelapp.IPKernelApp; C = A.init_code; "
    "A.init_code = lambda self, *a, **k: (L and P['task_layer'].get('unix') and L.refuse_unix_sockets(P['task_layer']), "
    "C(self, *a, **k))[1]; ")
BOOT = ("import site, sys; " + LANDLOCK_BOOT + "site.addsitedir(sys.argv.pop(1)); sys.path.insert(0, ''); "
        "from ipykernel import kernelapp; " + UNIX_AFTER_CHANNELS + "kernelapp.launch_new_instance()")
# The kernel's parent: a small process of the sandbox's own (started with the level's limits and,
# as root, its uid), never the grader, so a cell that kills its parent ends its own kernel only.
# It ignores the signals jupyter_client sends to the kernel's process group (the kernel gets
# them too), waits, and ends as the kernel did (same status or signal); the kernel gets SIGKILL
# if the nanny dies.
NANNY = (
    "import ctypes, os, signal, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"  # PR_SET_PDEATHSIG
    "    os.execvp(sys.argv[1], sys.argv[1:])\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):\n"
    "    signal.signal(s, signal.SIG_IGN)\n"
    "while True:\n"
    "    try:\n"
    "        _, status = os.waitpid(pid, 0)\n"
    "        break\n"
    "    except ChildProcessError:\n"
    "        os._exit(1)\n"
    "    except InterruptedError:\n"
    "        pass\n"
    "if os.WIFSIGNALED(status):\n"  # die the same way, so the grader can say why
    "    if os.WTERMSIG(status) != signal.SIGKILL:\n"
    "        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)\n"
    "    os.kill(os.getpid(), os.WTERMSIG(status))\n"
    "os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)\n")
STARTUP_SECONDS = 60.0  # an ipykernel starts in 1-3 s; a loaded machine may need much more
MAX_RESTARTS = 3  # after that, the remaining cells are reported as not run
MAX_OUTPUT_CHARS = 100_000  # text kept per cell; a print loop must not fill the grader's memory
MAX_OUTPUTS = 50  # outputs kept per cell
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ERROR_TAIL_LINES = 12

STATUSES = ("ok", "error", "timeout", "died", "skipped", "not_run")
# How long nbclient waits for a cell's outputs after its reply: 5 s lost the output of a cell run
# in a freshly restarted kernel on a loaded machine (a CI run: the printed line never arrived). It
# costs nothing when the outputs come, which they do at once.
IOPUB_SECONDS = 20


@dataclass
class CellPlan:
    """What to do with one code cell: run it (with this timeout) or skip it, and why."""

    index: int
    run: bool
    timeout: float
    reason: str = ""


@dataclass
class CellRun:
    index: int  # position in the notebook, 0-based
    status: str  # one of STATUSES
    seconds: float = 0.0
    reason: str = ""  # why it was skipped / not run / how the kernel died
    error: str = ""  # the last lines of the traceback (error) or of the kernel's log (died)
    outputs: list[Any] = field(default_factory=list)  # nbformat outputs (capped)


@dataclass
class ExecutionReport:
    mode: str
    sandbox: str
    cells: list[CellRun] = field(default_factory=list)
    kernel_starts: list[float] = field(default_factory=list)  # seconds from launch to ready
    seconds: float = 0.0
    restarts: int = 0
    problem: str = ""  # set when nothing could be executed (the kernel would not start)

    def by_index(self) -> dict[int, CellRun]:
        return {c.index: c for c in self.cells}


# ---------------------------------------------------------------------- planning


def plan_cells(nb: Any, skip: dict[int, str], timeout: float) -> list[CellPlan]:
    """A plan for every non-empty code cell. `skip` maps cell index -> reason (the rubric's
    per-cell policy, decided by the caller). A cell that reads a name only a skipped cell
    defines is skipped too ("uses X from skipped cell N"), so light mode does not fill the
    report with NameErrors; a name a later run cell assigns again is usable again."""
    plans: list[CellPlan] = []
    tainted: dict[str, int] = {}  # name -> index of the skipped cell that defined it
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or not cell.get("source", "").strip():
            continue
        reads, writes = names_of(cell.source)
        reason = skip.get(index, "")
        if not reason:
            used = sorted(n for n in reads if n in tainted)
            if used:
                cells = sorted({tainted[n] + 1 for n in used})
                reason = (f"uses {', '.join(used[:4])}{' …' if len(used) > 4 else ''} from skipped cell"
                          f"{'s' if len(cells) > 1 else ''} {', '.join(map(str, cells))}")
        if reason:
            for name in writes:
                tainted[name] = index
        else:
            for name in writes:
                tainted.pop(name, None)
        plans.append(CellPlan(index, not reason, timeout, reason))
    return plans


def names_of(source: str) -> tuple[set[str], set[str]]:
    """(names read before being assigned in the cell, names assigned), from the top-level
    statements in order. Function and class bodies are not followed (their names are read
    when called). A cell that does not parse reads and writes nothing we can tell."""
    tree = parse_cell(source)
    if tree is None:
        return set(), set()
    reads: set[str] = set()
    writes: set[str] = set()
    for stmt in tree.body:
        loads, stores = statement_names(stmt)
        reads |= loads - writes - stores  # `for k in data: print(k)` reads data, not k
        writes |= stores
    return reads, writes


# ---------------------------------------------------------------------- the sandboxed kernel


class SandboxedKernelManager(AsyncKernelManager):
    """An AsyncKernelManager whose kernel command is wrapped by a sandbox level. The kernel
    gets the scrubbed environment, the working copy as its folder, and the level's rlimits
    plus a CPU-time backstop; its output goes to a log file in the job folder."""

    def __init__(self, *, sandbox: Any, jobdir: Path, workdir: Path, readable: list[Path],
                 limits: Limits, cpu_seconds: int, **kwargs: Any) -> None:
        super().__init__(transport="ipc", ip=str(jobdir / "home" / "k"),
                         connection_file=str(jobdir / "kernel.json"), kernel_name="", **kwargs)
        self.sandbox, self.jobdir, self.workdir = sandbox, jobdir, workdir
        self.readable, self.limits, self.cpu_seconds = readable, limits, cpu_seconds
        self._kernel_spec = KernelSpec(
            argv=[python_executable(), "-I", "-S", "-B", "-c", BOOT, str(jobdir / "site"),
                  "-f", "{connection_file}", "--HistoryManager.hist_file=:memory:"],
            display_name="Python 3 (sandboxed)", language="python", interrupt_mode="signal")

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if self.sandbox.root:  # the kernel runs as another uid
            os.chown(self.connection_file, self.sandbox.uid, self.sandbox.gid)
        cmd = [python_executable(), "-I", "-S", "-B", "-c", NANNY,
               *self.sandbox.command(kernel_cmd, self.jobdir, self.readable, [self.workdir])]
        env = probe_environment(self.jobdir / "home")
        log = open(self.jobdir / "out" / "kernel.log", "ab")  # noqa: SIM115 - closed in cleanup
        self._log = log
        base = self.sandbox.preexec(self.limits)
        cpu = self.cpu_seconds

        def preexec() -> None:
            base()
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))

        # Not independent: jupyter_client passes JPY_PARENT_PID and ipykernel exits when the grader
        # does. In bwrap's pid namespace that pid does not exist (ipykernel would quit at once);
        # there --die-with-parent does the same job. (landlock: no pid namespace, like process.)
        kw.update(env=env, cwd=str(self.workdir), stdout=log, stderr=log, preexec_fn=preexec,
                  independent=self.sandbox.pid_namespace)
        await super()._async_launch_kernel(cmd, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def exit_status(self) -> int | None:
        proc = getattr(self.provisioner, "process", None)
        return None if proc is None else proc.poll()


class _CappedClient(NotebookClient):
    """nbclient with a cap on what one cell's outputs may hold in the grader's memory."""

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int) -> Any:
        if len(outs) >= MAX_OUTPUTS or _chars(outs) >= MAX_OUTPUT_CHARS:
            if not any(o.get("name") == "grader-truncated" for o in outs):
                outs.append(nbformat.v4.new_output("stream", name="grader-truncated",
                                                   text="[the grader kept no further output of this cell]\n"))
            return None
        out = super().output(outs, msg, display_id, cell_index)
        excess = _chars(outs) - MAX_OUTPUT_CHARS
        if out is not None and excess > 0 and out.get("output_type") == "stream":  # one huge print
            out["text"] = out["text"][:max(0, len(out["text"]) - excess)]
        return out


def _merge_streams(outs: list) -> list:
    """Consecutive outputs of the same stream become one, as Jupyter shows them."""
    merged: list = []
    for out in outs:
        last = merged[-1] if merged else None
        if (last is not None and out.get("output_type") == "stream" and last.get("output_type") == "stream"
                and last.get("name") == out.get("name")):
            last["text"] += out.get("text", "")
        else:
            merged.append(out)
    return merged


def _chars(outs: list) -> int:
    total = 0
    for o in outs:
        if o.get("output_type") == "stream":
            total += len(o.get("text", ""))
        else:
            total += sum(len(str(v)) for v in o.get("data", {}).values())
    return total


@dataclass
class KernelJob:
    """Where and how kernels are started for one notebook."""

    sandbox: Any
    workdir: Path  # the working copy: student's files, course files replaced by trusted copies
    scratch: Path
    readable: list[Path] = field(default_factory=list)  # extra read-only folders (data)
    memory_bytes: int = 4 * GiB
    prelude: str = ""  # trusted code run silently in each new kernel before the notebook


class _Session:
    """One kernel and its client; closed as a whole."""

    def __init__(self, job: KernelJob, jobdir: Path, cpu_seconds: int) -> None:
        self.km = SandboxedKernelManager(sandbox=job.sandbox, jobdir=jobdir, workdir=job.workdir,
                                         readable=[jobdir, *job.readable],
                                         limits=Limits(wall_seconds=STARTUP_SECONDS, memory_bytes=job.memory_bytes),
                                         cpu_seconds=cpu_seconds)
        self.client: _CappedClient | None = None

    async def start(self, nb: Any) -> float:
        started = time.monotonic()
        await self.km.start_kernel()
        kc = self.km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=STARTUP_SECONDS)
        except RuntimeError:
            kc.stop_channels()
            raise
        kc.allow_stdin = False
        # nbclient stores each executed cell back into client.nb.cells[index]: give it a list of
        # its own, so the prelude and the replayed copies never replace the notebook's cells.
        scratch = nbformat.NotebookNode(cells=list(nb.cells), metadata=nb.get("metadata", {}), nbformat=4,
                                        nbformat_minor=nb.get("nbformat_minor", 5))
        self.client = _CappedClient(scratch, km=self.km, allow_errors=True, record_timing=False,
                                    interrupt_on_timeout=False, raise_on_iopub_timeout=False,
                                    iopub_timeout=IOPUB_SECONDS, coalesce_streams=False)
        self.client.kc = kc
        return time.monotonic() - started

    async def run(self, cell: Any, index: int, timeout: float) -> tuple[str, float]:
        """Run one cell in place: ok | error | timeout | died, and the seconds it took."""
        assert self.client is not None
        self.client.timeout = max(1, math.ceil(timeout))
        started = time.monotonic()
        try:
            await self.client.async_execute_cell(cell, index, store_history=True)
        except CellTimeoutError:
            return "timeout", time.monotonic() - started
        except DeadKernelError:
            return "died", time.monotonic() - started
        # nbclient's own coalescing runs a regex that takes seconds on a long line: merge plainly
        cell.outputs = _merge_streams(cell.get("outputs", []))
        status = "error" if any(o.get("output_type") == "error" for o in cell.outputs) else "ok"
        return status, time.monotonic() - started

    async def silent(self, code: str, timeout: float) -> str:
        cell = nbformat.v4.new_code_cell(code)
        status, _ = await self.run(cell, -1, timeout)
        return status if status != "error" else "error: " + _error_text(cell)

    async def close(self) -> None:
        client = self.client
        if client is not None and client.kc is not None:
            client.kc.stop_channels()
        try:
            await self.km.shutdown_kernel(now=True)  # SIGKILL to the kernel's process group
        except Exception:  # noqa: BLE001 - a kernel that is already gone is what we want
            pass
        try:
            await self.km.cleanup_resources()
        except Exception:  # noqa: BLE001
            pass


def execute_notebook(nb: Any, plans: list[CellPlan], job: KernelJob, *, mode: str,
                     notebook_timeout: float) -> ExecutionReport:
    """Run the planned cells of `nb` (modified in place: outputs of run cells are replaced).
    Never raises for anything the notebook does; a kernel that cannot start is `problem`."""
    started = time.monotonic()
    report = ExecutionReport(mode=mode, sandbox=job.sandbox.name)
    with tempfile.TemporaryDirectory(prefix="mlp-grader-nb-", dir=job.scratch) as tmp:
        jobdir = Path(tmp)
        for sub in ("out", "home"):
            (jobdir / sub).mkdir()
        build_site_view(jobdir / "site")
        seed_matplotlib_cache(jobdir / "home" / ".matplotlib")
        coro = _execute(nb, plans, job, jobdir, report, notebook_timeout)
        try:
            _run_coroutine(coro)
        except Exception as exc:  # noqa: BLE001 - a grader-side failure costs the notebook step only
            report.problem = report.problem or f"notebook execution failed: {type(exc).__name__}: {exc}"
        done = {c.index for c in report.cells}
        for plan in plans:  # whatever did not get a status (a grader-side failure) is not run
            if plan.index not in done:
                report.cells.append(CellRun(plan.index, "not_run", reason=report.problem or "not reached"))
        report.cells.sort(key=lambda c: c.index)
    report.seconds = round(time.monotonic() - started, 3)
    return report


async def _execute(nb: Any, plans: list[CellPlan], job: KernelJob, jobdir: Path, report: ExecutionReport,
                   notebook_timeout: float) -> None:
    deadline = time.monotonic() + notebook_timeout
    cpu = int(notebook_timeout) + 30  # a backstop only; the wall-clock limits act first
    session: _Session | None = None
    succeeded: list[int] = []
    stop_reason = ""
    try:
        for plan in plans:
            cell = nb.cells[plan.index]
            if not plan.run:
                report.cells.append(CellRun(plan.index, "skipped", reason=plan.reason, outputs=cell.get("outputs", [])))
                continue
            remaining = deadline - time.monotonic()
            if not stop_reason and remaining < 1:
                stop_reason = f"the notebook's time limit ({notebook_timeout:g} s) was used up"
            if not stop_reason and session is None:
                if report.restarts > MAX_RESTARTS:
                    stop_reason = f"the kernel was restarted {MAX_RESTARTS} times; the grader gave up"
                else:
                    session, stop_reason = await _new_session(nb, job, jobdir, cpu, succeeded, deadline, report)
            if stop_reason or session is None:
                report.cells.append(CellRun(plan.index, "not_run", reason=stop_reason or "no kernel"))
                continue
            timeout = min(plan.timeout, max(1.0, deadline - time.monotonic()))
            log_size = _size(jobdir / "out" / "kernel.log")
            status, seconds = await session.run(cell, plan.index, timeout)
            run = CellRun(plan.index, status, round(seconds, 3), outputs=list(cell.get("outputs", [])))
            if status == "error":
                run.error = _error_text(cell)
            elif status == "timeout":
                limit = (f"did not finish within {timeout:.0f} s" if timeout >= plan.timeout else
                         f"was still running when the notebook's time limit ({notebook_timeout:g} s) ran out")
                run.reason = f"{limit}; the kernel was killed (an interrupt is not trusted to stop it) and restarted"
            elif status == "died":
                code = session.km.exit_status()
                run.reason = _death_reason(code) + "; a new kernel was started"
                run.error = _tail_file(jobdir / "out" / "kernel.log", since=log_size)
            report.cells.append(run)
            if status == "ok":
                succeeded.append(plan.index)
            if status in ("timeout", "died"):
                await session.close()
                session = None
                report.restarts += 1
    finally:
        if session is not None:
            await session.close()


async def _new_session(nb: Any, job: KernelJob, jobdir: Path, cpu: int, succeeded: list[int], deadline: float,
                       report: ExecutionReport) -> tuple[_Session | None, str]:
    """Start a kernel, run the trusted prelude, and replay the cells that succeeded before a
    restart (outputs discarded). Returns (session, "") or (None, why not)."""
    session = _Session(job, jobdir, cpu)
    try:
        report.kernel_starts.append(round(await session.start(nb), 3))
    except Exception as exc:  # noqa: BLE001 - the report says why no cell ran
        await session.close()
        log = _tail_file(jobdir / "out" / "kernel.log")
        report.problem = f"the kernel did not start ({type(exc).__name__}: {exc})" + (f": {log}" if log else "")
        return None, report.problem
    if job.prelude:
        status = await session.silent(job.prelude, max(1.0, deadline - time.monotonic()))
        if status != "ok":
            await session.close()
            report.problem = f"the grader's set-up code failed in the kernel ({status})"
            return None, report.problem
    for index in succeeded:
        copy = nbformat.from_dict(nb.cells[index])
        status, _ = await session.run(copy, index, max(1.0, deadline - time.monotonic()))
        if status != "ok":
            await session.close()
            return None, f"restoring the state after a restart failed when cell {index + 1} was re-run ({status})"
    return session, ""


def _run_coroutine(coro: Any) -> None:
    """asyncio.run, also when the caller already runs an event loop in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------- helpers


def _error_text(cell: Any) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines = ANSI.sub("", "\n".join(out.get("traceback", []))).splitlines()
            tail = "\n".join(lines[-ERROR_TAIL_LINES:]).strip()
            return tail or f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
    return ""


def _death_reason(code: int | None) -> str:
    if code is None:
        return "the kernel stopped responding"
    if code < 0:
        import signal

        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if name == "SIGXCPU":
            return "the kernel used up its CPU-time limit"
        if name == "SIGKILL":
            return "the kernel was killed (SIGKILL): usually the memory limit"
        return f"the kernel was killed by {name}"
    return (f"the kernel process exited (status {code}) while running this cell; "
            "does the code call os._exit() or exit the interpreter?")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tail_file(path: Path, lines: int = ERROR_TAIL_LINES, since: int = 0) -> str:
    """The last lines of the kernel's own log written after byte `since` (what it said as it died)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(since, fh.tell() - 4000))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(ANSI.sub("", text).strip().splitlines()[-lines:])
