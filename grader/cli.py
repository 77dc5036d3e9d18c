"""mlp-grader: the command line. It parses arguments, calls the library and prints."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .api import detect_assignment, grade_folder, grade_submission
from .bwrap import doctor
from .course import find_course
from .engine import GradeOptions
from . import selfcheck
from .release import build_kit
from .errors import GraderError
from .rubric import load_rubric
from .template import template_differences, write_template


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GraderError as exc:
        print(f"mlp-grader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmlp-grader: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlp-grader", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mlp-grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    grade = sub.add_parser("grade", help="grade one submission or a folder of them (one sub-folder per student)")
    grade.add_argument("path", type=Path)
    grade.add_argument("--out", type=Path, default=Path("grading-output"), help="output folder (default: %(default)s)")
    _common(grade)
    grade.set_defaults(func=cmd_grade)

    check = sub.add_parser("check", help="self-check your own submission: public checks only")
    check.add_argument("path", type=Path, nargs="?", default=Path("."))
    check.add_argument("--full", action="store_true", help="also run the training checks on the dataset")
    _common(check)
    check.set_defaults(func=cmd_check)

    assign = sub.add_parser("assign", help="generate student_template/<assignment> from reference/<assignment>")
    assign.add_argument("--assignment", default=None, help="default: every assignment")
    assign.add_argument("--check", action="store_true", help="only report whether the committed template is in sync")
    assign.set_defaults(func=cmd_assign)

    release = sub.add_parser("release", help="build the student kit: template, course files and a public self-check")
    release.add_argument("--assignment", required=True)
    release.add_argument("--out", type=Path, required=True, help="a new folder for the kit")
    release.set_defaults(func=cmd_release)

    doctor = sub.add_parser("doctor", help="which sandbox levels work on this machine, and how to fix the others")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--assignment", default=None, help="default: detected from the submission's files")
    p.add_argument("--dataset", default="auto",
                   help="auto (default): the real dataset when available, else the offline stand-in, said loudly; "
                        "pset4: mnist, fashion-mnist, digits; modular: cifar100, synthetic-cifar")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder holding mnist.npz / cifar-100-python (default: ~/.cache/mlp-grader)")
    p.add_argument("--download", action="store_true", help="allow fetching the dataset (MNIST, CIFAR-100) once")
    p.add_argument("--sandbox", default=None, help="sandbox level (default: the strongest available)")
    p.add_argument("--timeout-scale", type=float, default=1.0,
                   help="multiply every time limit, e.g. 2 on a slow machine (default: %(default)s)")


def _options(args, **overrides) -> GradeOptions:
    return GradeOptions(sandbox=args.sandbox, dataset=args.dataset, data_dir=args.data_dir,
                        download=args.download, timeout_scale=args.timeout_scale, **overrides)


def cmd_grade(args) -> int:
    def progress(done: int, total: int, name: str, elapsed: float) -> None:
        eta = elapsed / done * (total - done)
        print(f"[{done}/{total}] {name} graded  ({elapsed:.0f} s elapsed, ~{eta:.0f} s left)", file=sys.stderr)

    warn = lambda text: print(f"WARNING: {text}", file=sys.stderr)
    summary = grade_folder(args.path, args.out, args.assignment, _options(args), progress, warn)
    for r in summary.results:
        state = f"NOT GRADED: {r.error}" if r.error else f"{r.autograded_points:g}/{r.autograded_max:g} autograded"
        print(f"{r.submission:32s} {state}")
    print(f"graded {len(summary.results) - len(summary.failed)}, failed to grade {len(summary.failed)}, "
          f"{summary.seconds:.1f} s; reports in {summary.out_dir}/index.html")
    return 0


def cmd_check(args) -> int:
    started = time.monotonic()
    options = _options(args, public_only=True, skip_data=not args.full)
    result = grade_submission(args.path, args.assignment, options)
    if result.error:
        print(f"could not check {args.path}: {result.error}")
        return 2
    hint = "" if args.full else "training on the dataset is not run without --full."
    print(selfcheck.render(result, time.monotonic() - started, hint))
    return selfcheck.exit_status(result)


def cmd_release(args) -> int:
    kit = build_kit(args.assignment, args.out)
    print(f"{args.assignment}: student kit in {kit.folder} ({len(kit.files)} files, {kit.size_bytes / 1024:.0f} KiB, "
          f"{kit.public_points:g} points of public checks and written questions)")
    print(f"students install it with: pip install {kit.folder}/selfcheck")
    return 0


def cmd_assign(args) -> int:
    course = find_course()
    names = [args.assignment] if args.assignment else course.assignments()
    stale = 0
    for name in names:
        rubric = load_rubric(course.rubric(name))
        files = list(rubric.owned) + list(rubric.provided)
        if args.check:
            problems = template_differences(course.reference(name), files, course.template(name))
            for p in problems:
                print(f"{name}: {p}")
            stale += bool(problems)
            if not problems:
                print(f"{name}: template in sync")
        else:
            written = write_template(course.reference(name), files, course.template(name))
            print(f"{name}: wrote {', '.join(written)} to {course.template(name)}")
    return 1 if stale else 0


def cmd_doctor(args) -> int:
    rows = doctor()
    for row in rows:
        print(f"{row.level:8s} {'works' if row.works else 'NOT AVAILABLE'}: {row.reason}")
        if row.fix:
            print(f"{'':8s} fix: {row.fix}")
    usable = [row.level for row in rows if row.works]
    print(f"default level here: {usable[0]}" if usable else "no sandbox level works here")
    return 0 if usable else 1


if __name__ == "__main__":
    sys.exit(main())
