"""Cluster benchmark: the same batch (K copies of the pset4 reference) graded by the local pool
of N workers and by a Dask LocalCluster of N single-threaded workers, side by side in one run,
and the per-submission overhead Dask adds.

    python bench/cluster.py                        # K=6, N=2, digits, strongest sandbox
    python bench/cluster.py --copies 8 --jobs 2 --sandbox process

What is compared: the batch's wall time minus its one-off costs (local pool: the dataset export
and reference run in the parent; Dask: starting the LocalCluster, and each worker preparing its
own grader, in parallel, measured as the longest), per submission (grading wall x N / K), and
inside it the submission's own grading time (Result.timings["total"], measured in the worker
around Grader.grade). The rest is what each backend spends around a submission: for the local
pool the pipe to the forked worker and the writes; for Dask also sending the files, the task
round trip, and the result and figures coming back. The overhead Dask adds per submission is
the difference of those rests, as a share of the local pool's grading time per submission: it
does not count CPU contention from other processes, which slows the grading itself (and shows
in the grading-time column). The per-check points of both runs must be equal.
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

from grader.api import grade_folder
from grader.batching.folder import BatchSummary  # noqa: E402
from grader.batching.cluster_config import ClusterSpec  # noqa: E402
from grader.grading.engine import GradeOptions  # noqa: E402


def points(summary: BatchSummary) -> dict[str, list]:
    return {r.submission: [(c.id, c.points, c.status) for c in r.checks()] for r in summary.results}


def run(copies: int, jobs: int, dataset: str, sandbox: str | None, work: Path,
        dask_first: bool = False) -> list[tuple[str, BatchSummary]]:
    submissions = work / "class"
    for i in range(copies):
        shutil.copytree(REPO / "reference" / "pset4", submissions / f"student{i:03d}")
    options = GradeOptions(sandbox=sandbox, dataset=dataset)
    rows = []
    backends = [("local pool", None), ("Dask LocalCluster", ClusterSpec("local", workers=jobs))]
    for label, cluster in backends[::-1] if dask_first else backends:
        print(f"grading {copies} copies with the {label} of {jobs}...", file=sys.stderr, flush=True)
        summary = grade_folder(submissions, work / f"out-{len(rows)}", "pset4", options, jobs=jobs, force=True,
                               cluster=cluster)
        print(f"  {label}: {summary.seconds:.0f} s; load average over the last 5 min {os.getloadavg()[1]:.2f} "
              f"on {os.cpu_count()} cores", file=sys.stderr, flush=True)
        rows.append((label, summary))
    if points(rows[0][1]) != points(rows[1][1]):
        raise SystemExit("the two runs gave different points: see the result.json files")
    return sorted(rows, key=lambda row: row[0] != "local pool")


def table(rows: list[tuple[str, BatchSummary]], copies: int) -> tuple[str, float, float]:
    """The markdown table; the naive overhead (wall per submission, Dask over local) and Dask's own
    (what it adds around a submission's grading), both as shares of the local pool's figures."""
    lines = ["| backend | workers | batch wall (s) | cluster start (s) | reference + data (s) | grading wall (s) "
             "| wall per submission x workers (s) | grading time per submission (s) | around it (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    per, inside = [], []
    for label, s in rows:
        grading = s.seconds - s.cluster_seconds - s.prepare_seconds
        per.append(grading * s.jobs / copies)
        inside.append(statistics.fmean(r.timings.get("total", 0.0) for r in s.results))
        lines.append(f"| {label} | {s.jobs} | {s.seconds:.1f} | {s.cluster_seconds:.1f} | {s.prepare_seconds:.1f} "
                     f"| {grading:.1f} | {per[-1]:.2f} | {inside[-1]:.2f} | {per[-1] - inside[-1]:.2f} |")
    naive = (per[1] - per[0]) / per[0]
    own = ((per[1] - inside[1]) - (per[0] - inside[0])) / inside[0]
    return "\n".join(lines), naive, own


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=6, help="K: copies of the reference (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="N workers in both backends (default: %(default)s)")
    parser.add_argument("--dataset", default="digits", help="default: %(default)s (the offline stand-in)")
    parser.add_argument("--sandbox", default=None, help="default: the strongest level available")
    parser.add_argument("--dask-first", action="store_true", help="run the Dask batch first (load drifts over a run)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlp-grader-bench-") as tmp:
        rows = run(args.copies, args.jobs, args.dataset, args.sandbox, Path(tmp), args.dask_first)
    r = rows[0][1].results[0]
    print(f"pset4 reference x {args.copies}, dataset {r.dataset}, sandbox {r.sandbox}; "
          f"{time.monotonic() - started:.0f} s in all; per-check points identical in both runs\n")
    text, naive, own = table(rows, args.copies)
    print(text)
    print(f"\nDask's own overhead per submission (the 'around it' difference over the local pool's grading time "
          f"per submission): {own * 100:+.1f} % (target: under 5 %). Wall per submission, Dask over local: "
          f"{naive * 100:+.1f} %, which also counts any change in CPU contention between the two runs. One-off costs "
          "are left out: starting the cluster, and each worker preparing its grader (the local pool prepares once, "
          "in the parent). On a busy machine both ratios are noisy: run it more than once, in both orders.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
