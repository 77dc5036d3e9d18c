"""Grading one submission: plan the probe tasks every check needs, run them in the sandbox
against the student's code (and, once per run, against the reference), score in the parent."""
from __future__ import annotations

import importlib
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import __version__
from .checks import Context, Kind, Outcome
from .course import CourseDir, find_course
from .data import Dataset, resolve_dataset
from .errors import GraderError
from .notebook_grading import grade_notebook, validate_mode
from .plots import render_figures
from .probe import Task, TaskOutput, run_probe
from .results import CheckResult, QuestionResult, Result
from .rubric import CheckSpec, Rubric, load_rubric
from .sandbox import choose_sandbox
from .submission import Submission, load_submission, make_working_copy


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


class Grader:
    """Grades submissions of one assignment. Holds what is shared across submissions: the
    rubric, the dataset (loaded once) and the reference outputs (computed once)."""

    def __init__(self, assignment: str, options: GradeOptions = GradeOptions(), course: CourseDir | None = None):
        self.course = course or find_course()
        if assignment not in self.course.assignments():
            raise GraderError(f"unknown assignment {assignment!r}; known: {', '.join(self.course.assignments())}")
        self.rubric: Rubric = load_rubric(self.course.rubric(assignment))
        self.kinds: dict[str, Kind] = importlib.import_module(f"grader.assignments.{self.rubric.probe}").KINDS
        for check in self.rubric.checks():
            if check.kind not in self.kinds:
                raise GraderError(f"rubric {assignment}: check {check.id} has unknown kind {check.kind!r}")
        self.options = options
        validate_mode(options.execute)
        self.sandbox = choose_sandbox(options.sandbox)
        self._scratch = Path(tempfile.mkdtemp(prefix="mlp-grader-"))
        self._dataset: Dataset | None = None
        self.dataset_warning = ""
        self._reference: dict[str, TaskOutput] = {}

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ selection

    def selected(self, check: CheckSpec) -> bool:
        if self.options.public_only and check.visibility != "public":
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
        self._reference_outputs(checks, plans, ctx)
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
        outputs = self._run_student(sub, plans, ctx, result) if not missing else {}
        reference = self._reference_outputs(checks, plans, ctx)
        probe_seconds = time.monotonic() - started
        artifacts = {}
        for question in self.rubric.questions:
            qr = QuestionResult(question.id, question.title, question.points, question.manual,
                                None if question.manual else 0.0, model_answer=question.model_answer)
            for check in question.checks:
                outcome = self._score(check, ctx, plans, outputs, reference, missing)
                cr = CheckResult(check.id, question.id, check.title, round(outcome.fraction * check.points, 4),
                                 check.points, outcome.resolved_status(), outcome.message, check.visibility,
                                 outcome.details)
                qr.checks.append(cr)
                qr.points = round((qr.points or 0.0) + cr.points, 4)
                if outcome.artifacts:
                    artifacts[check.id] = outcome.artifacts
                result.flags += [f"{check.id}: {flag}" for flag in outcome.flags]
            result.questions.append(qr)
        if out_dir is not None:
            result.figures = render_figures(artifacts, out_dir)
        if self.rubric.notebook:  # after the probes: the notebook's claims are compared with their results
            grade_notebook(self, sub, ctx, result, out_dir)
        # update, not replace: _run_student has already put "student_code" there
        result.timings.update({"probes": round(probe_seconds, 3), "total": round(time.monotonic() - started, 3)})
        return result

    def _run_student(self, sub: Submission, plans: dict[str, list[Task]], ctx: Context,
                     result: Result) -> dict[str, TaskOutput]:
        tasks = [Task(id="import", fn="import_module", timeout=20.0, gate=True)] + unique_tasks(plans)
        tasks = [replace(t, timeout=t.timeout * self.options.timeout_scale) for t in tasks]
        with tempfile.TemporaryDirectory(dir=self._scratch) as tmp:
            work = make_working_copy(sub, Path(tmp) / "work", self.provided_files())
            outputs = run_probe(work, self.rubric.probe, tasks, self.sandbox,
                                data_dir=self._data_dir(tasks, ctx), scratch=self._scratch)
        gate = outputs["import"]
        if not gate.ok:
            main = self.rubric.detect[0] if self.rubric.detect else "the code"
            reason = f"{main} could not be imported: {gate.reason()}"
            result.notes.append(reason)
            for task in tasks[1:]:
                outputs[task.id] = TaskOutput(task.id, "error", detail=reason, error=gate.error, not_run=True)
        result.timings["student_code"] = round(sum(o.seconds for o in outputs.values()), 3)
        return outputs

    def _reference_outputs(self, checks: list[CheckSpec], plans: dict[str, list[Task]],
                           ctx: Context) -> dict[str, TaskOutput]:
        wanted = unique_tasks({c.id: plans[c.id] for c in checks if self.kinds[c.kind].reference})
        todo = [t for t in wanted if t.id not in self._reference]
        if todo:
            ref_dir = self.course.reference(self.rubric.assignment)
            with tempfile.TemporaryDirectory(dir=self._scratch) as tmp:
                work = make_working_copy(load_submission(ref_dir), Path(tmp) / "work", self.provided_files())
                outputs = run_probe(work, self.rubric.probe, todo, self.sandbox,
                                    data_dir=self._data_dir(todo, ctx), scratch=self._scratch)
            broken = [o for o in outputs.values() if not o.ok]
            if broken:
                raise GraderError(f"the reference solution failed task {broken[0].id}: {broken[0].reason()}")
            self._reference.update(outputs)
        return self._reference

    def _score(self, check: CheckSpec, ctx: Context, plans, outputs, reference, missing) -> Outcome:
        if not self.selected(check):
            why = "hidden check: graded later" if check.visibility == "hidden" else "training check: run with --full"
            return Outcome(0.0, f"not run ({why})", status="skipped")
        if missing:
            return Outcome(0.0, f"not run: {', '.join(missing)} missing from the submission", status="error")
        try:
            return self.kinds[check.kind].score(check, ctx, outputs, reference)
        except Exception as exc:  # a grader bug must cost one check, not the batch
            return Outcome(0.0, f"the grader could not score this check ({type(exc).__name__}: {exc})",
                           status="error")

    def provided_files(self) -> dict[str, Path]:
        """Course files, from the template (identical to the reference's; a student kit has no
        reference)."""
        template = self.course.template(self.rubric.assignment)
        return {rel: template / rel for rel in self.rubric.provided}

    def _data_dir(self, tasks: list[Task], ctx: Context) -> Path | None:
        if not any(t.needs_data for t in tasks):
            return None
        return ctx.dataset.export_for_probe(self._scratch / f"data-{ctx.dataset.name}")


def unique_tasks(plans: dict[str, list[Task]]) -> list[Task]:
    """Tasks in plan order, each id once: checks that need the same run share it."""
    seen: dict[str, Task] = {}
    for tasks in plans.values():
        for task in tasks:
            if task.id in seen and seen[task.id].params != task.params:
                raise GraderError(f"two checks plan task {task.id} with different parameters")
            seen.setdefault(task.id, task)
    return list(seen.values())
