"""Cluster benchmark: the same batch (K copies of the pset4 reference) graded by the local pool
of N workers and by a Dask LocalCluster of N single-threaded workers, side by side in one run,
and the per-submission overhead Dask adds.

    python bench/cluster.py                        # K=6, N=2, digits, strongest sandbox
    python bench/cluster.py --copies 8 --jobs 2 --sandbox process

What is compared: the batch's wall time minus its one-off costs (local pool: the dataset export
and reference run in the parent; Dask: starting the LocalCluster, and each worker preparing its
own grader, in parallel, measured as the longest), then per submission
(grading wall x N / K) for both. The difference, as a share of a submission's grading time, is
the overhead Dask adds per submission (sending the files, the task round trip, the result and
figures coming back). The per-check points of both runs are compared too: they must be equal.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.api import BatchSummary, grade_folder  # noqa: E402
from grader.cluster_config import ClusterSpec  # noqa: E402
from grader.engine import GradeOptions  # noqa: E402


def points(summary: BatchSummary) -> dict[str, list]:
    return {r.submission: [(c.id, c.points, c.status) for c in r.checks()] for r in summary.results}


def run(copies: int, jobs: int, dataset: str, sandbox: str | None, work: Path) -> list[tuple[str, BatchSummary]]:
    submissions = work / "class"
    for i in range(copies):
        shutil.copytree(REPO / "reference" / "pset4", submissions / f"student{i:03d}")
    options = GradeOptions(sandbox=sandbox, dataset=dataset)
    rows = []
    for label, cluster in (("local pool", None), ("Dask LocalCluster", ClusterSpec("local", workers=jobs))):
        print(f"grading {copies} copies with the {label} of {jobs}...", file=sys.stderr, flush=True)
        summary = grade_folder(submissions, work / f"out-{len(rows)}", "pset4", options, jobs=jobs, force=True,
                               cluster=cluster)
        print(f"  {label}: {summary.seconds:.0f} s; load average over the last 5 min {os.getloadavg()[1]:.2f} "
              f"on {os.cpu_count()} cores", file=sys.stderr, flush=True)
        rows.append((label, summary))
    if points(rows[0][1]) != points(rows[1][1]):
        raise SystemExit("the two runs gave different points: see the result.json files")
    return rows


def table(rows: list[tuple[str, BatchSummary]], copies: int) -> tuple[str, float]:
    lines = ["| backend | workers | batch wall (s) | cluster start (s) | reference + data (s) | grading wall (s) "
             "| wall per submission x workers (s) | grading time per submission (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    per = []
    for label, s in rows:
        grading = s.seconds - s.cluster_seconds - s.prepare_seconds
        per.append(grading * s.jobs / copies)
        mean = statistics.fmean(r.timings.get("total", 0.0) for r in s.results)
        lines.append(f"| {label} | {s.jobs} | {s.seconds:.1f} | {s.cluster_seconds:.1f} | {s.prepare_seconds:.1f} "
                     f"| {grading:.1f} | {per[-1]:.2f} | {mean:.2f} |")
    overhead = (per[1] - per[0]) / per[0]
    return "\n".join(lines), overhead


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=6, help="K: copies of the reference (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="N workers in both backends (default: %(default)s)")
    parser.add_argument("--dataset", default="digits", help="default: %(default)s (the offline stand-in)")
    parser.add_argument("--sandbox", default=None, help="default: the strongest level available")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlp-grader-bench-") as tmp:
        rows = run(args.copies, args.jobs, args.dataset, args.sandbox, Path(tmp))
    r = rows[0][1].results[0]
    print(f"pset4 reference x {args.copies}, dataset {r.dataset}, sandbox {r.sandbox}; "
          f"{time.monotonic() - started:.0f} s in all; per-check points identical in both runs\n")
    text, overhead = table(rows, args.copies)
    print(text)
    print(f"\nDask overhead per submission: {overhead * 100:+.1f} % of the local pool's wall per submission "
          "(target: under 5 %). One-off costs are left out: starting the cluster, and each worker preparing its "
          "grader (the local pool prepares once, in the parent). On a busy machine this ratio is noisy: run it "
          "more than once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
