"""Sandbox levels: how a probe (or a notebook kernel) is started and what it is kept from.

One module per level, side by side and not importing each other: `bwrap` (namespaces, a
read-only minimal filesystem view), `landlock` (no namespaces: holds as root, in Docker and on
Gradescope), `process` and `none`; the shared pieces in `core` (limits, environment, import path,
`run_sandboxed`) and `unprivileged` (the probe's uid when the grader is root); `levels` chooses.
This package re-exports the public names: the rest of the grader imports `grader.sandbox` only.
"""
from grader.sandbox.core import (HIDDEN_SITE_ENTRIES, GiB, Limits, SandboxRun, build_site_view, probe_environment,
                                 python_executable, run_sandboxed, seed_matplotlib_cache)
from grader.sandbox.levels import choose_sandbox, doctor, sandbox_levels
from grader.sandbox.process import NONE_WARNING, NoneSandbox, ProcessSandbox

__all__ = ["GiB", "HIDDEN_SITE_ENTRIES", "NONE_WARNING", "Limits", "NoneSandbox", "ProcessSandbox", "SandboxRun",
           "build_site_view", "choose_sandbox", "doctor", "probe_environment", "python_executable",
           "run_sandboxed", "sandbox_levels", "seed_matplotlib_cache"]
