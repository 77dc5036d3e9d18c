"""mlp-grader: the command line. It parses arguments, calls the library and prints."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

from grader import __version__, api
from grader.api import CLUSTER_KINDS, GraderError, format_points

# The api imports each subsystem when one of its functions is called: `check` on a student's
# machine must not import (nor need the packages of) batch grading, notebooks, reports or Gradescope.
SANDBOX_CHOICES = ["bwrap", "landlock", "process", "none"]
TIMEOUT_SCALE_ENV = "MLP_GRADER_TIMEOUT_SCALE"  # --timeout-scale's default


def run() -> None:
    """The console script (and `python -m grader`): main(), then exit."""
    code = main()
    # At exit CPython collects every object the run created: about 0.2 s after a grading
    # (numpy, matplotlib, jinja2, the results), memory the OS frees anyway. Frozen objects are
    # skipped; atexit handlers and buffered output still run and flush as usual.
    gc.freeze()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GraderError as exc:
        print(f"mlp-grader: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] in ("grader", "grader_course"):
            raise
        # e.g. `grade` in the student kit, which installs only what `check` needs
        print(f"mlp-grader: error: `{args.command}` needs the package {exc.name!r}, which is not installed here "
              "(the student kit installs only what `mlp-grader check` needs)", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the checks below did not foresee: one line, never a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"mlp-grader: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nmlp-grader: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlp-grader", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mlp-grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    grade = sub.add_parser("grade", help="grade one submission or a folder of them (a folder or .zip per student, "
                                         "or a Canvas export)")
    grade.add_argument("path", type=Path)
    grade.add_argument("--out", type=Path, default=Path("grading-output"), help="output folder (default: %(default)s)")
    grade.add_argument("--jobs", "-j", type=_positive_int, default=None,
                       help="submissions graded at once (default: the cores this process may use)")
    grade.add_argument("--execute", choices=("light", "full", "none"), default="light",
                       help="run each notebook in the sandbox: light (default) skips the training/data cells the "
                            "rubric marks (the probe checks reproduce them); full runs every cell (retrains: slow); "
                            "none only reads it")
    grade.add_argument("--manual", type=Path, default=None, metavar="CSV",
                       help="merge the TA's scores and comments for the written questions (a filled-in "
                            "OUT/manual.csv); validated first: any problem stops the merge and lists every problem")
    grade.add_argument("--similarity", choices=("on", "off"), default=None,
                       help="flag pairs of students whose own code is very similar (copydetect; never changes "
                            "points). Default: on for a folder of more than one submission")
    grade.add_argument("--boilerplate", type=Path, action="append", default=[], metavar="DIR",
                       help="starter code the students received besides the template (e.g. an older handout): "
                            "left out of the similarity comparison; may be repeated")
    grade.add_argument("--force", action="store_true",
                       help="regrade every submission (default: keep results whose files, rubric, grader version "
                            "and code, options, dataset and sandbox are unchanged)")
    late = grade.add_argument_group("late work (see docs/ta-guide.md, \"Late work and extensions\")")
    late.add_argument("--policy", type=Path, default=None, metavar="TOML",
                      help="a course file whose [late] table overrides the rubric's")
    late.add_argument("--extensions", type=Path, default=None, metavar="CSV",
                      help="per-student extensions: student, due or extra_days, multiplier")
    late.add_argument("--submitted-at", type=Path, default=None, metavar="CSV",
                      help="submission times (student, time), e.g. exported from the LMS")
    late.add_argument("--at", default=None, metavar="TIME",
                      help="grade each git clone as of its last commit not after TIME (ISO 8601 with a zone)")
    late.add_argument("--late-day-bank", type=Path, default=None, metavar="CSV",
                      help="late days spent so far (student, assignment, days): read, and written back")
    where = grade.add_argument_group("grading on a Dask cluster (pip install 'mlp-grader[dask]')")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="grade on an existing Dask cluster, e.g. tcp://head-node:8786")
    where.add_argument("--cluster", choices=CLUSTER_KINDS, default=None,
                       help="start a Dask cluster: local (--jobs single-threaded worker processes here) or a batch "
                            "system through dask-jobqueue (slurm, pbs, ...: options from --cluster-config)")
    where.add_argument("--cluster-config", type=Path, default=None, metavar="TOML",
                       help="cluster options: [cluster] kind, workers, data_dir; [jobqueue] keyword arguments of "
                            "dask-jobqueue's cluster class (docs/ta-guide.md: Grading on a cluster)")
    _common(grade)
    grade.set_defaults(func=cmd_grade)

    summary = sub.add_parser("summary", help="rebuild gradebook.csv and index.html from OUT/*/result.json")
    summary.add_argument("out", type=Path)
    summary.set_defaults(func=cmd_summary)

    diff = sub.add_parser("diff", help="what changed between two gradings (two OUT folders, or OUT and "
                                       "OUT/history/<run>), and why")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--out", type=Path, default=None, help="folder for diff.html and diff.csv (default: NEW)")
    diff.set_defaults(func=cmd_diff)
    feedback = sub.add_parser("feedback", help="a self-contained feedback page per student of OUT, for students "
                                               "(what the rubric lets them see at the stage), with index.csv and a "
                                               "Canvas re-upload zip")
    feedback.add_argument("out", type=Path, help="the grading output (OUT/<student>/result.json)")
    feedback.add_argument("--to", type=Path, required=True, help="the folder to write the pages to (replaced whole)")
    feedback.add_argument("--stage", default="published", choices=["before-due", "after-due", "published"],
                          help="what students may see now (default: published)")
    feedback.add_argument("--model-answers", action="store_true",
                          help="show the written questions' model answers (published stage only)")
    feedback.set_defaults(func=cmd_feedback)

    gradescope = sub.add_parser("gradescope", help="Gradescope autograder: build its zip, or run it (on Gradescope)")
    gs = gradescope.add_subparsers(dest="gradescope_command", required=True)
    gs_build = gs.add_parser("build", help="write OUT/autograder-<assignment>.zip to upload to Gradescope")
    gs_build.add_argument("--assignment", required=True)
    gs_build.add_argument("--out", type=Path, default=Path("."), help="folder for the zip (default: here)")
    gs_build.add_argument("--dataset", default=None, help="the dataset to grade on (default: the rubric's real one, "
                                                          "e.g. mnist; never a silent stand-in)")
    gs_build.add_argument("--data-dir", type=Path, default=None,
                          help="bake the dataset file from here when present (default: ~/.cache/mlp-grader)")
    gs_build.add_argument("--no-bake", action="store_true", help="download the dataset in setup.sh instead")
    gs_build.add_argument("--sandbox", default=None, help="sandbox level on Gradescope (default: the strongest there)")
    gs_build.add_argument("--timeout-scale", type=float, default=1.0)
    gs_build.set_defaults(func=cmd_gradescope_build)
    gs_run = gs.add_parser("run", help="(what run_autograder calls) grade ROOT/submission into ROOT/results")
    gs_run.add_argument("--root", type=Path, default=None, help="default: $MLP_GRADER_AUTOGRADER_ROOT or /autograder")
    gs_run.set_defaults(func=cmd_gradescope_run)

    data = sub.add_parser("data", help="datasets: fetch one into the data folder (e.g. at Docker build time)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="download (or check) a dataset: mnist, cifar100, fashion-mnist, ...")
    fetch.add_argument("name")
    fetch.add_argument("--data-dir", type=Path, default=None, help="default: $MLP_GRADER_DATA or ~/.cache/mlp-grader")
    fetch.set_defaults(func=cmd_data_fetch)

    check = sub.add_parser("check", help="self-check your own submission: public checks only")
    check.add_argument("path", type=Path, nargs="?", default=Path("."))
    check.add_argument("--full", action="store_true", help="also run the training checks on the dataset")
    check.add_argument("--question", action="append", default=[], metavar="ID",
                       help="only this question's checks (repeatable; default: every question)")
    check.add_argument("--json", action="store_true",
                       help="print the result as JSON (what a notebook's check cell reads)")
    check.add_argument("--serve", action="store_true",
                       help="answer JSON check requests on stdin, one per line (a notebook's check cells start this)")
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
    p.add_argument("--sandbox", default=None, choices=SANDBOX_CHOICES,
                   help="sandbox level (default: the strongest available; `none` only for checking your own code)")
    p.add_argument("--runner", default=None, choices=["fork", "spawn"],
                   help="how probes start each task: fork (default where the system has it) or spawn (a fresh "
                        "Python per task: slower; the default on Windows)")
    # The environment variable also reaches the check cells' `mlp-grader check --serve`, which the
    # notebook starts without arguments: a student on a slow machine sets it before starting Jupyter.
    p.add_argument("--timeout-scale", type=_timeout_scale, default=os.environ.get(TIMEOUT_SCALE_ENV, "1"),
                   help=f"multiply every time limit, e.g. 2 on a slow machine (default: ${TIMEOUT_SCALE_ENV}, else 1)")


def _options(args, **overrides):
    if args.sandbox:
        warning = api.choose_sandbox(args.sandbox).warning
        if warning:
            print(warning, file=sys.stderr)
    overrides.setdefault("execute", getattr(args, "execute", "light"))
    return api.GradeOptions(sandbox=args.sandbox, dataset=args.dataset, data_dir=args.data_dir,
                        download=args.download, timeout_scale=args.timeout_scale, runner=args.runner, **overrides)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _timeout_scale(text: str) -> float:
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError as exc:
        if text == os.environ.get(TIMEOUT_SCALE_ENV):  # argparse parses a string default too
            raise argparse.ArgumentTypeError(f"{exc} (${TIMEOUT_SCALE_ENV} is {text!r})") from None
        raise


def _check_paths(args) -> None:
    """Bad paths as one clear line before any work starts (an existing file given as --out used
    to end in a NotADirectoryError traceback after grading)."""
    path = getattr(args, "path", None)
    if path is not None and not path.exists():
        raise GraderError(f"no such file or folder: {path}")
    out = getattr(args, "out", None)
    if out is not None and out.exists() and not out.is_dir():
        raise GraderError(f"--out {out} is a file, not a folder: give a folder for the reports (it is created "
                          "when missing)")
    if out is not None and not out.exists() and out.parent.exists() and not out.parent.is_dir():
        raise GraderError(f"--out {out}: {out.parent} is a file, not a folder")
    data_dir = getattr(args, "data_dir", None)
    if data_dir is not None and data_dir.exists() and not data_dir.is_dir():
        raise GraderError(f"--data-dir {data_dir} is a file, not a folder")
    manual = getattr(args, "manual", None)
    if manual is not None and not manual.is_file():
        raise GraderError(f"--manual {manual}: no such file" if not manual.exists()
                          else f"--manual {manual} is a folder, not a CSV file")
    for folder in getattr(args, "boilerplate", None) or []:
        if not folder.is_dir():
            raise GraderError(f"--boilerplate {folder}: " + ("not a folder" if folder.exists() else "no such folder"))


class _ProgressBar:
    """Count, rate and ETA on stderr: a tqdm bar on a terminal, one line per submission otherwise
    (logs, CI)."""

    def __init__(self) -> None:
        self.bar = None

    def plan(self, todo: int, reused: int, jobs: int) -> None:
        kept = f"{reused} kept from an earlier run (--force regrades them)" if reused else ""
        if not todo:
            print(f"nothing to grade: {kept}", file=sys.stderr)
            return
        print(f"grading {todo} submission{'s' * (todo != 1)} with {jobs} worker{'s' * (jobs != 1)}"
              f"{'; ' + kept if kept else ''}", file=sys.stderr)
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=todo, file=sys.stderr, unit="sub", dynamic_ncols=True)

    def __call__(self, done: int, total: int, name: str, elapsed: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name[:30], refresh=False)
            self.bar.update(1)
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate else 0.0
        print(f"[{done}/{total}] {name}  ({rate * 60:.1f}/min, {elapsed:.0f} s elapsed, ~{eta:.0f} s left)",
              file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _cluster(args):
    """The cluster the TA asked for (a ClusterSpec), or None for the local pool."""
    if args.scheduler and (args.cluster or args.cluster_config):
        raise GraderError("--scheduler connects to a running cluster: it does not go with --cluster or "
                          "--cluster-config")
    if args.scheduler:
        return api.ClusterSpec("scheduler", address=args.scheduler)
    if args.cluster_config:
        return api.load_cluster_config(args.cluster_config, args.cluster, args.jobs)
    if args.cluster == "local":
        return api.ClusterSpec("local", workers=args.jobs or api.default_jobs())
    if args.cluster:
        raise GraderError(f"--cluster {args.cluster} needs --cluster-config with its [jobqueue] options")
    return None


def cmd_grade(args) -> int:
    _check_paths(args)
    cluster = _cluster(args)
    if args.sandbox == "none":
        raise GraderError("--sandbox none gives student code no isolation: it is only for `mlp-grader check` "
                          "on your own code, never for grading others")
    if args.manual:
        api.check_manual_sheet(args.manual)  # an unusable file fails before any grading
    warn = lambda text: print(f"WARNING: {text}", file=sys.stderr)
    bar = _ProgressBar()
    try:
        summary = api.grade_folder(args.path, args.out, args.assignment, _options(args), bar, warn,
                               jobs=args.jobs, force=args.force, on_plan=bar.plan,
                               similarity=None if args.similarity is None else args.similarity == "on",
                               boilerplate=tuple(args.boilerplate), cluster=cluster, policy=args.policy,
                               extensions=args.extensions, submitted_at=args.submitted_at, at=args.at,
                               late_day_bank=args.late_day_bank)
    except KeyboardInterrupt:
        bar.close()
        print(f"\nmlp-grader: interrupted; finished results are kept in {args.out}: run the same command "
              "again to grade the rest", file=sys.stderr)
        return 130
    finally:
        bar.close()
    for r in sorted(summary.results, key=lambda r: r.submission):
        state = f"NOT GRADED: {r.error}" if r.error else f"{format_points(r.autograded_points)}/{format_points(r.autograded_max)} autograded"
        if r.late_penalty or r.late.get("bank_used") or r.late.get("unknown"):
            state += f"; late: {r.late.get('rule')}"
        print(f"{r.submission:32s} {state}")
    fresh = len(summary.results) - summary.reused
    kept = f" ({fresh} now, {summary.reused} kept from an earlier run)" if summary.reused else ""
    print(f"graded {len(summary.results) - len(summary.failed)}{kept}, failed to grade {len(summary.failed)}, "
          f"{summary.seconds:.1f} s with {summary.jobs} worker{'s' * (summary.jobs != 1)}; "
          f"reports in {summary.out_dir}/index.html")
    if summary.similarity is not None:
        flagged = len(summary.similarity.pairs)
        print(f"similar code: {flagged} pair{'s' * (flagged != 1)} flagged at {summary.similarity.threshold:g} or above "
              f"(never changes points; side by side in {summary.out_dir}/index.html)")
    if summary.archived is not None:
        print(f"the results this run replaced are kept in {summary.archived} (`mlp-grader diff "
              f"{summary.archived} {summary.out_dir}` shows what changed)")
    results = summary.results
    if args.manual:
        results = api.merge_manual_scores(args.out, args.manual)  # every problem listed, nothing merged on error
        print(f"merged the hand-graded scores of {args.manual}")
    written = api.write_manual_sheet(results, args.out)
    if written:
        print(f"written answers to grade by hand: {written}" + ("" if written.name == "manual.csv"
              else " (manual.csv holds scores not merged yet: pass --manual to merge them)"))
    return 0



def cmd_diff(args) -> int:
    found = api.diff_runs(args.old, args.new, args.out)
    for line in found.describe():
        print(line)
    print(f"wrote {(args.out or args.new) / 'diff.html'} and diff.csv")
    return 0


def cmd_summary(args) -> int:
    results = api.rebuild_summary(args.out)
    print(f"{len(results)} results: wrote {args.out}/index.html and the gradebook")
    return 0


def cmd_feedback(args) -> int:
    run = api.write_feedback(args.out, args.to, args.stage, args.model_answers)
    print(f"{len(run.pages)} feedback pages ({args.stage}) in {run.folder}, with index.csv"
          + (" (TA scores and comments from manual.csv)" if run.manual_merged else ""))
    if run.canvas_zip:
        print(f"Canvas: {run.canvas_zip} (Grades > the assignment > Re-Upload Submissions)")
    for student in run.not_in_canvas:
        print(f"not in the Canvas export, so not in the zip: {student}")
    return 0


def cmd_gradescope_build(args) -> int:
    _check_paths(args)
    target = api.build_autograder(args.assignment, args.out, args.dataset, args.data_dir, args.sandbox,
                              args.timeout_scale, bake_data=not args.no_bake)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB): upload it as the assignment's autograder "
          "(Configure Autograder > Zip file upload)")
    return 0


def cmd_gradescope_run(args) -> int:
    payload = api.run_autograder(args.root)
    print(f"score {payload['score']:g}, {len(payload['tests'])} tests; {payload['output'].splitlines()[0]}")
    return 0


def cmd_data_fetch(args) -> int:
    _check_paths(args)
    print(api.fetch_dataset(args.name, args.data_dir))
    return 0


def cmd_check(args) -> int:
    _check_paths(args)
    started = time.monotonic()
    questions = tuple(args.question)
    options = _options(args, public_only=True, skip_data=not args.full, execute="none", questions=questions)
    if args.serve:
        api.serve_checks(sys.stdin, sys.stdout, options)
        return 0
    if args.json:
        payload = api.check_json(args.path, args.assignment, options)
        print(json.dumps(payload))
        return 2 if "error" in payload or payload["result"].get("error") else \
            api.check_exit_status(api.Result.from_dict(payload["result"]))
    result = api.check_submission(args.path, args.assignment, options)
    if result.error:
        print(f"could not check {args.path.resolve()}: {result.error}")
        return 2
    hint = "" if args.full else "training on the dataset is not run without --full."
    print(api.check_report(result, time.monotonic() - started, hint, folder=args.path, questions=questions))
    return api.check_exit_status(result)


def cmd_release(args) -> int:
    _check_paths(args)
    kit = api.build_kit(args.assignment, args.out)
    print(f"{args.assignment}: student kit in {kit.folder} ({len(kit.files)} files, {kit.size_bytes / 1024:.0f} KiB, "
          f"{kit.public_points:g} points of public checks and written questions)")
    print(f"students install it with: pip install {kit.folder}/selfcheck")
    return 0


def cmd_assign(args) -> int:
    statuses = api.assign(args.assignment, check=args.check)
    for status in statuses:
        if not args.check:
            print(f"{status.assignment}: wrote {', '.join(status.written)} to {status.folder}")
        for problem in status.problems:
            print(f"{status.assignment}: {problem}")
        if args.check and not status.problems:
            print(f"{status.assignment}: template in sync")
    return 1 if any(status.problems for status in statuses) else 0


def cmd_doctor(args) -> int:
    rows = api.sandbox_doctor()
    for row in rows:
        print(f"{row.level:8s} {'works' if row.works else 'NOT AVAILABLE'}: {row.reason}")
        if row.fix:
            print(f"{'':8s} fix: {row.fix}")
    usable = [row.level for row in rows if row.works and row.level != "none"]  # never chosen automatically
    print(f"default level here: {usable[0]}" if usable else "no sandbox level works here")
    return 0 if usable else 1


if __name__ == "__main__":
    sys.exit(main())
