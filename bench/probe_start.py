"""What a sandbox level costs per probe start: the same one-task probe (import a correct
`mlp.py`, call nothing heavy) started again and again at each level, the levels interleaved in one
run so that the machine's load falls on both alike; prints the median, the quartiles and the
median difference against `process`.

    python bench/probe_start.py                      # landlock and process, 15 rounds each
    python bench/probe_start.py --levels bwrap landlock process --rounds 20

Under load the end-to-end difference drowns in the spread of an interpreter start; so it also
times the landlock level's own steps alone (median of the same number of rounds): writing the
policy in the grader, and in a fresh interpreter the runner's restriction and a task's layer.

As root, the landlock and bwrap levels need the Python installation to be reachable by the
sandbox uid (`mlp-grader doctor` says what to change).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.kinds.tasks import Task  # noqa: E402
from grader.grading.probe import run_probe
from grader.probes import landlock_rules  # noqa: E402
from grader.sandbox import build_site_view, choose_sandbox  # noqa: E402

# In a fresh interpreter: restrict with the policy (argv[1]), then add a task's layer; in ms.
STEPS = """
import json, sys, time
sys.path.insert(0, sys.argv[2])
import landlock_rules
policy = json.load(open(sys.argv[1]))
t0 = time.perf_counter()
landlock_rules.restrict(policy)
t1 = time.perf_counter()
landlock_rules.restrict(policy["task_layer"])
t2 = time.perf_counter()
print(json.dumps([(t1 - t0) * 1000, (t2 - t1) * 1000]))
"""

CORRECT = REPO / "tests" / "fixtures" / "hostile" / "_base" / "mlp_base.py"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", nargs="+", default=["landlock", "process"])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    levels = {name: choose_sandbox(name) for name in args.levels}
    times: dict[str, list[float]] = {name: [] for name in levels}
    with tempfile.TemporaryDirectory(prefix="bench-probe-start-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        shutil.copy(CORRECT, work / "mlp.py")
        task = [Task("import", "import_module", timeout=60)]
        for name, sandbox in levels.items():  # a first start each, not counted (page cache)
            run_probe(work, "pset4", task, sandbox)
        for _ in range(args.rounds):
            for name, sandbox in levels.items():
                started = time.perf_counter()
                out = run_probe(work, "pset4", task, sandbox)["import"]
                times[name].append(time.perf_counter() - started)
                if not out.ok:
                    print(f"{name}: the probe failed: {out.reason()}", file=sys.stderr)
                    return 1
    base = statistics.median(times["process"]) if "process" in times else None
    print(f"{'level':10s} {'median':>8s} {'q1':>8s} {'q3':>8s} {'vs process':>11s}   ({args.rounds} starts each)")
    for name, values in times.items():
        q1, _, q3 = statistics.quantiles(values, n=4)
        med = statistics.median(values)
        diff = f"{(med - base) * 1000:+8.0f} ms" if base is not None and name != "process" else ""
        print(f"{name:10s} {med * 1000:6.0f} ms {q1 * 1000:5.0f} ms {q3 * 1000:5.0f} ms {diff:>11s}")
    if "landlock" in levels:
        _landlock_steps(levels["landlock"], args.rounds)
    return 0


def _landlock_steps(sandbox, rounds: int) -> None:
    import json
    import subprocess

    policy_ms, restrict_ms, layer_ms = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-landlock-") as tmp:
        jobdir = Path(tmp)
        for sub in ("out", "home"):
            (jobdir / sub).mkdir()
        build_site_view(jobdir / "site")
        for _ in range(rounds):
            started = time.perf_counter()
            policy = sandbox.policy(jobdir, [jobdir], [jobdir / "out", jobdir / "home"])
            policy_ms.append((time.perf_counter() - started) * 1000)
            (jobdir / "policy.json").write_text(json.dumps(policy))
            out = subprocess.run([sys.executable, "-I", "-S", "-c", STEPS, str(jobdir / "policy.json"),
                                  str(Path(landlock_rules.__file__).parent)], capture_output=True, text=True,
                                 check=True).stdout
            first, layer = json.loads(out)
            restrict_ms.append(first)
            layer_ms.append(layer)
    rules = sum(len(landlock_rules._tree_without(r, policy["hidden"])) for r in policy["read"])
    print(f"landlock steps (median of {rounds}): policy in the grader {statistics.median(policy_ms):.1f} ms, "
          f"runner's restriction {statistics.median(restrict_ms):.1f} ms ({rules} read rules), "
          f"a task's layer {statistics.median(layer_ms):.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
