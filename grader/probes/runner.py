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
runner's stdout, so it cannot forge a message.

Usage: python -I -S runner.py JOBDIR
"""
import importlib
import io
import json
import os
import resource
import signal
import site
import sys
import time
import traceback

TAIL_CHARS = 2000


def main(jobdir):
    with open(os.path.join(jobdir, "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    for path in job["site_dirs"]:
        site.addsitedir(path)
    sys.path.insert(0, os.path.join(jobdir, "probe"))
    for name in job.get("preload", []):
        try:
            importlib.import_module(name)
        except Exception:  # a missing optional module is the student's import error to report
            pass
    probe = importlib.import_module(job["probe"])
    out_root = os.path.join(jobdir, "out")
    for task in job["tasks"]:
        header, payload = run_task(job, probe, task, out_root)
        header["payload"] = len(payload)
        sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + payload)
        sys.stdout.buffer.flush()
        if task.get("gate") and header["status"] != "ok":
            break  # e.g. the module does not import: every later task would fail the same way


def run_task(job, probe, task, out_root):
    out = os.path.join(out_root, task["id"])
    _remove_tree(out)  # nothing a previous task left here may pass for this task's result
    os.makedirs(out)
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(job, probe, task, out)  # never returns
    status, detail = _wait(pid, task["timeout"], started)
    seconds = time.monotonic() - started
    _kill_group(pid)  # anything the task left running in its group dies with it
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


def _child(job, probe, task, out):
    code = 1
    try:
        os.setpgid(0, 0)
        log = os.open(os.path.join(out, "log.txt"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.closerange(3, 1024)
        # A huge print then fails with an error instead of killing the task silently.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        _limit(resource.RLIMIT_CPU, int(task["cpu"]))
        _limit(resource.RLIMIT_AS, int(task["memory"]))
        _limit(resource.RLIMIT_FSIZE, int(job["max_file"]))
        _limit(resource.RLIMIT_CORE, 0)
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
        _save_result(np, result, os.path.join(out, "result.npz"))
        code = 0
    except BaseException:  # SystemExit too: a student's sys.exit() is an error of that task
        try:
            with open(os.path.join(out, "error.txt"), "w", encoding="utf-8") as fh:
                fh.write(traceback.format_exc())
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def _save_result(np, result, path):
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
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())


def _wait(pid, timeout, started):
    delay = 0.0005
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return _describe_exit(status)
        if time.monotonic() - started > timeout:
            _kill_group(pid)
            os.waitpid(pid, 0)
            return "timeout", f"did not finish within {timeout:g} s (wall clock)"
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _describe_exit(status):
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return ("ok", "") if code == 0 else ("error", f"exit status {code}")
    sig = os.WTERMSIG(status)
    if sig == signal.SIGXCPU:
        return "timeout", "used up its CPU-time limit"
    if sig == signal.SIGKILL:
        return "error", "killed (SIGKILL): usually the memory limit or an out-of-memory kill"
    return "error", f"killed by signal {signal.Signals(sig).name}"


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
    main(sys.argv[1])
