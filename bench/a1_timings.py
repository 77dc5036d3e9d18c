"""a1 timings: where one submission's grading time goes (the student's probe, the reference
follow-up probe that evaluates the fits, the notebook), and the follow-up probe's start-up with
NumPy only vs NumPy + matplotlib preloaded, measured side by side in one run (median of N).

    python bench/a1_timings.py                 # --sandbox process, 3 repeats
    python bench/a1_timings.py --sandbox bwrap --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from grader.grading.engine import GradeOptions, Grader
from grader.kinds.tasks import Task
from grader.grading.probe import run_probe
from grader.sandbox import choose_sandbox
from grader.submission import load_submission, make_working_copy

REPO = Path(__file__).resolve().parent.parent
SUBMISSIONS = ["reference/a1", "tests/fixtures/a1/correct_loops", "student_template/a1"]


def grading(sandbox: str, repeats: int) -> None:
    for execute in ("none", "light"):
        with Grader("a1", GradeOptions(sandbox=sandbox, execute=execute)) as grader:
            started = time.monotonic()
            grader.prepare()
            print(f"execute={execute} sandbox={sandbox}: reference outputs once per run "
                  f"{time.monotonic() - started:.2f} s")
            for rel in SUBMISSIONS:
                runs = [grader.grade(REPO / rel).timings for _ in range(repeats)]
                med = lambda key: statistics.median(r.get(key, 0.0) for r in runs)  # noqa: E731
                print(f"  {rel:34s} total {med('total'):5.2f} s   student tasks {med('student_code'):5.2f} s   "
                      f"reference follow-up {med('reference_followups'):5.2f} s   notebook {med('notebook'):5.2f} s")


def preload(sandbox: str, repeats: int) -> None:
    level = choose_sandbox(sandbox)
    task = Task(id="evaluate", fn="call", params={"module": "a1", "function": "forward", "args": ["x", "t"],
                                                   "returns": 1, "init": []},
                arrays={"in_x": np.arange(13.0), "in_t": np.ones(13)})
    times: dict[str, list[float]] = {"numpy + matplotlib.pyplot": [], "numpy": []}
    for _ in range(repeats):  # alternate, so that a change in the machine's load hits both
        for name, modules in (("numpy + matplotlib.pyplot", ("numpy", "matplotlib.pyplot")), ("numpy", ("numpy",))):
            with tempfile.TemporaryDirectory() as tmp:
                work = make_working_copy(load_submission(REPO / "reference" / "a1"), Path(tmp) / "w", {})
                started = time.monotonic()
                out = run_probe(work, "generic", [task], level, preload=modules)
                times[name].append(time.monotonic() - started)
                assert out["evaluate"].ok, out["evaluate"].reason()
    for name, values in times.items():
        print(f"follow-up probe, preload {name:26s} median {statistics.median(values):.2f} s "
              f"({', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preload(args.sandbox, max(args.repeats, 3))
    grading(args.sandbox, args.repeats)


if __name__ == "__main__":
    main()
