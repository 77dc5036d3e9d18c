"""What a notebook's `check("Q2.1")` costs, side by side with `mlp-grader check --question Q2.1`
on the same files, interleaved in one run so that the machine's load falls on both alike: the
cell's wall time in a running kernel (execute request to reply, the table rendered), the
terminal command's wall time (a fresh interpreter), and the engine alone in this process (its
probe: the floor both share). Prints the median and the quartiles of each.

    python bench/check_cell.py                                 # pset4's reference, Q2.1, 9 rounds
    python bench/check_cell.py --assignment a1 --question P3C --rounds 15

The reference is copied to a temporary folder first (the kernel runs there, as a student's does).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.course import find_course  # noqa: E402
from grader.delivery.selfcheck import check_submission  # noqa: E402
from grader.grading.engine import GradeOptions  # noqa: E402
from grader.notebooks.checkcells import check_cell, import_cell  # noqa: E402


def run_cell(client, code: str) -> float:
    started = time.perf_counter()
    msg_id = client.execute(code)
    while True:
        reply = client.get_shell_msg(timeout=300)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    if reply["content"]["status"] != "ok":
        raise SystemExit(f"the cell failed: {reply['content']}")
    return time.perf_counter() - started


def quartiles(values: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return f"median {median:.2f} s  (quartiles {q1:.2f}–{q3:.2f} s, {len(values)} rounds)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="pset4")
    parser.add_argument("--question", default="Q2.1")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    from jupyter_client.manager import start_new_kernel

    course = find_course()
    with tempfile.TemporaryDirectory(prefix="bench-check-cell-") as tmp:
        folder = Path(tmp) / args.assignment
        shutil.copytree(course.reference(args.assignment), folder)
        km, client = start_new_kernel(kernel_name="python3", cwd=str(folder))
        try:
            run_cell(client, import_cell(args.assignment))
            run_cell(client, check_cell(args.question))  # the first call imports the display code
            cell, terminal, engine = [], [], []
            options = GradeOptions(public_only=True, skip_data=True, execute="none", questions=(args.question,))
            for _ in range(args.rounds):
                cell.append(run_cell(client, f"_ = {check_cell(args.question)}; _._repr_html_(); repr(_)"))
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "grader", "check", str(folder), "--question", args.question],
                               capture_output=True, check=False)
                terminal.append(time.perf_counter() - started)
                started = time.perf_counter()
                check_submission(folder, args.assignment, options)
                engine.append(time.perf_counter() - started)
        finally:
            client.stop_channels()
            km.shutdown_kernel(now=True)
    print(f"{args.assignment} {args.question}, public checks, on the reference:")
    print(f"  notebook cell  check({args.question!r}):            {quartiles(cell)}")
    print(f"  terminal       mlp-grader check --question {args.question}: {quartiles(terminal)}")
    print(f"  engine alone   (in this process; the probe):      {quartiles(engine)}")


if __name__ == "__main__":
    main()
