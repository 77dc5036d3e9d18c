"""Sandbox levels: how a probe (or a notebook kernel) is started and what it is kept from.
One module per level (`process`, `bwrap`, `landlock`), the shared pieces beside them; this
package re-exports the public names so `from grader.sandbox import ...` keeps working."""
from .core import (GiB, HIDDEN_SITE_ENTRIES, NONE_WARNING, Limits, NoneSandbox, ProcessSandbox, SandboxRun,
                   build_site_view, choose_sandbox, probe_environment, python_executable, run_sandboxed,
                   sandbox_levels)

__all__ = ["GiB", "HIDDEN_SITE_ENTRIES", "NONE_WARNING", "Limits", "NoneSandbox", "ProcessSandbox", "SandboxRun",
           "build_site_view", "choose_sandbox", "probe_environment", "python_executable", "run_sandboxed",
           "sandbox_levels"]
