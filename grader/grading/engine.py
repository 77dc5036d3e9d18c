"""Grading one submission: plan the probe tasks every check needs, run them in the sandbox
against the student's code (and, once per run, against the reference), score in the parent."""
from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from grader import __version__
from grader.course import CourseDir, find_course
from grader.data import Dataset, resolve_dataset
from grader.errors import GraderError, RubricError
from grader.grading.probe import run_probe
from grader.grading.refcache import ReferenceCache, default_folder as default_refcache_folder
from grader.kinds import GENERIC
from grader.kinds.base import Context, Kind, Outcome
from grader.kinds.tasks import Task, TaskOutput
from grader.reporting import plots
from grader.results import CheckResult, QuestionResult, Result
from grader.rubric import CheckSpec, Rubric, load_rubric
from grader.sandbox import choose_sandbox
from grader.submission import Submission, load_submission, make_working_copy


@dataclass(frozen=True)
class GradeOptions:
    sandbox: str | None = None  # None: the strongest level available
    dataset: str = "auto"  # auto, or one of the rubric's [data] datasets
    data_dir: Path | None = None
    download: bool = False
    public_only: bool = False  # a student's self-check: no hidden checks, no reference needed
    skip_data: bool = False  # skip the checks that train on the dataset
    timeout_scale: float = 1.0  # multiplies every probe time limit (slow machines: > 1)
    execute: str = "light"  # the notebook: light (skips the rubric's training cells), full, none
    reference_cache: bool = True  # keep the reference's outputs on disk between runs (see refcache.py)
    runner: str | None = None  # how probes start tasks: fork, spawn (fresh interpreter); None: fork if it exists
    questions: tuple[str, ...] = ()  # only these questions' checks (a notebook's check cell); empty: all


def kinds_for(probe: str) -> dict[str, Kind]:
    """The generic kinds plus the assignment's own (`grader.assignments.<probe>.KINDS`, when
    that module exists: an assignment graded with generic kinds only needs none)."""
    kinds = dict(GENERIC)
    name = f"grader.assignments.{probe}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return kinds
    clash = sorted(set(module.KINDS) & set(GENERIC))
    if clash:
        raise RubricError(f"{name} redefines the generic kinds {', '.join(clash)}")
    kinds.update(module.KINDS)
    return kinds


class Grader:
    """Grades submissions of one assignment. Holds what is shared across submissions: the
    rubric, the dataset (loaded once) and the reference outputs (computed once)."""

    def __init__(self, assignment: str, options: GradeOptions = GradeOptions(), course: CourseDir | None = None):
        self.course = course or find_course()
        if assignment not in self.course.assignments():
            raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(self.course.assignments())}")
        self.rubric: Rubric = load_rubric(self.course.rubric(assignment))
        self.kinds: dict[str, Kind] = kinds_for(self.rubric.probe)
        for check in self.rubric.checks():
            if check.kind not in self.kinds:
                raise GraderError(f"rubric {assignment}: check {check.id} has unknown kind {check.kind!r}")
        self.options = options
        known = [q.id for q in self.rubric.questions]
        unknown = [q for q in options.questions if q not in known]
        if unknown:
            raise GraderError(f"unknown question {unknown[0]!r} in {assignment}; valid: {', '.join(known)}")
        self._asked = {c.id for q in self.rubric.questions if q.id in options.questions for c in q.checks}
        if self.grades_notebook:
            from grader.notebooks.step import validate_mode

            validate_mode(options.execute)
        self.sandbox = choose_sandbox(options.sandbox)
        self.scratch = Path(tempfile.mkdtemp(prefix="mlp-grader-"))  # the dataset export, probe jobs, staged data
        self._dataset: Dataset | None = None
        self.dataset_warning = ""
        self._reference: dict[str, TaskOutput] = {}

    @property
    def grades_notebook(self) -> bool:
        """The notebook (execution, edits, claims, written answers) is the TA's side: a student's
        self-check leaves it out, so it needs neither nbclient nor a kernel (the student kit
        does not install them) and its points never depend on the notebook anyway."""
        return bool(self.rubric.notebook) and not self.options.public_only

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ selection

    def selected(self, check: CheckSpec) -> bool:
        if self.options.questions and check.id not in self._asked:
            return False
        if self.options.public_only and not check.public:
            return False
        return not (self.options.skip_data and check.needs_data)

    @property
    def dataset(self) -> Dataset | None:
        if self._dataset is None and any(c.needs_data and self.selected(c) for c in self.rubric.checks()):
            self._dataset, self.dataset_warning = resolve_dataset(
                self.options.dataset, self.rubric.data, self.options.data_dir, self.options.download)
        return self._dataset

    def use_dataset(self, dataset: Dataset, warning: str = "") -> None:
        """Grade on `dataset`, loaded elsewhere (a cluster worker receives the driver's copy)."""
        self._dataset, self.dataset_warning = dataset, warning

    def context(self, submission: Submission | None = None) -> Context:
        ds = self.dataset
        return Context(dataset=ds, thresholds=self.rubric.thresholds(ds.name) if ds else {},
                       submission=submission, reference_dir=self.course.reference(self.rubric.assignment))

    def prepare(self) -> None:
        """Do once, before a batch forks its workers, what every submission shares: load the
        dataset, export it for the probes to memory-map, and compute the reference outputs of
        the selected checks. Forked workers inherit all three instead of redoing them."""
        ctx = self.context(load_submission(self.course.reference(self.rubric.assignment)))
        checks = [c for c in self.rubric.checks() if self.selected(c)]
        plans = {c.id: self.kinds[c.kind].plan(c, ctx) for c in checks}
        self._reference_outputs(checks, plans, ctx, strict=True)
        self._data_dir(unique_tasks(plans), ctx)

    # ------------------------------------------------------------------ grading

    def grade(self, path: Path, out_dir: Path | None = None) -> Result:
        started = time.monotonic()
        sub = load_submission(path)
        result = Result(submission=sub.name, assignment=self.rubric.assignment, questions=[],
                        files=dict(sub.files), rubric_hash=self.rubric.sha256, grader_version=__version__,
                        sandbox=self.sandbox.name, sandbox_limitations=self.sandbox.limitations)
        result.notes += [f"ignored: {item}" for item in sub.ignored]
        ctx = self.context(sub)
        result.dataset = ctx.dataset.description if ctx.dataset else "none (training checks not run)"
        if self.dataset_warning:
            result.notes.append(self.dataset_warning)
        missing = [f for f in self.rubric.detect if f not in sub.files]
        for name in missing:
            result.notes.append(f"{name} is missing from the submission")
        checks = [c for c in self.rubric.checks() if self.selected(c)]
        plans = {c.id: self.kinds[c.kind].plan(c, ctx) for c in checks}
        # The report's figures: their modules load while the probe's tasks run, and a training
        # run's curves are drawn as soon as it ends (not at all where no check trains: a1).
        curve_plans = {c.id: plans[c.id] for c in checks if self.kinds[c.kind].curves}
        early = plots.EarlyCurves(out_dir) if out_dir is not None and curve_plans else None
        notebook = None
        if self.grades_notebook:  # its kernel starts and its cells run while the probes do
            from grader.notebooks.step import start_notebook

            notebook = start_notebook(self, sub, ctx)
        try:
            self._grade_checks(result, sub, ctx, checks, plans, missing, out_dir, started, early, curve_plans)
        except BaseException:
            if notebook is not None:
                notebook.wait()  # no kernel outlives its submission's grading
            if early is not None:  # nor a drawing thread: the caller may fork next
                early.discard()
            raise
        if notebook is not None:  # after the probes: the notebook's claims are compared with their results
            from grader.notebooks.step import grade_notebook

            grade_notebook(self, sub, ctx, result, out_dir, notebook)
        result.timings["total"] = round(time.monotonic() - started, 3)
        return result

    def _grade_checks(self, result: Result, sub: Submission, ctx: Context, checks: list[CheckSpec],
                      plans: dict[str, list[Task]], missing: list[str], out_dir: Path | None,
                      started: float, early: plots.EarlyCurves | None = None,
                      curve_plans: dict[str, list[Task]] | None = None) -> None:
        """Run the probes (student, reference, follow-ups) and score every question into result.
        `early` draws the curves of `curve_plans`' checks as their tasks end."""
        on_output = _curves_to(early, curve_plans or {}) if early is not None else None
        outputs = self._run_student(sub, plans, ctx, result, on_output) if not missing else {}
        reference = self._reference_outputs(checks, plans, ctx)
        before = time.monotonic()
        followups = self._followups(checks, ctx, outputs)
        if followups:  # a probe over the reference per submission: its wall time, start included
            result.timings["reference_followups"] = round(time.monotonic() - before, 3)
        reference = {**reference, **followups}
        probe_seconds = time.monotonic() - started
        artifacts = {}
        for question in self.rubric.questions:
            qr = QuestionResult(question.id, question.title, question.points, question.manual,
                                None if question.manual else 0.0, model_answer=question.model_answer)
            for check in question.checks:
                outcome = self._score(check, ctx, plans, outputs, reference, missing)
                cr = CheckResult(check.id, question.id, check.title, round(outcome.fraction * check.points, 4),
                                 check.points, outcome.resolved_status(), outcome.message, check.visibility,
                                 outcome.details, check.detail_level, check.student_message,
                                 self._safe_message(check, outcome))
                qr.checks.append(cr)
                qr.points = round((qr.points or 0.0) + cr.points, 4)
                if outcome.artifacts:
                    artifacts[check.id] = outcome.artifacts
                result.flags += [f"{check.id}: {flag}" for flag in outcome.flags]
            result.questions.append(qr)
        if out_dir is not None:
            result.figures = plots.render_figures(artifacts, out_dir, early)
        result.timings["probes"] = round(probe_seconds, 3)

    def _probe_of(self, plans: dict[str, list[Task]]) -> dict[str, str]:
        """Task id -> the probe module it runs in: its kind's own (a generic kind's) or the rubric's."""
        kinds = {c.id: self.kinds[c.kind] for c in self.rubric.checks()}
        return {t.id: kinds[cid].probe or self.rubric.probe for cid, tasks in plans.items() for t in tasks}

    def _run(self, sub: Submission, tasks: list[Task], probe_of: dict[str, str], ctx: Context,
             gate: bool, on_output: Callable[[TaskOutput], None] | None = None) -> dict[str, TaskOutput]:
        """Run `tasks` against `sub`, one probe per probe module; with `gate`, each probe first
        imports the code and its other tasks are not run when that fails. `on_output`: see run_probe."""
        groups: dict[str, list[Task]] = {}
        for task in tasks:
            groups.setdefault(probe_of.get(task.id, self.rubric.probe), []).append(task)
        outputs: dict[str, TaskOutput] = {}
        with tempfile.TemporaryDirectory(dir=self.scratch) as tmp:
            work = make_working_copy(sub, Path(tmp) / "work", self.provided_files())
            for probe, group in groups.items():
                if gate:
                    modules = sorted({t.params["module"] for t in group if "module" in t.params})
                    group = [Task(id=gate_id(probe, self.rubric.probe), fn="import_module",
                                  params={"modules": modules}, timeout=20.0, gate=True)] + group
                group = [replace(t, timeout=t.timeout * self.options.timeout_scale) for t in group]
                outputs.update(run_probe(work, probe, group, self.sandbox, data_dir=self._data_dir(group, ctx),
                                         scratch=self.scratch, runner=self.options.runner,
                                         on_output=on_output))
        return outputs

    def _run_student(self, sub: Submission, plans: dict[str, list[Task]], ctx: Context,
                     result: Result, on_output: Callable[[TaskOutput], None] | None = None
                     ) -> dict[str, TaskOutput]:
        tasks = unique_tasks(plans)
        probe_of = self._probe_of(plans)
        outputs = self._run(sub, tasks, probe_of, ctx, gate=True, on_output=on_output)
        main = self.rubric.detect[0] if self.rubric.detect else "the code"
        for probe in dict.fromkeys(probe_of.get(t.id, self.rubric.probe) for t in tasks):
            gate = outputs[gate_id(probe, self.rubric.probe)]
            if gate.ok:
                continue
            reason = f"{main} could not be imported: {gate.reason()}"
            if reason not in result.notes:
                result.notes.append(reason)
            for task in tasks:
                if probe_of.get(task.id, self.rubric.probe) == probe:
                    outputs[task.id] = TaskOutput(task.id, "error", detail=reason, error=gate.error, not_run=True)
        result.timings["student_code"] = round(sum(o.seconds for o in outputs.values()), 3)
        return outputs

    def _reference_outputs(self, checks: list[CheckSpec], plans: dict[str, list[Task]],
                           ctx: Context, strict: bool = False) -> dict[str, TaskOutput]:
        """The reference's outputs of the checks' tasks. `strict`: a failed task is a GraderError
        (before a batch: the course material is broken); otherwise it is returned as failed."""
        if not self.course.has_reference:
            return {}  # a student kit: its public checks compare with the handout's numbers instead
        wanted = unique_tasks({c.id: plans[c.id] for c in checks if self.kinds[c.kind].needs_reference(c)})
        todo = [t for t in wanted if t.id not in self._reference]
        cache = self._reference_cache(ctx) if todo else None
        if cache is not None:
            found = {t.id: out for t in todo if (out := cache.load(t)) is not None}
            self._reference.update(found)
            todo = [t for t in todo if t.id not in found]
        if todo:
            outputs = self._run(load_submission(self.course.reference(self.rubric.assignment)), todo,
                                self._probe_of(plans), ctx, gate=False)
            broken = [o for o in outputs.values() if not o.ok]
            if broken and strict:
                raise GraderError(f"the reference solution failed task {broken[0].id}: {broken[0].reason()}")
            # Kept for this submission only (the next one tries again): a reference run that
            # depends on the student's settings (TinyNet) and times out costs the checks that
            # need it, not the whole submission (see _score).
            self._reference.update({k: o for k, o in outputs.items() if o.ok})
            if cache is not None:
                for task in todo:
                    cache.store(task, outputs[task.id])
            return {**self._reference, **outputs}
        return self._reference

    def _reference_cache(self, ctx: Context) -> ReferenceCache | None:
        """None where the sandbox level lets student code write outside its own folders."""
        if not (self.options.reference_cache and self.sandbox.confines_writes):
            return None
        ref = load_submission(self.course.reference(self.rubric.assignment))
        context = ReferenceCache.context_digest(
            reference_hash=ref.content_hash, provided=self.provided_files(), rubric_hash=self.rubric.sha256,
            dataset_hash=ctx.dataset.fingerprint() if ctx.dataset else "")
        return ReferenceCache(default_refcache_folder(), context)

    def _followups(self, checks: list[CheckSpec], ctx: Context,
                   outputs: dict[str, TaskOutput]) -> dict[str, TaskOutput]:
        """The reference's code run on what the student's code returned (e.g. fitted parameters
        evaluated with the reference network): per submission, never cached. The kind checks
        the student's data before asking, and scores a failure here (no exception: it would cost
        the whole submission)."""
        plans = {c.id: self.kinds[c.kind].followup(c, ctx, outputs) for c in checks
                 if self.kinds[c.kind].followup and self.selected(c)}
        tasks = unique_tasks(plans)
        if not tasks:
            return {}
        return self._run(load_submission(self.course.reference(self.rubric.assignment)), tasks,
                         self._probe_of(plans), ctx, gate=False)

    def _safe_message(self, check: CheckSpec, outcome: Outcome) -> str:
        """What a student may read of an outcome-only check's message (see Outcome.safe_message);
        "" for a check shown in full, whose whole message is for the student anyway."""
        if check.detail_level == "full":
            return ""
        if outcome.safe_message is not None:
            return outcome.safe_message
        return outcome.message if self.kinds[check.kind].safe_messages else ""

    def _score(self, check: CheckSpec, ctx: Context, plans, outputs, reference, missing) -> Outcome:
        if not self.selected(check):
            if self.options.questions and check.id not in self._asked:
                return Outcome(0.0, "not run (another question)", status="skipped",
                               safe_message="not run (another question)")
            why = "hidden check: graded later" if not check.public else "training check: run with --full"
            return Outcome(0.0, f"not run ({why})", status="skipped", safe_message=f"not run ({why})")
        if missing:
            text = f"not run: {', '.join(missing)} missing from the submission"
            return Outcome(0.0, text, status="error", safe_message=text)
        kind = self.kinds[check.kind]
        if kind.needs_reference(check):
            failed = [reference[t.id] for t in plans[check.id] if t.id in reference and not reference[t.id].ok]
            if failed:
                return Outcome(0.0, f"not graded: the grader's run of the reference solution failed "
                                    f"({failed[0].id}: {failed[0].reason()}); grade again, with --timeout-scale "
                                    "on a slow machine", status="error", details={"error": failed[0].error[-1500:]},
                               safe_message="not graded: a problem on the grader's side; the course staff will "
                                            "grade it again")
        try:
            return kind.score(check, ctx, outputs, reference)
        except Exception as exc:  # a grader bug must cost one check, not the batch
            return Outcome(0.0, f"the grader could not score this check ({type(exc).__name__}: {exc})",
                           status="error", safe_message="not graded: a problem on the grader's side; the "
                                                        "course staff will grade it again")

    def provided_files(self) -> dict[str, Path]:
        """Course files, from the template (identical to the reference's; a student kit has no
        reference)."""
        template = self.course.template(self.rubric.assignment)
        return {rel: template / rel for rel in self.rubric.provided}

    def _data_dir(self, tasks: list[Task], ctx: Context) -> Path | None:
        if not any(t.needs_data for t in tasks):
            return None
        return ctx.dataset.export_for_probe(self.scratch / f"data-{ctx.dataset.name}")


def gate_id(probe: str, rubric_probe: str) -> str:
    return "import" if probe == rubric_probe else f"import-{probe}"


def _curves_to(early: plots.EarlyCurves, plans: dict[str, list[Task]]) -> Callable[[TaskOutput], None]:
    """The student's probe's on_output: a task that returned a loss history has its curves
    drawn, under each check of `plans` (the checks whose kind draws curves) that planned it,
    while the later tasks run."""
    checks_of: dict[str, list[str]] = {}
    for check_id, tasks in plans.items():
        for task in tasks:
            checks_of.setdefault(task.id, []).append(check_id)

    def arrived(out: TaskOutput) -> None:
        early.task_ended()
        if out.ok and "loss_history" in out.arrays:
            for check_id in checks_of.get(out.id, ()):
                early.submit(check_id, out.arrays)
    return arrived


def unique_tasks(plans: dict[str, list[Task]]) -> list[Task]:
    """Tasks in plan order, each id once: checks that need the same run share it."""
    seen: dict[str, Task] = {}
    for tasks in plans.values():
        for task in tasks:
            if task.id in seen and seen[task.id].params != task.params:
                raise GraderError(f"two checks plan task {task.id} with different parameters")
            seen.setdefault(task.id, task)
    return list(seen.values())
