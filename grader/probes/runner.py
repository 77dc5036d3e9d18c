"""Probe runner: the program the sandbox starts. Standard library and NumPy only.

It never imports student code itself. It preloads the heavy modules once, then forks one
child per task; the student's module is imported and called only inside that child, so a
task that crashes, loops, exits or patches things costs that task and nothing else, and every
task starts from the same clean state (a fork costs milliseconds; a fresh interpreter with
NumPy and matplotlib costs most of a second).

Protocol with the trusted parent: the job folder holds `job.json` (settings and the task
list) and `inputs/<task>.npz`; for every task the runner writes to its stdout one JSON header
line followed by `payload` bytes: the task's result as an `.npz` archive (no pickle). The
student's child has its stdout and stderr redirected to a capped log file and never holds the
runner's stdout; the runner is not dumpable, so a task process of the same uid cannot reopen
that stdout through /proc/<runner>/fd either (the parent also rejects any stream that is not
exactly its messages in order).

Nothing a task starts outlives the task: the runner is the "child subreaper" of everything
below it (a process that calls setsid() or double-forks still ends up as the runner's child),
and after each task, and when the parent sends SIGTERM, it kills every descendant. A task
process gets SIGKILL when the runner dies (parent-death signal). The runner also watches the
size of the folders a task may write (working copy, home, output) and stops a task that
writes more than the job allows.

Where `fork` does not exist (Windows), or when the job asks for it (`runner = "spawn"`), each
task runs in a fresh interpreter instead (`runner.py JOBDIR --task ID`): same job folder, same
messages on the runner's stdout, the same rlimits where the `resource` module exists, its own
session (POSIX) or process group (Windows), and the same wall clock. It costs an interpreter
start (NumPy, matplotlib) per task, which the task's limits allow for (SPAWN_STARTUP).

Usage: python -I -S runner.py JOBDIR [--task ID]
"""
import ctypes
import gc
import importlib
import io
import json
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import time
import traceback

try:
    import resource
except ImportError:  # Windows: no rlimits; the wall clock per task still holds
    resource = None

TAIL_CHARS = 2000
# Added to a task's wall clock and CPU limit in spawn mode: its own interpreter imports NumPy
# (and the student's matplotlib) before the task starts; in fork mode the runner did that once.
SPAWN_STARTUP = 5.0
DISK_CHECK_SECONDS = 0.2
# prctl(2) options (Linux)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36


def _prctl(option, value):
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def runner_mode(job):
    """fork where the platform has it, unless the job asks for spawn."""
    mode = job.get("runner") or ("fork" if hasattr(os, "fork") else "spawn")
    return "spawn" if not hasattr(os, "fork") else mode


def _enter_landlock(jobdir, first_layer=True):
    """At the landlock level: restrict this process (and so every task) with the policy the
    grader wrote, before anything else is read or imported. Returns the policy's second layer
    (for each task: no /proc, signals only within the task), or None at the other levels. A
    kernel that refuses the policy raises: better no result than student code unrestricted.
    `first_layer=False`: a spawned task, which inherited the runner's domain across exec."""
    folder = os.path.join(jobdir, "landlock")
    if not os.path.isdir(folder):
        return None
    sys.path.insert(0, folder)
    try:
        import landlock_rules
    finally:
        sys.path.remove(folder)
    with open(os.path.join(folder, "policy.json"), encoding="utf-8") as fh:
        policy = json.load(fh)
    if first_layer:
        landlock_rules.restrict(policy)
    layer = policy.get("task_layer")
    return (lambda: landlock_rules.restrict(layer)) if layer else None


def main(jobdir):
    task_layer = _enter_landlock(jobdir)
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGTERM, _on_term)
    job = _load_job(jobdir)
    _fill(job.get("workdir_source"), job["workdir"])  # a private (tmpfs) working copy starts empty
    _fill(job.get("home_seed"), os.environ.get("HOME"))
    spawn = runner_mode(job) == "spawn"
    if spawn:
        probe = None  # imported by each task's own interpreter, never by the runner
    else:
        probe = _import_probe(job, jobdir, preload=True)
        gc.freeze()  # the forked tasks' collections then skip (and do not copy) the runner's objects
    out_root = os.path.join(jobdir, "out")
    scratch = [job["workdir"], os.environ.get("HOME", "")]
    baseline = _snapshot(scratch)
    job["task_layer"] = task_layer
    for task in job["tasks"]:
        try:
            if spawn:
                header, payload = run_task_spawned(job, jobdir, task, out_root)
            else:
                header, payload = run_task(job, probe, task, out_root)
        except BlockingIOError:  # the uid's process limit stayed full for PATIENCE: not this code's doing
            header, payload = {"task": task["id"], "status": "error", "detail": MACHINE_BUSY, "error": "",
                               "log": "", "seconds": 0.0}, b""
            task = dict(task, gate=True)  # nothing after it could start either
        _remove_new(scratch, baseline)  # every task starts from the same files, within the disk cap
        header["payload"] = len(payload)
        sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + payload)
        sys.stdout.buffer.flush()
        if task.get("gate") and header["status"] != "ok":
            break  # e.g. the module does not import: every later task would fail the same way
    _kill_descendants()


def _load_job(jobdir):
    with open(os.path.join(jobdir, "job.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _import_probe(job, jobdir, preload):
    for path in job["site_dirs"]:
        site.addsitedir(path)
    sys.path.insert(0, os.path.join(jobdir, "probe"))
    for name in job.get("preload", []) if preload else ():
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional module is the student's import error to report
            pass
    return importlib.import_module(job["probe"])


def _fill(source, target):
    """Copy `source` into `target` when target is empty (or missing) and source is not."""
    if not source or not target or not os.path.isdir(source) or not os.listdir(source):
        return
    if os.path.isdir(target) and os.listdir(target):
        return
    os.makedirs(target, exist_ok=True)
    # Entry by entry: the target's own mode and times stay (in bwrap's closed-home mode it is a
    # tmpfs root owns, which the probe's uid may write but not chmod)
    for entry in os.scandir(source):
        dest = os.path.join(target, entry.name)
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, dest, symlinks=True)
        else:
            shutil.copy2(entry.path, dest, follow_symlinks=False)


def _snapshot(folders):
    found = set()
    for folder in folders:
        for root, dirs, files in os.walk(folder) if folder else ():
            found.update(os.path.join(root, name) for name in dirs + files)
    return found


def _remove_new(folders, baseline):
    """Remove what a task created in the working copy and home (files it changed stay changed)."""
    for folder in folders:
        for root, dirs, files in os.walk(folder) if folder else ():
            for name in list(dirs) + files:
                path = os.path.join(root, name)
                if path in baseline:
                    continue
                if name in dirs and not os.path.islink(path):
                    dirs.remove(name)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass


def _on_term(signum, frame):
    _kill_descendants()
    os._exit(128 + signum)


def run_task(job, probe, task, out_root):
    out = os.path.join(out_root, task["id"])
    _remove_tree(out)  # nothing a previous task left here may pass for this task's result
    os.makedirs(out)
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = patiently(os.fork, job.get("patience"))
    if pid == 0:
        _child(job, probe, task, out)  # never returns
    status, detail = _wait(pid, task["timeout"], started, _disk_watch(job, out_root))
    seconds = time.monotonic() - started
    _kill_group(pid)  # anything the task left running in its group dies with it
    _kill_descendants()  # and anything that left the group (setsid, double fork)
    return _collect(job, task, out, status, detail, seconds)


PATIENCE = 30.0  # seconds: longer than any task's own time limit (errors.py says it in words)
# The detail of a task the runner could not start after PATIENCE; the grader then grades nothing
# of the submission and says why (grading/probe.py, errors.MachineBusy)
MACHINE_BUSY = "the runner could not start the task: the process limit stayed full"


def patiently(start, patience=None):
    """start() (a fork, a process start), waiting out EAGAIN. Where every probe runs as one uid
    (a container, a TA who is not root), the per-uid process limit is shared: another
    submission's fork loop can exhaust it for a while, until its task ends and its runner kills
    what it started. That is no fault of this submission, so it waits instead of failing. (The
    grader's process start uses it too: sandbox/core.py.)"""
    deadline = time.monotonic() + (PATIENCE if patience is None else patience)
    pause = 0.05
    while True:
        try:
            return start()
        except BlockingIOError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _collect(job, task, out, status, detail, seconds):
    """The task's header and payload from what it left in its output folder."""
    result_path = os.path.join(out, "result.npz")
    payload = b""
    if status == "ok":
        if os.path.isfile(result_path) and os.path.getsize(result_path) <= job["max_payload"]:
            with open(result_path, "rb") as fh:
                payload = fh.read()
        elif os.path.isfile(result_path):
            status, detail = "error", "the result is larger than the grader accepts"
        else:
            status = "error"
            detail = ("the process ended (exit status 0) before returning a result; "
                      "does the code call os._exit() or exit the interpreter?")
    header = {
        "task": task["id"],
        "status": status,
        "detail": detail,
        "error": _tail(os.path.join(out, "error.txt")),
        "log": _tail(os.path.join(out, "log.txt")),
        "seconds": round(seconds, 4),
    }
    _remove_tree(out)
    return header, payload


def run_task_spawned(job, jobdir, task, out_root):
    """run_task without fork: the task runs in a fresh interpreter (`--task`), whose stdout and
    stderr go to the task's log file; the same header and payload come back."""
    out = os.path.join(out_root, task["id"])
    _remove_tree(out)
    os.makedirs(out)
    started = time.monotonic()
    argv = [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__), jobdir, "--task", task["id"]]
    extra = ({"start_new_session": True} if os.name == "posix"
             else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
    with open(os.path.join(out, "log.txt"), "wb") as log:
        proc = patiently(lambda: subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                                  close_fds=True, cwd=job["workdir"], **extra), job.get("patience"))
    status, detail = _wait_spawned(proc, task["timeout"] + SPAWN_STARTUP, started, _disk_watch(job, out_root))
    seconds = time.monotonic() - started
    _kill_group(proc.pid) if os.name == "posix" else _kill_quietly(proc)
    _kill_descendants()
    return _collect(job, task, out, status, detail, seconds)


def _wait_spawned(proc, timeout, started, disk_over):
    def exited():
        code = proc.poll()
        return None if code is None else _describe_returncode(code)

    return _watch(exited, lambda: _stop(proc), timeout, timeout - SPAWN_STARTUP, started, disk_over, proc.pid)


def _stop(proc):
    _kill_group(proc.pid) if os.name == "posix" else _kill_quietly(proc)
    proc.wait()


def _kill_quietly(proc):
    try:
        proc.kill()
    except OSError:
        pass


def task_main(jobdir, task_id):
    """A task in its own interpreter (spawn mode): stdout and stderr are already the log file."""
    job = _load_job(jobdir)
    task = next(t for t in job["tasks"] if t["id"] == task_id)
    out = os.path.join(jobdir, "out", task_id)
    code = 1
    try:
        _prctl(PR_SET_PDEATHSIG, getattr(signal, "SIGKILL", 9))  # Linux only; no SIGKILL on Windows
        job["task_layer"] = _enter_landlock(jobdir, first_layer=False)
        _task_limits(job, dict(task, cpu=int(task["cpu"] + SPAWN_STARTUP)))
        probe = _import_probe(job, jobdir, preload=False)
        code = _run_in_child(job, probe, task, out)
    except BaseException:
        _write_error(out)
    finally:
        _flush()
        os._exit(code)


def _task_limits(job, task):
    if hasattr(signal, "SIGXFSZ"):  # a huge print then fails with an error instead of killing the task
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    if job.get("rlimits", True) and resource is not None:
        _limit(resource.RLIMIT_CPU, int(task["cpu"]))
        _limit(resource.RLIMIT_AS, int(task["memory"]))
        _limit(resource.RLIMIT_FSIZE, int(job["max_file"]))
        _limit(resource.RLIMIT_CORE, 0)
    if job.get("task_layer"):  # landlock: no /proc, signals only within the task
        job["task_layer"]()


def _child(job, probe, task, out):
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the student's code may undo it; see _kill_descendants
        os.setpgid(0, 0)
        log = os.open(os.path.join(out, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.closerange(3, min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 16))
        _task_limits(job, task)
        code = _run_in_child(job, probe, task, out)
    except BaseException:
        _write_error(out)
    finally:
        _flush()
        os._exit(code)


def _write_error(out):
    try:
        with open(os.path.join(out, "error.txt"), "w", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
    except BaseException:
        pass


def _flush():
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass


def _run_in_child(job, probe, task, out):
    """The task itself, in the process that may run student code. 0 when it returned a result;
    1 when it raised (SystemExit too: a student's sys.exit() is an error of that task)."""
    try:
        workdir = job["workdir"]
        os.chdir(workdir)
        sys.path.insert(0, workdir)
        import numpy as np

        arrays = {}
        if task.get("inputs"):
            with np.load(task["inputs"], allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        fn = probe.TASKS[task["fn"]]
        result = fn(task["params"], arrays, job.get("data_dir"))
        _save_result(np, result, os.path.join(out, "result.npz"), int(job["max_payload"]))
        return 0
    except BaseException:  # SystemExit too
        _write_error(out)
        return 1


def _save_result(np, result, path, max_bytes):
    arrays = {}
    for name, value in result.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name}: expected numbers, got {type(value).__name__}") from None
        arrays[name] = arr
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    if buf.tell() > max_bytes:
        raise ValueError(f"the returned arrays take {buf.tell()} bytes; the grader accepts at most {max_bytes}")
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def _wait(pid, timeout, started, disk_over):
    def exited():
        done, status = os.waitpid(pid, os.WNOHANG)
        return _describe_exit(status) if done else None

    def stop():
        _kill_group(pid)
        os.waitpid(pid, 0)

    return _watch(exited, stop, timeout, timeout, started, disk_over, pid)


def _watch(exited, stop, timeout, shown_timeout, started, disk_over, pid):
    """Wait for the task until `exited()` describes its end, its wall clock runs out or its folders
    grow past the disk cap (`stop()` ends it then). Returns (status, detail)."""
    pidfd = _pidfd(pid)
    try:
        delay = 0.0005
        next_check = started + DISK_CHECK_SECONDS
        while True:
            result = exited()
            if result is not None:
                problem = disk_over()
                return ("error", problem) if problem else result
            now = time.monotonic()
            if now - started > timeout:
                stop()
                return "timeout", f"did not finish within {shown_timeout:g} s (wall clock)"
            if now >= next_check:
                next_check = now + DISK_CHECK_SECONDS
                problem = disk_over()
                if problem:
                    stop()
                    return "error", problem
            if pidfd is not None:  # wakes the moment the task ends (most tasks take milliseconds)
                select.select([pidfd], [], [], max(0.0, min(next_check, started + timeout) - now) + 0.001)
            else:  # polling: up to 20 ms late per task
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _pidfd(pid):
    """A descriptor that becomes readable when `pid` ends (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _disk_watch(job, out_root):
    """A function saying why the task's folders are over the job's disk limit, or ""."""
    limit, max_files = job.get("disk_bytes"), job.get("max_files", 10000)
    folders = [job["workdir"], os.environ.get("HOME", ""), out_root]
    if not limit or not job.get("rlimits", True):
        return lambda: ""

    def over():
        used, count = 0, 0
        for folder in folders:
            for root, dirs, files in os.walk(folder) if folder else ():
                count += len(dirs) + len(files)
                for name in files:
                    try:
                        used += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
                if count > max_files:
                    return f"created more than {max_files} files (the working copy, home and output folders)"
        if used > limit:
            return (f"wrote more than {limit // 1024**2} MB to disk (the working copy, home and output "
                    f"folders hold {used // 1024**2} MB)")
        return ""

    return over


def _describe_exit(status):
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return ("ok", "") if code == 0 else ("error", f"exit status {code}")
    return _describe_signal(os.WTERMSIG(status))


def _describe_returncode(code):
    """subprocess's returncode: negative for a signal (POSIX)."""
    if code >= 0:
        return ("ok", "") if code == 0 else ("error", f"exit status {code}")
    return _describe_signal(-code)


def _describe_signal(sig):
    if sig == signal.SIGXCPU:
        return "timeout", "used up its CPU-time limit"
    if sig == signal.SIGKILL:
        return "error", "killed (SIGKILL): usually the memory limit or an out-of-memory kill"
    return "error", f"killed by signal {signal.Signals(sig).name}"


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):  # AttributeError: no killpg (Windows)
        pass


def _kill_descendants():
    """SIGKILL to every process below the runner, until there is none (bounded). As subreaper
    the runner inherits the orphans of killed processes, so the next round finds them."""
    me = os.getpid()
    for _ in range(200):
        victims = _descendants(me)
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.002)
        _reap()
    _reap()


def _descendants(root):
    parents = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []  # no /proc (macOS): the task's process group is all that is killed
    for entry in entries:
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], {root}
    while frontier:
        kids = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found += kids
        frontier = kids
    return found


def _reap():
    if not hasattr(os, "WNOHANG"):
        return  # Windows: no zombies to collect
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _limit(which, value):
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))


def _tail(path):
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_CHARS))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _remove_tree(path):
    if not os.path.lexists(path):
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            os.unlink(full) if os.path.islink(full) else os.rmdir(full)
    os.rmdir(path)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--task":
        task_main(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1])
