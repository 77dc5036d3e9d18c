"""The library entry points: grade one submission or a folder of them and write the results.
The CLI (and later the Docker entry point and the student self-check) only call these."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import __version__, plots
from .batch import default_jobs, kill_descendants, run_pool
from .canvas_gradebook import write_identities
from .course import CourseDir, detect_assignment, find_course  # noqa: F401 (detect_assignment: part of the API)
from .data import DEFAULT_DATA_DIR, LOADERS
from .engine import GradeOptions, Grader
from .errors import GraderError
from .layouts import Entry, discover_entries
from .report import write_report
from .results import QuestionResult, Result
from .rubric import Rubric, load_rubric
from .similarity import SimilarityReport, analyse_batch, clear as clear_similarity
from .submission import load_submission, looks_like_submission
from .summary import write_outputs

if TYPE_CHECKING:
    from .cluster_config import ClusterSpec

Progress = Callable[[int, int, str, float], None]  # done, total, submission name, elapsed seconds


RETRY_ERRORS = ("internal error", "the grading worker")  # a re-run grades these again


@dataclass
class BatchSummary:
    results: list[Result] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0
    reused: int = 0  # results kept from an earlier run (same files, rubric, grader, dataset, sandbox)
    skipped: list[str] = field(default_factory=list)  # top-level items that are no submission
    jobs: int = 1
    # dataset export and reference outputs, once per batch (on a cluster: each worker's, the longest)
    prepare_seconds: float = 0.0
    cluster_seconds: float = 0.0  # starting (or connecting to) the Dask cluster
    similarity: SimilarityReport | None = None  # None when --similarity is off

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.error]


def grade_submission(path: Path, assignment: str | None = None, options: GradeOptions = GradeOptions(),
                     out_dir: Path | None = None) -> Result:
    course = find_course()
    assignment = assignment or detect_assignment(Path(path), course)
    with Grader(assignment, options, course) as grader:
        return _grade_one(grader, Path(path), out_dir)


def grade_folder(path: Path, out_dir: Path, assignment: str | None = None,
                 options: GradeOptions = GradeOptions(), progress: Progress | None = None,
                 on_warning: Callable[[str], None] | None = None, *, jobs: int | None = None,
                 force: bool = False, on_plan: Callable[[int, int, int], None] | None = None,
                 similarity: bool | None = None, boilerplate: tuple[Path, ...] = (),
                 cluster: ClusterSpec | None = None) -> BatchSummary:
    """Grade `path` into `out_dir`: OUT/<name>/result.json and report.html, OUT/gradebook.csv
    (gradebook-<assignment>.csv per assignment when the folder mixes them) and OUT/index.html.

    `path` is one submission, or a folder of them in any layout grader/layouts.py reads (a
    folder or a .zip per student, a Canvas export). `jobs` worker processes (default: the
    cores) grade concurrently. A submission whose result.json matches its files, the rubric,
    the grader version, the dataset and the sandbox is not graded again unless `force`.
    `on_plan(to_grade, reused, workers)` is called once before grading starts. With `cluster`
    the submissions are graded on a Dask cluster (grader/cluster.py) instead of local workers.
    `similarity` (default: on when there is more than one submission) compares the students'
    own code pairwise, the template and the `boilerplate` folders left out (grader/similarity.py)."""
    started = time.monotonic()
    path, out_dir = Path(path), Path(out_dir)
    if cluster is not None and cluster.data_dir and options.data_dir is None:
        options = dataclasses.replace(options, data_dir=cluster.data_dir)  # the driver reads the shared copy too
    course = find_course()
    rubrics = {name: load_rubric(course.rubric(name)) for name in course.assignments()}
    if assignment and assignment not in rubrics:
        raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(rubrics)}")
    chosen = [rubrics[assignment]] if assignment else list(rubrics.values())
    markers = tuple(dict.fromkeys(m for r in chosen for m in r.detect))
    known = tuple(dict.fromkeys(f for r in chosen for f in (*r.detect, *r.owned, *r.provided)))
    summary = BatchSummary(out_dir=out_dir)
    with tempfile.TemporaryDirectory(prefix="mlp-grader-batch-") as scratch, ExitStack() as stack:
        found = discover_entries(path, markers, known, Path(scratch))
        summary.skipped = found.skipped
        for item in found.skipped:
            if on_warning:
                on_warning(f"not graded: {item}")
        groups = _group_by_assignment(found.entries, rubrics, assignment, path)
        todo: list[tuple[Grader, Entry]] = []
        folders: dict[int, str] = {}
        for name, entries in groups.items():
            grader = stack.enter_context(Grader(name, options, course))
            _ = grader.dataset  # load once up front: a missing dataset fails before any grading
            if grader.dataset_warning and on_warning:
                on_warning(f"{name}: {grader.dataset_warning}")
            for entry in entries:
                previous = None if force else _reusable(grader, entry, out_dir / entry.out_name,
                                                        any_sandbox=cluster is not None and not options.sandbox)
                if previous is None:
                    todo.append((grader, entry))
                else:
                    summary.results.append(previous)
                    folders[id(previous)] = entry.out_name
        summary.reused = len(summary.results)
        client = None
        if cluster is not None and todo:
            connecting = time.monotonic()
            client = stack.enter_context(_connect(cluster))
            summary.jobs = _cluster_workers(client)
            summary.cluster_seconds = time.monotonic() - connecting
        else:
            summary.jobs = max(1, min(jobs or default_jobs(), len(todo)))
        if on_plan:
            on_plan(len(todo), summary.reused, summary.jobs)
        try:
            _run(todo, out_dir, summary, folders, progress, client, cluster)
        except KeyboardInterrupt:
            kill_descendants()  # probes run in their own sessions: Ctrl-C does not reach them
            raise
        out_dir.mkdir(parents=True, exist_ok=True)
        write_identities({e.name: e.canvas_id for e in found.entries if e.canvas_id}, out_dir)
        summary.similarity = _similarity(groups, rubrics, course, out_dir, similarity, boilerplate)  # needs the files
    write_outputs(summary.results, out_dir, folders=folders)
    summary.seconds = time.monotonic() - started
    return summary


def _run(todo: list[tuple[Grader, Entry]], out_dir: Path, summary: BatchSummary, folders: dict[int, str],
         progress: Progress | None, client=None, cluster: ClusterSpec | None = None) -> None:
    """Grade `todo`, in summary.jobs forked workers when that is more than one, or on the
    Dask cluster of `client` (whose workers prepare their own Graders)."""
    started = time.monotonic()
    for grader in {id(g): g for g, _ in todo}.values() if client is None else ():
        grader.prepare()  # dataset exported and reference outputs computed once, before forking
    summary.prepare_seconds = time.monotonic() - started
    started = time.monotonic()  # the progress rate and ETA count grading only

    def work(i: int) -> Result:
        grader, entry = todo[i]
        return _grade_entry(grader, entry, out_dir / entry.out_name)

    def lost(i: int, reason: str) -> Result:
        grader, entry = todo[i]
        result = _ungradable(grader, entry, reason)
        result.grading_hash = grading_hash(grader)
        _write(result, out_dir / entry.out_name)
        return result

    def done(i: int, result: Result) -> None:
        summary.results.append(result)
        folders[id(result)] = todo[i][1].out_name
        if progress:
            progress(len(summary.results) - summary.reused, len(todo), todo[i][1].name, time.monotonic() - started)

    if client is not None:
        from .cluster import grade_on_cluster

        def arrived(i: int, graded) -> None:
            out = out_dir / todo[i][1].out_name
            _write_files(graded.files, out)  # figures, executed notebook: before the report that links them
            _write(graded.result, out)
            summary.prepare_seconds = max(summary.prepare_seconds, graded.prepare_seconds)
            done(i, graded.result)

        hashes = {g.rubric.assignment: grading_hash(g) for g, _ in todo}
        grade_on_cluster(client, todo, cluster.data_dir, hashes, arrived, lambda i, why: done(i, lost(i, why)))
    else:
        # Even with one worker the grading happens in a forked worker, never in this process, which
        # writes the results: a submission that kills its grading (its probe's or kernel's ancestors)
        # costs a worker, is graded once more, and the second time gets a row that says so.
        run_pool(len(todo), summary.jobs, work, done, lost, warmup=plots.preload)  # for the histogram


def _similarity(groups: dict[str, list[Entry]], rubrics: dict[str, Rubric], course: CourseDir, out_dir: Path,
                enabled: bool | None, boilerplate: tuple[Path, ...]) -> SimilarityReport | None:
    if enabled is None:
        enabled = sum(len(entries) for entries in groups.values()) > 1
    if not enabled:
        clear_similarity(out_dir)
        return None
    students = {name: {e.name: e.path for e in entries if not e.error} for name, entries in groups.items()}
    return analyse_batch(students, {name: rubrics[name].owned for name in groups},
                         {name: course.template(name) for name in groups}, out_dir, boilerplate)


def _connect(cluster: ClusterSpec):
    try:
        from .cluster import connect
    except ImportError as exc:
        raise GraderError(str(exc)) from exc
    return connect(cluster)


def _cluster_workers(client) -> int:
    from .cluster import worker_count

    return worker_count(client)


def _write_files(files: dict[str, bytes], out: Path) -> None:
    for rel, data in files.items():
        target = out / rel
        if out.resolve() not in target.resolve().parents:
            continue  # our own worker code never sends one; a path outside is dropped, not followed
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)


def _group_by_assignment(entries: list[Entry], rubrics: dict[str, Rubric], assignment: str | None,
                         path: Path) -> dict[str, list[Entry]]:
    """Submissions per assignment. One whose files name no assignment (nothing handed in, files
    misnamed, a zip that could not be read) is graded as the assignment most of the class
    handed in, so it gets a row."""
    if assignment:
        return {assignment: entries}
    detected = {id(e): None if e.error else _assignment_of_files(e.path, rubrics) for e in entries}
    known = [a for a in detected.values() if a]
    if not known:
        raise GraderError(f"cannot tell which assignment {path} is; pass --assignment ({', '.join(rubrics)})")
    majority = max(sorted(set(known)), key=known.count)
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(detected[id(entry)] or majority, []).append(entry)
    return groups


def _assignment_of_files(path: Path, rubrics: dict[str, Rubric]) -> str | None:
    return next((name for name, r in rubrics.items() if looks_like_submission(path, r.detect)), None)


def _reusable(grader: Grader, entry: Entry, out: Path, any_sandbox: bool = False) -> Result | None:
    """The earlier result in `out` when it was made from the same files with the same rubric,
    grader version and code, dataset and sandbox level (its report is re-rendered if it went
    missing). `any_sandbox`: on a cluster with no --sandbox each worker uses the strongest level
    its node offers, which the driver cannot know: the level the result names is kept."""
    try:
        previous = Result.read_json(out / "result.json")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    same = (bool(entry.content_hash) and previous.content_hash == entry.content_hash
            and previous.rubric_hash == grader.rubric.sha256 and previous.grader_version == __version__
            and previous.grading_hash == grading_hash(grader)
            and previous.assignment == grader.rubric.assignment and previous.submission == entry.name)
    if previous.error:
        same = same and not previous.error.startswith(RETRY_ERRORS)
    else:
        same = same and (any_sandbox or previous.sandbox == grader.sandbox.name) and (
            grader.dataset is None or previous.dataset == grader.dataset.description)
    if not same:
        return None
    if not (out / "report.html").is_file():
        write_report(previous, out)
    return previous


def _grade_one(grader: Grader, folder: Path, out: Path | None) -> Result:
    """One submission folder, no layout handling (the student self-check, the Gradescope run).
    Graded in a forked worker (see _run): this process always has a result to return."""
    entry = Entry(folder.name, folder, "folder")
    try:
        entry.content_hash = load_submission(folder).content_hash
    except GraderError as exc:
        entry.error = str(exc)
    got: list[Result] = []

    def lost(_: int, reason: str) -> Result:
        result = _ungradable(grader, entry, reason)
        if out is not None:
            _write(result, out)
        return result

    run_pool(1, 1, lambda _: _grade_entry(grader, entry, out), lambda _, result: got.append(result), lost)
    return got[0]


def _grade_entry(grader: Grader, entry: Entry, out: Path | None) -> Result:
    """Never raises for a bad submission: a submission that cannot be graded becomes a result
    with `error` set and zero points, so a batch always finishes. Written to `out` as soon as
    it is done: report.html first, result.json last and atomically (a re-run trusts only a
    complete result.json)."""
    if entry.error:
        result = _ungradable(grader, entry, entry.error)
    else:
        try:
            result = grader.grade(entry.path, out_dir=out)
            result.notes = entry.notes + result.notes + _provided_notes(grader, result)
        except GraderError as exc:
            result = _ungradable(grader, entry, str(exc))
        except Exception as exc:  # noqa: BLE001 - one broken submission must not stop a batch
            result = _ungradable(grader, entry, f"internal error while grading: {type(exc).__name__}: {exc}")
        result.submission = entry.name
        result.content_hash = entry.content_hash
    result.grading_hash = grading_hash(grader)
    if out is not None:
        _write(result, out)
    return result


def _write(result: Result, out: Path) -> None:
    write_report(result, out)
    result.write_json(out / "result.json")


def grading_hash(grader: Grader) -> str:
    """The grader's own code, the assignment's reference and course files, and the options that
    change outcomes (time limits, notebook execution, ...), hashed: a version number alone
    would let a re-run keep results that a fixed check, probe or reference would now score
    differently. Sandbox and dataset are compared on their own (by name and description)."""
    package = Path(__file__).resolve().parent
    options = {k: v for k, v in dataclasses.asdict(grader.options).items()
               if k not in ("sandbox", "dataset", "data_dir", "download", "runner")}  # runner: same points
    code = _tree_hash((package, "*.py"), (grader.course.reference(grader.rubric.assignment), "*"),
                      *((path, "") for path in grader.provided_files().values()))
    return hashlib.sha256(f"{code}\0{sorted(options.items())!r}".encode()).hexdigest()


@functools.cache
def _tree_hash(*trees: tuple[Path, str]) -> str:
    digest = hashlib.sha256()
    for root, pattern in trees:
        files = sorted(root.rglob(pattern)) if pattern else [root]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(root).as_posix() if pattern else path.name  # not where the checkout lives
                digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _provided_notes(grader: Grader, result: Result) -> list[str]:
    """Course files the student handed in changed: graded with the course's copy, said so."""
    notes = []
    for rel, trusted in grader.provided_files().items():
        if rel in result.files and trusted.is_file() and \
                result.files[rel] != hashlib.sha256(trusted.read_bytes()).hexdigest():
            notes.append(f"{rel} differs from the course's copy: the grader used the course's")
    return notes


def _ungradable(grader: Grader, entry: Entry, reason: str) -> Result:
    questions = [QuestionResult(q.id, q.title, q.points, q.manual, None if q.manual else 0.0,
                                model_answer=q.model_answer) for q in grader.rubric.questions]
    return Result(submission=entry.name, assignment=grader.rubric.assignment, questions=questions,
                  content_hash=entry.content_hash, rubric_hash=grader.rubric.sha256, grader_version=__version__,
                  sandbox=grader.sandbox.name, sandbox_limitations=grader.sandbox.limitations,
                  notes=list(entry.notes), error=reason)


def fetch_dataset(name: str, data_dir: Path | None = None) -> str:
    """Download `name` into the data folder when it is not there yet (MNIST from OpenML,
    CIFAR-100 from its official archive) and load it once to check it; returns its description."""
    if name not in LOADERS:
        raise GraderError(f"unknown dataset {name!r}; choose from {', '.join(LOADERS)}")
    return LOADERS[name](Path(data_dir) if data_dir else DEFAULT_DATA_DIR, True).description
