"""`mlp-grader diff OLD NEW`: what changed between two gradings of a class (two OUT folders, or
OUT and one of its history runs), per student the total before and after and, per changed check,
the points before and after, with the reasons the two results themselves record: the
submission's content hash, the rubric's hash, the grader's version and code, the dataset, the
sandbox level and the late decision. Unchanged students are counted, not listed."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grader.files import SpreadsheetSafeWriter, atomic_write, replacing
from grader.reporting.render import ENV
from grader.results import Result, format_points

EPSILON = 1e-9


@dataclass
class CheckChange:
    check: str
    question: str
    before: float | None  # None: not in that run's result (a check added or removed)
    after: float | None
    status_before: str
    status_after: str
    why: str = ""  # "its rubric entry changed" when the results' check_specs say so


@dataclass
class StudentChange:
    student: str
    folder: str
    total_before: float
    total_after: float
    reasons: list[str]
    checks: list[CheckChange] = field(default_factory=list)


@dataclass
class RunDiff:
    old: Path
    new: Path
    changed: list[StudentChange] = field(default_factory=list)
    unchanged: int = 0
    only_old: list[str] = field(default_factory=list)  # result folders in OLD alone
    only_new: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changed and not self.only_old and not self.only_new

    def describe(self) -> list[str]:
        """The diff as lines of text (what `mlp-grader diff` prints)."""
        lines = []
        for s in self.changed:
            lines.append(f"{s.student}: {format_points(s.total_before)} → {format_points(s.total_after)} "
                         f"({'; '.join(s.reasons)})")
            lines += [f"  {c.check}: {format_points(c.before)} → {format_points(c.after)}"
                      + (f" ({c.why})" if c.why else "") for c in s.checks]
        lines += [f"{name}: only in {self.old}" for name in self.only_old]
        lines += [f"{name}: only in {self.new}" for name in self.only_new]
        lines.append(f"{len(self.changed)} changed, {self.unchanged} unchanged")
        return lines


def read_run(folder: Path) -> dict[str, Result]:
    """folder name -> result for each <folder>/<name>/result.json that reads."""
    results = {}
    for path in sorted(Path(folder).glob("*/result.json")):
        try:
            results[path.parent.name] = Result.read_json(path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return results


def diff_runs(old: Path, new: Path) -> RunDiff:
    """Compare two runs. A history run holds only the students it replaced: when one side is a
    history run, students missing from it are not listed as added or removed."""
    before, after = read_run(old), read_run(new)
    found = RunDiff(Path(old), Path(new))
    partial = _is_history(old) or _is_history(new)
    if not partial:
        found.only_old = sorted(set(before) - set(after))
        found.only_new = sorted(set(after) - set(before))
    for name in sorted(set(before) & set(after)):
        change = compare(name, before[name], after[name])
        if change is None:
            found.unchanged += 1
        else:
            found.changed.append(change)
    return found


def compare(folder: str, old: Result, new: Result) -> StudentChange | None:
    """The change of one student, or None when the total and every check's points and status are the same."""
    checks = []
    old_checks, new_checks = {c.id: c for c in old.checks()}, {c.id: c for c in new.checks()}
    for check_id in [*old_checks, *(c for c in new_checks if c not in old_checks)]:
        a, b = old_checks.get(check_id), new_checks.get(check_id)
        if a and b and abs(a.points - b.points) <= EPSILON and a.status == b.status:
            continue
        spec_before, spec_after = old.check_specs.get(check_id), new.check_specs.get(check_id)
        why = ("its rubric entry changed" if spec_before and spec_after and spec_before != spec_after else
               "new in the rubric" if a is None else "gone from the rubric" if b is None else "")
        checks.append(CheckChange(check_id, (a or b).question, a.points if a else None, b.points if b else None,
                                  a.status if a else "", b.status if b else "", why))
    if not checks and abs(old.total_points - new.total_points) <= EPSILON and old.error == new.error:
        return None
    return StudentChange(new.submission, folder, old.total_points, new.total_points, reasons(old, new), checks)


def reasons(old: Result, new: Result) -> list[str]:
    """Why the two results can differ, from what each records."""
    why = []
    if old.content_hash != new.content_hash:
        why.append("submission changed")
    if old.rubric_hash != new.rubric_hash:
        why.append("rubric changed")
    if old.grader_version != new.grader_version:
        why.append(f"grader version changed ({old.grader_version or '?'} → {new.grader_version or '?'})")
    elif old.grading_hash != new.grading_hash:
        why.append("grader code, reference or grading options changed")
    if old.dataset != new.dataset:
        why.append(f"dataset changed ({old.dataset or 'none'} → {new.dataset or 'none'})")
    if old.sandbox != new.sandbox:
        why.append(f"sandbox level changed ({old.sandbox} → {new.sandbox})")
    if old.late.get("policy") != new.late.get("policy"):
        why.append("late policy changed")
    elif old.late != new.late:
        why.append("late decision changed (submission time, extension or bank)")
    if old.error != new.error:
        why.append("could not be graded" if new.error else "graded now (could not be graded before)")
    return why or ["nothing the results record changed (a check that varies between runs?)"]


def write_diff(found: RunDiff, folder: Path) -> tuple[Path, Path]:
    """diff.html and diff.csv in `folder`; returns their paths."""
    folder = Path(folder)
    csv_path = folder / "diff.csv"
    with replacing(csv_path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = SpreadsheetSafeWriter(fh)
        writer.writerow(["student", "total before", "total after", "check", "points before", "points after",
                         "status before", "status after", "why"])
        for s in found.changed:
            for c in s.checks or [None]:
                why = "; ".join([c.why] + s.reasons if c is not None and c.why else s.reasons)
                writer.writerow([s.student, format_points(s.total_before), format_points(s.total_after),
                                 *(["", "", "", "", ""] if c is None else
                                   [c.check, format_points(c.before), format_points(c.after), c.status_before,
                                    c.status_after]), why])
    html = ENV.get_template("diff.html.j2").render(d=found)
    return atomic_write(folder / "diff.html", html), csv_path


def _is_history(folder: Path) -> bool:
    return Path(folder).resolve().parent.name == "history"
