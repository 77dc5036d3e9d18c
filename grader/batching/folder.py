"""Grading a folder of submissions: intake (any layout), reuse of valid earlier results, the
local pool or a Dask cluster, the similarity flags, the gradebooks and the class summary.
`grader.api.grade_folder` is its public entry point."""
from __future__ import annotations

import dataclasses
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from grader.batching.history import archive
from grader.batching.jobs import grade_entry, grading_hash, reusable, ungradable, write_files, write_result
from grader.batching.late import LateOptions, LatePlan, plan_late
from grader.batching.layouts import Entry, discover_entries
from grader.batching.pool import default_jobs, kill_descendants, run_pool
from grader.course import CourseDir, find_course
from grader.errors import GraderError
from grader.grading.engine import GradeOptions, Grader
from grader.reporting import plots
from grader.reporting.gradebooks import write_canvas_names, write_identities
from grader.reporting.similarity import SimilarityReport, analyse_batch, clear as clear_similarity
from grader.reporting.summary import write_outputs
from grader.results import Result
from grader.rubric import Rubric, load_rubric
from grader.submission import looks_like_submission

if TYPE_CHECKING:
    from grader.batching.cluster_config import ClusterSpec

Progress = Callable[[int, int, str, float], None]  # done, total, submission name, elapsed seconds


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
    archived: Path | None = None  # OUT/history/<run>: the results this run replaced

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.error]


@dataclass
class FolderRun:
    """What grader.api.grade_folder was asked to do (its docstring says what each field means)."""
    path: Path
    out_dir: Path
    assignment: str | None = None
    options: GradeOptions = field(default_factory=GradeOptions)
    progress: Progress | None = None
    on_warning: Callable[[str], None] | None = None
    jobs: int | None = None
    force: bool = False
    on_plan: Callable[[int, int, int], None] | None = None
    similarity: bool | None = None
    boilerplate: tuple[Path, ...] = ()
    cluster: ClusterSpec | None = None
    late: LateOptions = field(default_factory=LateOptions)


def grade_folder(run: FolderRun) -> BatchSummary:
    """Grade a folder of submissions into run.out_dir (see grader.api.grade_folder)."""
    path, out_dir, assignment, options = Path(run.path), Path(run.out_dir), run.assignment, run.options
    progress, on_warning, cluster = run.progress, run.on_warning, run.cluster
    started = time.monotonic()
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
        # every late-policy input is checked (and git clones snapshotted at --at) before any grading
        everyone = {e.name for e in found.entries}
        plans: list[LatePlan] = [plan_late(rubrics[name], course.rubric(name), entries, run.late, Path(scratch),
                                           everyone) for name, entries in groups.items()]
        replaced: list[str] = []  # folders whose result this run recomputes or re-decides
        todo: list[tuple[Grader, Entry]] = []
        archive_late: list[tuple[Result, Entry]] = []
        folders: dict[int, str] = {}
        for name, entries in groups.items():
            grader = stack.enter_context(Grader(name, options, course))
            _ = grader.dataset  # load once up front: a missing dataset fails before any grading
            if grader.dataset_warning and on_warning:
                on_warning(f"{name}: {grader.dataset_warning}")
            for entry in entries:
                previous = None if run.force else reusable(grader, entry, out_dir / entry.out_name,
                                                        any_sandbox=cluster is not None and not options.sandbox)
                if previous is None:
                    todo.append((grader, entry))
                    replaced.append(entry.out_name)
                else:
                    if previous.late != entry.late:  # same grading, another late decision: no regrade
                        archive_late.append((previous, entry))
                    summary.results.append(previous)
                    folders[id(previous)] = entry.out_name
        summary.reused = len(summary.results)
        summary.archived = archive(out_dir, replaced + [e.out_name for _, e in archive_late])
        for previous, entry in archive_late:
            previous.late = entry.late
            write_result(previous, out_dir / entry.out_name)
        client = None
        if cluster is not None and todo:
            connecting = time.monotonic()
            client = stack.enter_context(_connect(cluster))
            summary.jobs = _cluster_workers(client)
            summary.cluster_seconds = time.monotonic() - connecting
        else:
            summary.jobs = max(1, min(run.jobs or default_jobs(), len(todo)))
        if run.on_plan:
            run.on_plan(len(todo), summary.reused, summary.jobs)
        try:
            _run(todo, out_dir, summary, folders, progress, client, cluster)
        except KeyboardInterrupt:
            kill_descendants()  # probes run in their own sessions: Ctrl-C does not reach them
            raise
        out_dir.mkdir(parents=True, exist_ok=True)
        for plan in plans:
            plan.finish()  # the late-day bank, this assignment's rows replaced
        write_identities({e.name: e.canvas_id for e in found.entries if e.canvas_id}, out_dir)
        write_canvas_names({e.name: e.canvas_prefix for e in found.entries if e.canvas_prefix}, out_dir)
        summary.similarity = _similarity(groups, rubrics, course, out_dir, run.similarity, run.boilerplate)  # needs the files
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
        return grade_entry(grader, entry, out_dir / entry.out_name)

    def lost(i: int, reason: str) -> Result:
        grader, entry = todo[i]
        result = ungradable(grader, entry, reason)
        result.grading_hash = grading_hash(grader)
        write_result(result, out_dir / entry.out_name)
        return result

    def done(i: int, result: Result) -> None:
        summary.results.append(result)
        folders[id(result)] = todo[i][1].out_name
        if progress:
            progress(len(summary.results) - summary.reused, len(todo), todo[i][1].name, time.monotonic() - started)

    if client is not None:
        from grader.batching.cluster import grade_on_cluster

        def arrived(i: int, graded) -> None:
            out = out_dir / todo[i][1].out_name
            write_files(graded.files, out)  # figures, executed notebook: before the report that links them
            graded.result.late = todo[i][1].late
            write_result(graded.result, out)
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
        from grader.batching.cluster import connect
    except ImportError as exc:
        raise GraderError(str(exc)) from exc
    return connect(cluster)


def _cluster_workers(client) -> int:
    from grader.batching.cluster import worker_count

    return worker_count(client)


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
