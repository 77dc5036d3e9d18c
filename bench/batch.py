"""Batch benchmark: grade K copies of the pset4 reference on MNIST-sized data with 1 and with N
workers, and print side by side the time per submission, the student's own code inside it
(the probe tasks: training two 50,000x784 networks; and the notebook step when the grader runs
the student's notebook), the grader's overhead (everything else: probe start-up, copying,
scoring, figures, reports) and the speedup.

    python bench/batch.py                      # K=4, N=cores, Fashion-MNIST when installed
    python bench/batch.py --copies 8 --jobs 2 --dataset synthetic
    python bench/batch.py --copies 8 --jobs 2 --dataset digits   # the offline stand-in

Data: Debian's `dataset-fashion-mnist` (real 70,000x784 images, `apt-get install
dataset-fashion-mnist`), else synthetic data of the same shape written as a temporary
mnist.npz (the timings do not depend on the pixels; the accuracies do, and are not the point).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.api import grade_folder
from grader.batching.folder import BatchSummary  # noqa: E402
from grader.batching.pool import default_jobs  # noqa: E402
from grader.data import FASHION_DIR  # noqa: E402
from grader.grading.engine import GradeOptions  # noqa: E402


def synthetic_mnist(folder: Path, seed: int = 0) -> Path:
    """70,000 images of 784 pixels in 0..255 with ten learnable classes: a stand-in of MNIST's shape."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=70000)
    centres = rng.integers(0, 256, size=(10, 784))
    X = np.clip(centres[y] + rng.normal(0, 60, size=(70000, 784)), 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "mnist.npz", X=X, y=y)
    return folder


def run(copies: int, jobs: int, dataset: str, sandbox: str | None, work: Path) -> list[tuple[int, BatchSummary]]:
    submissions = work / "class"
    for i in range(copies):
        shutil.copytree(REPO / "reference" / "pset4", submissions / f"student{i:03d}")
    if dataset == "synthetic":
        options = GradeOptions(sandbox=sandbox, dataset="mnist", data_dir=synthetic_mnist(work / "data"))
    else:
        options = GradeOptions(sandbox=sandbox, dataset=dataset)
    rows = []
    for n in sorted({1, jobs}):
        print(f"grading {copies} copies with {n} worker(s)...", file=sys.stderr, flush=True)
        summary = grade_folder(submissions, work / f"out-{n}", "pset4", options, jobs=n, force=True)
        # other processes on the machine slow N workers down more than one: say how busy it was
        print(f"  {n} worker(s): {summary.seconds:.0f} s; load average over the last 5 min "
              f"{os.getloadavg()[1]:.2f} on {os.cpu_count()} cores", file=sys.stderr, flush=True)
        failed = [r.submission for r in summary.results if r.error or r.autograded_points < 40]
        if failed:
            print(f"warning: low scores for {failed}: the timings still count", file=sys.stderr)
        rows.append((n, summary))
    return rows


def table(rows: list[tuple[int, BatchSummary]], copies: int) -> str:
    base = rows[0][1]
    base_grading = base.seconds - base.prepare_seconds
    lines = ["| workers | batch wall (s) | reference + data, once (s) | per submission (s) | student code in probes (s) "
             "| notebook beside the probes (s) | notebook step after them (s) | other grader overhead (s) "
             "| grader's share | submissions/min | speedup |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, s in rows:
        mean = lambda key: statistics.fmean(r.timings.get(key, 0.0) for r in s.results)  # noqa: E731
        per, code, notebook = mean("total"), mean("student_code"), mean("notebook")
        grading = s.seconds - s.prepare_seconds
        lines.append(f"| {n} | {s.seconds:.1f} | {s.prepare_seconds:.1f} | {per:.1f} | {code:.1f} "
                     f"| {mean('notebook_execution'):.1f} | {notebook:.1f} | {per - code - notebook:.1f} "
                     f"| {100 * (per - code) / per:.1f} % | {60 * copies / grading:.2f} | {base_grading / grading:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=4, help="K: copies of the reference (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="N workers (default: the cores, %(default)s)")
    parser.add_argument("--dataset", choices=("auto", "fashion-mnist", "synthetic", "digits"), default="auto",
                        help="auto: Fashion-MNIST when installed, else synthetic; digits: the small offline "
                             "stand-in (the grader's share of a small submission)")
    parser.add_argument("--sandbox", default=None, help="default: the strongest level available")
    args = parser.parse_args(argv)
    dataset = args.dataset
    if dataset == "auto":
        dataset = "fashion-mnist" if (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file() else "synthetic"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlp-grader-bench-") as tmp:
        rows = run(args.copies, args.jobs, dataset, args.sandbox, Path(tmp))
    r = rows[0][1].results[0]
    print(f"pset4 reference x {args.copies}, dataset {r.dataset}, sandbox {r.sandbox}; "
          f"{time.monotonic() - started:.0f} s in all\n")
    print(table(rows, args.copies))
    print("\nper submission: Result.timings['total'] (mean); student code: the probe tasks' own seconds "
          "(timings['student_code']); the student's notebook is executed in the sandbox while the probes run "
          "(its wall time: timings['notebook_execution'], not part of the submission's wall time, though its kernel "
          "uses a core meanwhile); notebook step after them: timings['notebook'] (the wait for it, and its grading); "
          "other overhead: the rest (probe start-up, copies, scoring, figures, report); grader's share: "
          "(per submission - student code) / per submission. Speedup: grading wall time (batch minus the once-per-batch reference run and data "
          "export) with 1 worker over N workers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
