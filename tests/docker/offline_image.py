"""Build the real Docker image with podman, offline, and grade with it (docs/ta-guide.md, "Docker").

    sudo python3 tests/docker/offline_image.py [--cache DIR] [--report FILE] [--no-cache] [--keep]

On a Debian machine, as root, with podman, runc and debootstrap installed, and no image
registry or package index reachable from the builds:

1. base: a stand-in for `python:3.11-slim` made from Debian's own packages (bookworm ships
   Python 3.11) by debootstrap, imported under that very name so that the Dockerfile's FROM
   line is used unchanged. Built once; its tarball is kept in the cache folder and reused.
2. wheelhouse: `pip wheel` of the project and everything it needs (and setuptools, which
   building `.` needs), made here with the host's pip into a copy of the build context.
3. image: the repository's Dockerfile, `--build-arg WHEELHOUSE=wheelhouse`.
4. run: the README's `docker run` line for real (`podman run` with runc, the rlimits a rootful
   podman needs on such a host, the submissions mounted read-only), on the examples plus a
   fork loop beside correct pset4 submissions, then two of them again with the same
   reference-cache folder (the second run must use cached entries and add none); then `mlp-grader doctor` and a few hostile submissions
   (tests/docker/hostile_in_image.py) in running containers. Where `podman run` cannot start a
   container (runc refused the rlimits), the same work happens in a test stage's build step
   (FROM the image, `--network=none`, as the image's user) and its results are copied out of a
   created, never started, container; the report says which path ran and why.
5. checks: the results against what must hold (see `check`); every problem is listed.

Exit status 0 when every check holds, 1 otherwise, 2 when a step could not run at all.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_TAG = "docker.io/library/python:3.11-slim"
IMAGE_TAG = "localhost/mlp-grader:offline-test"
STAGE_TAG = "localhost/mlp-grader-teststage:offline-test"
UID = 10001
# `podman run` on this kind of host (rootful podman, runc): its default rlimits are refused, these work.
RUN_LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
# The README's line (docs/ta-guide.md, "Docker"), with the reference cache's volume
README_RUN_ARGS = ("--rm", "--network", "none", "--memory", "4g")
# Beside the examples: a fork loop and correct pset4 submissions, graded by the same 2 workers
FORK_LOOP = "pset4-zz-hostile-fork-loop"
NEIGHBOURS = {"pset4-zz-neighbour-loops": "correct_loops", "pset4-zz-neighbour-helpers": "correct_helpers"}
# The second `docker run` (same cache folder): these again, each reference output from the cache
AGAIN = ("pset4-reference", "a1-reference")
# The buggy examples' points with the image's defaults (no baked data: the digits and
# synthetic-cifar stand-ins), as `mlp-grader grade examples/submissions` gives them outside it.
BUG_POINTS = {"modular-flagged-softmax-no-max": 37, "modular-bug-wd-twice": 32, "pset4-bug-np-float": 3,
              "pset4-bug-predict-scores": 23, "pset4-bug-relu-mask-inverted": 42.75}
# Strongest first, as the grader chooses them (DESIGN.md, section 1).
LEVEL_ORDER = ("bwrap", "landlock", "process")
# What the context copy leaves out (as .dockerignore does, plus what is large and useless here).
CONTEXT_IGNORE = shutil.ignore_patterns(".git", ".venv", ".ci", "__pycache__", "*.pyc", ".ipynb_checkpoints",
                                        "*.egg-info", "build", "dist", "grading-output", "out", ".pytest_cache")
# The python:3.11-slim image's own environment, which a `podman import` would not carry.
BASE_CHANGES = ("ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
                'CMD ["python3"]')
STAGE_FILE = """\
FROM {image}
COPY submissions /submissions
COPY hostile /hostile
COPY hostile_in_image.py /opt/offline-test/hostile_in_image.py
# One step, built with --network=none: the image's user, its defaults, no network. Every
# command's exit status is kept so that the host reports what failed instead of a broken build.
RUN mkdir -p out \\
    && id -u > out/uid \\
    && python3 -c 'import json, socket; print(json.dumps([n for _, n in socket.if_nameindex()]))' \\
        > out/interfaces.json \\
    && {{ mlp-grader doctor > out/doctor.txt 2>&1; echo $? > out/doctor.rc; }} \\
    && {{ mlp-grader grade /submissions --out out/examples > out/grade.log 2>&1; echo $? > out/grade.rc; }} \\
    && {{ python3 /opt/offline-test/hostile_in_image.py /hostile out/hostile.json > out/hostile.log 2>&1; \\
          echo $? > out/hostile.rc; }}
"""


class StepFailed(Exception):
    """A step could not run at all (a build failed, a tool is missing)."""


@dataclass
class Report:
    base: str = ""  # how the base stand-in was obtained: reused, imported from the cache, built
    path: str = ""  # "podman run", or the build-step fallback and why
    timings: dict[str, float] = field(default_factory=dict)
    level: str = ""  # the sandbox level the image graded with
    doctor: dict[str, bool] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    hostile: dict[str, float] = field(default_factory=dict)
    neighbours: dict[str, float] = field(default_factory=dict)  # beside the fork loop
    cache: dict[str, int] = field(default_factory=dict)  # the reference cache between the two runs
    escaped: list[str] = field(default_factory=list)  # what hostile submissions achieved at a weak level
    problems: list[str] = field(default_factory=list)


class Podman:
    """podman with the settings that work on Debian hosts here: runc (crun refuses cgroups in
    hybrid mode) and the cgroupfs manager (no systemd session)."""

    def __init__(self) -> None:
        self.argv = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]

    def __call__(self, *args: str, check: bool = True, log: Path | None = None, **kw) -> subprocess.CompletedProcess:
        if log is None:
            run = subprocess.run([*self.argv, *args], text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 **kw)
        else:  # written as it goes: a build takes minutes, and its log is where to watch it
            with log.open("w") as sink:
                run = subprocess.run([*self.argv, *args], text=True, stdout=sink, stderr=subprocess.STDOUT, **kw)
            run.stdout = log.read_text()
        if check and run.returncode != 0:
            raise StepFailed(f"podman {' '.join(args[:2])} failed ({run.returncode}):\n{run.stdout[-4000:]}")
        return run

    def exists(self, tag: str) -> bool:
        return self("image", "exists", tag, check=False).returncode == 0


@contextmanager
def timed(report: Report, name: str):
    start = time.monotonic()
    print(f"== {name}", flush=True)
    try:
        yield
    finally:
        report.timings[name] = round(time.monotonic() - start, 1)
        print(f"   {name}: {report.timings[name]} s", flush=True)


# ---------------------------------------------------------------------- 1. the base stand-in


def make_rootfs(rootfs: Path) -> None:
    """Debian bookworm with its Python 3.11, arranged as python:3.11-slim is: `python` and
    `pip` on PATH, pip allowed to install system-wide (no EXTERNALLY-MANAGED marker)."""
    partial = rootfs.with_name(rootfs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv",
                    "bookworm", str(partial), "http://deb.debian.org/debian"], check=True)
    arrange_rootfs(partial)
    partial.rename(rootfs)


def arrange_rootfs(partial: Path) -> None:
    local_bin = partial / "usr" / "local" / "bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in (("python", "/usr/bin/python3"), ("python3", "/usr/bin/python3"), ("pip", "/usr/bin/pip3"),
                         ("pip3", "/usr/bin/pip3")):
        (local_bin / name).unlink(missing_ok=True)
        (local_bin / name).symlink_to(target)
    for marker in (partial / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    for deb in (partial / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()  # downloaded packages: not in the real slim image either


def ensure_base(podman: Podman, cache: Path) -> str:
    if podman.exists(BASE_TAG):
        return "reused (image present)"
    tarball = cache / "python-3.11-slim-standin.tar"
    how = "imported from " + str(tarball)
    if not tarball.is_file():
        rootfs = cache / "bookworm-rootfs"
        if not rootfs.is_dir():
            make_rootfs(rootfs)
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball) + ".partial", "."], check=True)
        os.replace(str(tarball) + ".partial", tarball)
        shutil.rmtree(rootfs)  # the tarball is what is reused
        how = "built with debootstrap, kept in " + str(tarball)
    changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
    podman("import", *changes, str(tarball), BASE_TAG)
    return how


# ---------------------------------------------------------------------- 2.-4. the builds


def make_context(work: Path) -> Path:
    context = work / "context"
    shutil.copytree(REPO, context, ignore=CONTEXT_IGNORE, symlinks=True)
    wheelhouse = context / "wheelhouse"
    # On the host, with its index: everything the package needs, and what building `.` needs.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse),
                    str(context), "setuptools>=68", "wheel"], check=True)
    for leftover in ("build", "mlp_grader.egg-info"):
        shutil.rmtree(context / leftover, ignore_errors=True)
    return context


# Both builds use `--format docker`: in podman's default OCI format a SHELL instruction is
# ignored, and the Dockerfile's bash-only `${FETCH_DATA//,/ }` then fails under /bin/sh.


def make_stage(work: Path) -> Path:
    stage = work / "stage"
    stage.mkdir()
    shutil.copytree(REPO / "examples" / "submissions", stage / "submissions",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    fixtures = REPO / "tests" / "fixtures"
    shutil.copytree(fixtures / "hostile" / "fork_loop", stage / "submissions" / FORK_LOOP)
    shutil.copy(fixtures / "hostile" / "_base" / "mlp_base.py", stage / "submissions" / FORK_LOOP)
    for name, fixture in NEIGHBOURS.items():
        shutil.copytree(fixtures / "pset4" / fixture, stage / "submissions" / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.md"))
    shutil.copytree(REPO / "tests" / "fixtures" / "hostile", stage / "hostile",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(Path(__file__).with_name("hostile_in_image.py"), stage)
    (stage / "Containerfile").write_text(STAGE_FILE.format(image=IMAGE_TAG))
    return stage


def copy_out(podman: Podman, work: Path) -> Path:
    """The test stage's results, from a container that is created but never started."""
    name = f"mlp-grader-offline-test-{os.getpid()}"
    podman("create", "--name", name, STAGE_TAG)
    try:
        podman("cp", f"{name}:/home/grader/out", str(work / "out"))
    finally:
        podman("rm", "--force", name, check=False)
    return work / "out"


def run_refused(podman: Podman) -> str:
    """"" when `podman run` starts a container here, else what stopped it."""
    run = podman("run", "--rm", *RUN_LIMITS, "--network", "none", "--entrypoint", "true", IMAGE_TAG, check=False)
    return "" if run.returncode == 0 else run.stdout.strip()[-500:]


def owned(path: Path) -> Path:
    """A host folder the image's user may write (the container runs as uid 10001)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, UID, UID)
    return path


def run_in_containers(podman: Podman, stage: Path, work: Path, log_dir: Path, report: Report) -> Path:
    """The README's `docker run` twice (a second OUT, the same cache folder), then doctor and
    the hostile submissions, each in a running container; out/ as the build step leaves it."""
    out = owned(work / "out")
    cache = owned(work / "cache")
    # The second run: two of the examples again (the whole class again would only cost minutes)
    again = work / "again"
    for name in AGAIN:
        shutil.copytree(stage / "submissions" / name, again / name)
    for run_no, target, subs in ((1, out / "examples", stage / "submissions"), (2, out / "examples-again", again)):
        mounts = ("-v", f"{subs}:/submissions:ro", "-v", f"{cache}:/cache")
        owned(target)
        if run_no == 2:  # every entry back-dated: the second run must use (touch) each, and add none
            before = {p.name for p in cache.iterdir() if not p.name.startswith(".")}
            for entry in cache.iterdir():
                os.utime(entry, (1e9, 1e9))
        with timed(report, f"docker run {run_no}"):
            graded = podman("run", *README_RUN_ARGS, *RUN_LIMITS, *mounts, "-v", f"{target}:/out", IMAGE_TAG,
                            "grade", "/submissions", "--out", "/out", check=False,
                            log=log_dir / f"docker-run-{run_no}.log")
        if run_no == 1:
            (out / "grade.log").write_text(graded.stdout)
            (out / "grade.rc").write_text(f"{graded.returncode}\n")
        else:
            after = {p.name: p.stat().st_mtime for p in cache.iterdir() if not p.name.startswith(".")}
            report.cache = {"entries": len(before), "reused": sum(1 for n in before if after.get(n, 0) > 1e9),
                            "added": len(set(after) - before), "rc": graded.returncode,
                            "graded_again": len(list(target.glob("*/result.json")))}
    shutil.copytree(stage / "hostile", work / "hostile")
    script = ("mkdir -p /out && id -u > /out/uid"
              " && python3 -c 'import json, socket; print(json.dumps([n for _, n in socket.if_nameindex()]))'"
              " > /out/interfaces.json"
              " && { mlp-grader doctor > /out/doctor.txt 2>&1; echo $? > /out/doctor.rc; }"
              " && { python3 /opt/offline-test/hostile_in_image.py /hostile /out/hostile.json > /out/hostile.log 2>&1;"
              " echo $? > /out/hostile.rc; }")
    with timed(report, "doctor and hostile in a container"):
        podman("run", *README_RUN_ARGS, *RUN_LIMITS, "-v", f"{work / 'hostile'}:/hostile:ro",
               "-v", f"{stage / 'hostile_in_image.py'}:/opt/offline-test/hostile_in_image.py:ro",
               "-v", f"{out}:/out", "--entrypoint", "bash", IMAGE_TAG, "-c", script, log=log_dir / "hostile-run.log")
    return out


# ---------------------------------------------------------------------- 5. the checks


def read(out: Path, name: str, default: str = "") -> str:
    path = out / name
    return path.read_text() if path.is_file() else default


def doctor_levels(text: str) -> dict[str, bool]:
    """`mlp-grader doctor` lines: `LEVEL    works: ...` or `LEVEL    NOT AVAILABLE: ...`."""
    return {m.group(1): m.group(2) == "works"
            for m in re.finditer(r"^(\w+)\s+(works|NOT AVAILABLE):", text, re.MULTILINE)}


def check(out: Path, report: Report) -> None:
    problems = report.problems
    if read(out, "uid").strip() != str(UID):
        problems.append(f"the test stage ran as uid {read(out, 'uid').strip()!r}, not {UID}")
    interfaces = json.loads(read(out, "interfaces.json", "null"))
    if interfaces != ["lo"]:
        problems.append(f"the network was not unshared in the test stage: interfaces {interfaces}")

    report.doctor = doctor_levels(read(out, "doctor.txt"))
    if read(out, "doctor.rc").strip() != "0" or not report.doctor:
        problems.append("mlp-grader doctor failed: " + read(out, "doctor.txt")[-2000:])
    landlock_known = "landlock" in report.doctor

    # The examples, graded with the image's defaults.
    if read(out, "grade.rc").strip() != "0":
        problems.append("mlp-grader grade failed: " + read(out, "grade.log")[-3000:])
    examples = sorted(p.name for p in (REPO / "examples" / "submissions").iterdir() if p.is_dir())
    results = {}
    for path in sorted((out / "examples").glob("*/result.json")):
        data = json.loads(path.read_text())
        results[data["submission"]] = data
    beside = {name: results.pop(name) for name in [FORK_LOOP, *NEIGHBOURS] if name in results}
    report.points = {name: data["autograded_points"] for name, data in results.items()}
    report.neighbours = {name: data["autograded_points"] for name, data in beside.items()}
    if sorted(results) != examples:
        problems.append(f"graded {sorted(results)}, expected every example {examples}")
    if beside and (set(beside) != {FORK_LOOP, *NEIGHBOURS} or
                   any(report.neighbours[n] != 45 for n in NEIGHBOURS) or report.neighbours[FORK_LOOP] >= 45):
        problems.append(f"beside the fork loop: {report.neighbours} (each correct neighbour 45 of 45 expected)")
    if report.cache and (report.cache["rc"] != 0 or report.cache["entries"] == 0 or report.cache["added"]
                         or report.cache["reused"] == 0 or report.cache["graded_again"] != len(AGAIN)):
        problems.append(f"the second `docker run` did not reuse the reference cache: {report.cache}")
    if not re.search(rf"graded {len(examples) + len(beside)}, failed to grade 0,", read(out, "grade.log")):
        problems.append("the batch summary does not say every example was graded: " + read(out, "grade.log")[-1500:])
    for name, data in results.items():
        if name.endswith("-reference") and not data["autograded_points"] == data["autograded_max"] > 0:
            problems.append(f"{name}: {data['autograded_points']} of {data['autograded_max']} autograded points, "
                            "not full marks")
        if name.endswith("-template") and data["autograded_points"] != 0:
            problems.append(f"{name}: {data['autograded_points']} autograded points, not 0")
        if name in BUG_POINTS and abs(data["autograded_points"] - BUG_POINTS[name]) > 1e-3:
            problems.append(f"{name}: {data['autograded_points']} autograded points, {BUG_POINTS[name]} outside "
                            "the image (the same defaults: digits and synthetic-cifar stand-ins)")
    levels = {data.get("sandbox", "") for data in results.values()}
    report.level = ", ".join(sorted(levels))
    if len(levels) != 1 or not report.doctor.get(report.level) or report.level == "none":
        problems.append(f"sandbox level named in the results: {sorted(levels)}; doctor: {report.doctor}")
    if landlock_known and report.level not in LEVEL_ORDER[:LEVEL_ORDER.index("landlock") + 1]:
        problems.append(f"the grader has a landlock level, but the image graded at {report.level!r}: "
                        "landlock or better is required")
    check_hostile(out, report, strong=report.level in ("bwrap", "landlock"))


def check_hostile(out: Path, report: Report, strong: bool) -> None:
    """At a strong level (bwrap, landlock) nothing may escape. At the process level the
    escapes its limitations name are expected, and checked as such, so that this detector is
    seen to detect (tests/fixtures/hostile/SCENARIOS.md has both columns)."""
    problems = report.problems
    if read(out, "hostile.rc").strip() != "0":
        problems.append("the hostile submissions could not be graded: " + read(out, "hostile.log")[-3000:])
        return
    seen = json.loads(read(out, "hostile.json"))
    report.hostile = {name: seen[name]["points"] for name in ("tamper_other", "network", "search_reference",
                                                              "kill_parent")}
    for name in report.hostile:
        if seen[name]["sandbox"] != report.level:
            problems.append(f"hostile {name} graded at {seen[name]['sandbox']!r}, the examples at {report.level!r}")
    tamper, network, search, kill = (seen[n] for n in ("tamper_other", "network", "search_reference", "kill_parent"))
    tamper_escaped = (any((tamper["observed"] or {}).get(key) for key in ("written", "scratch_written"))
                      or not tamper["unchanged"]
                      or tamper["victim_files"] != ["mlp.py"] or tamper["out_dir_files"] != ["early"]
                      or tamper["victim_points_after"] != 25)
    network_escaped = bool(network["accepted"]) or (network["observed"] or {}).get("connect") == "connected"
    search_escaped = search["points"] > 1  # 1: the zero model's history lengths; 25: it became the reference
    escapes = {"tamper_other: wrote into a neighbour's folder, a graded result or the output": tamper_escaped,
               "network: connected to a listener on 127.0.0.1": network_escaped,
               "search_reference: read the reference solution and became it": search_escaped}
    report.escaped = [what for what, escaped in escapes.items() if escaped]
    if strong:
        problems.extend(f"ESCAPED at the {report.level} level: {what}" for what in report.escaped)
        if tamper["points"] != 23 or network["points"] != 23:
            problems.append(f"tamper_other {tamper['points']}, network {network['points']}: 23 each expected "
                            "(everything but predict_hidden)")
    else:
        # What the process level does not stop, by design: all three, exactly as in test_hostile.
        missing = [what for what, escaped in escapes.items() if not escaped]
        if missing:
            problems.append(f"at the {report.level} level these were expected to get through and did not "
                            f"(the detector or the level changed): {missing}")
    # Killing the runner costs the checks not yet run (15 of 25 left); under Landlock the signal
    # is refused and only predict_hidden is lost (23). At every level the grader survives and
    # grades the next submission in full.
    expected = 23 if report.level == "landlock" else 15
    if kill["points"] != expected or kill["next_submission_points"] != 25:
        problems.append(f"kill_parent: {kill['points']} points ({expected} expected at {report.level}), the next "
                        f"submission {kill['next_submission_points']} (25 expected)")


# ---------------------------------------------------------------------- the whole path


def run(cache: Path, no_cache: bool, keep: bool, log_dir: Path) -> Report:
    report = Report()
    podman = Podman()
    cache.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlp-grader-offline-") as tmp:
        work = Path(tmp)
        with timed(report, "base"):
            report.base = ensure_base(podman, cache)
        with timed(report, "wheelhouse"):
            context = make_context(work)
        with timed(report, "image"):
            podman("build", "--pull=never", "--format", "docker", "--build-arg", "WHEELHOUSE=wheelhouse",
                   "-t", IMAGE_TAG, *(["--no-cache"] if no_cache else []), "-f", str(context / "Dockerfile"),
                   str(context), log=log_dir / "image-build.log")
        stage = make_stage(work)
        refused = run_refused(podman)
        if not refused:
            report.path = "podman run"
            out = run_in_containers(podman, stage, work, log_dir, report)
        else:
            report.path = f"build step (podman run cannot start a container here: {refused})"
            with timed(report, "test stage"):
                # Never from the layer cache: the grading in this step is the test.
                podman("build", "--pull=never", "--format", "docker", "--network=none", "--no-cache", "-t",
                       STAGE_TAG, "-f", str(stage / "Containerfile"), str(stage), log=log_dir / "test-stage-build.log")
                out = copy_out(podman, work)
        shutil.copytree(out, log_dir / "out", dirs_exist_ok=True)
        check(out, report)
    if not keep:
        podman("rmi", STAGE_TAG, check=False)
    report.timings["total"] = round(time.monotonic() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "mlp-grader" / "docker",
                        help="where the base stand-in's tarball is kept and reused (default: %(default)s)")
    parser.add_argument("--logs", type=Path, default=None,
                        help="build logs and the test stage's results are copied here (default: CACHE/last-run)")
    parser.add_argument("--report", type=Path, help="write the report as JSON here")
    parser.add_argument("--no-cache", action="store_true", help="build the image without podman's layer cache")
    parser.add_argument("--keep", action="store_true", help="keep the test stage image")
    args = parser.parse_args(argv)
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        print(f"needs root and podman, runc, debootstrap (missing: {missing}, uid {os.geteuid()})", file=sys.stderr)
        return 2
    try:
        report = run(args.cache, args.no_cache, args.keep, args.logs or args.cache / "last-run")
    except (StepFailed, subprocess.CalledProcessError) as exc:
        print(f"STEP FAILED: {exc}", file=sys.stderr)
        return 2
    if args.report:
        args.report.write_text(json.dumps(asdict(report), indent=1))
    print(f"base: {report.base}\npath: {report.path}\nsandbox level in the image: {report.level} "
          f"(doctor: {report.doctor})")
    print(f"beside the fork loop: {report.neighbours}\nreference cache, second run: {report.cache}")
    print(f"examples: {report.points}\nhostile: {report.hostile}; got through: {report.escaped or 'nothing'}")
    print(f"timings (s): {report.timings}")
    for problem in report.problems:
        print("PROBLEM:", problem)
    print("OK" if not report.problems else f"{len(report.problems)} PROBLEM(S)")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
