"""How much of grading one submission is the grader's own time.

For each configuration, side by side in one run:

* **student's computation**: the same handout calls the probes make (every task the rubric
  plans: toy losses, gradient checks, training on the dataset, ...), called on the reference
  solution in a plain Python process, one after the other, without the grader: no sandbox, no
  fork, no result files, no scoring, no notebook, no report. This is the floor.
* **grade, cold / warm**: wall time of `mlp-grader grade REFERENCE --out DIR --jobs 1 --force`
  as a TA runs it for one submission (a new process each time: interpreter start, dataset,
  reference outputs, probes, notebook, figures, report). Warm is the second run, which may reuse
  what the first one cached on disk (the reference's outputs, at levels that confine writes).
* **check**: wall time of the student's self-check (`mlp-grader check`, public checks only).

The ratio tracked is the grader's share, (grade - student) / grade.

    python bench/overhead.py                     # pset4 on digits, modular on its stand-in,
                                                 # pset4 on Fashion-MNIST when installed
    python bench/overhead.py --only pset4-digits --repeat 3

Timings on a shared machine are noisy: run it on an idle one, and compare the columns of one
run with each other rather than with another run.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.data import FASHION_DIR  # noqa: E402
from grader.grading.engine import GradeOptions, Grader, unique_tasks  # noqa: E402
from grader.submission import load_submission, make_working_copy  # noqa: E402

CONFIGS = {  # name: (assignment, dataset)
    "pset4-digits": ("pset4", "digits"),
    "modular-synthetic": ("modular", "synthetic-cifar"),
    "pset4-fashion-mnist": ("pset4", "fashion-mnist"),
}

# Run in a plain interpreter: call each planned task's probe function on the reference's
# working copy, in order, and print the seconds they took (the probe functions are the
# handout's calls; nothing of the grader's machinery runs around them).
PLAIN = r"""
import json, os, sys, time
import numpy as np
job = json.load(open(sys.argv[1]))
os.chdir(job["workdir"])
sys.path[:0] = [job["workdir"], job["probes"]]
import importlib
probe = importlib.import_module(job["probe"])
total = 0.0
for task in job["tasks"]:
    arrays = {}
    if task["inputs"]:
        with np.load(task["inputs"], allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    started = time.perf_counter()
    probe.TASKS[task["fn"]](task["params"], arrays, job["data_dir"])
    total += time.perf_counter() - started
print(json.dumps({"seconds": total}))
"""


def plain_seconds(assignment: str, dataset: str, work: Path) -> float:
    """The student's own computation: every task of the full rubric, on the reference."""
    with Grader(assignment, GradeOptions(dataset=dataset, execute="none")) as grader:
        reference = grader.course.reference(assignment)
        ctx = grader.context(load_submission(reference))  # plans may read the notebook's settings
        plans = {c.id: grader.kinds[c.kind].plan(c, ctx) for c in grader.rubric.checks()}
        tasks = [replace(t) for t in unique_tasks(plans)]
        workdir = make_working_copy(load_submission(reference), work / "plain", grader.provided_files())
        data_dir = ctx.dataset.export_for_probe(work / "data") if any(t.needs_data for t in tasks) else None
        specs = []
        for task in tasks:
            inputs = ""
            if task.arrays:
                inputs = str(work / f"{task.id}.npz")
                np.savez(inputs, **task.arrays)
            specs.append({"fn": task.fn, "params": task.params, "inputs": inputs})
        job = {"workdir": str(workdir), "probes": str(REPO / "grader" / "probes"), "probe": grader.rubric.probe,
               "data_dir": str(data_dir) if data_dir else None, "tasks": specs}
    (work / "plain.json").write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}  # as in the probes: one BLAS thread
    out = subprocess.run([sys.executable, "-c", PLAIN, str(work / "plain.json")], env=env, check=True,
                         capture_output=True, text=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def wall(cmd: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # check exits 1 when a public check fails
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def measure(name: str, repeat: int, sandbox: str | None, work: Path) -> dict:
    assignment, dataset = CONFIGS[name]
    reference = REPO / "examples" / "submissions" / f"{assignment}-reference"
    grader_cmd = [sys.executable, "-m", "grader"]
    grade = grader_cmd + ["grade", str(reference), "--out", str(work / "out"), "--jobs", "1", "--force",
                          "--dataset", dataset] + (["--sandbox", sandbox] if sandbox else [])
    plain = [plain_seconds(assignment, dataset, work / f"plain{i}") for i in range(repeat)]
    cold = wall(grade)  # may find the cache of an earlier run of this script: then it is warm too
    warm = [wall(grade) for _ in range(repeat)]
    check = [wall(grader_cmd + ["check", "."] + (["--sandbox", sandbox] if sandbox else []), cwd=reference)
             for _ in range(repeat)]
    return {"name": name, "student": statistics.median(plain), "cold": cold, "warm": statistics.median(warm),
            "check": statistics.median(check)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(CONFIGS), help="configurations (default: all available)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per column; the median is shown (default: %(default)s)")
    parser.add_argument("--sandbox", default=None, help="default: the strongest level available")
    args = parser.parse_args(argv)
    names = args.only or [n for n in CONFIGS if n != "pset4-fashion-mnist"
                          or (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()]
    rows = []
    for name in names:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="mlp-grader-overhead-") as tmp:
            rows.append(measure(name, args.repeat, args.sandbox, Path(tmp)))
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; medians of {args.repeat}\n")
    print("| configuration | student's computation (s) | grade, cold (s) | grade, warm (s) | grader's share, warm "
          "| grader overhead, warm (s) | check (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        overhead = r["warm"] - r["student"]
        print(f"| {r['name']} | {r['student']:.2f} | {r['cold']:.2f} | {r['warm']:.2f} | "
              f"{100 * overhead / r['warm']:.0f} % | {overhead:.2f} | {r['check']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
