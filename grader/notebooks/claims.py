"""The numbers a notebook's saved outputs claim (a printed loss, an accuracy), read as text,
and whether they agree with what the probes reproduced from the submitted code."""
from __future__ import annotations

from typing import Any

from grader.notebooks.config import Claim, NotebookConfig
from grader.notebooks.kernel import ExecutionReport
from grader.notebooks.matching import TemplateCell
from grader.results import CheckResult, Result


def output_text(cell: Any) -> str:
    """What a code cell printed: its streams and plain-text results, in order."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream" and out.get("name") != "grader-truncated":
            text = out.get("text", "")
            parts.append("".join(text) if isinstance(text, list) else str(text))
        elif kind in ("execute_result", "display_data"):
            plain = out.get("data", {}).get("text/plain", "")
            parts.append(("".join(plain) if isinstance(plain, list) else str(plain)) + "\n")
    return "".join(parts)


def claim_cell(cells: list[Any], template: list[TemplateCell], matches: dict[int, int], claim: Claim) -> int | None:
    """The submitted cell that prints the claim: the match of the template cell the claim
    names, else the first submitted code cell whose source matches."""
    if claim.cell is None:
        return None
    for t in template:
        if t.cell_type == "code" and claim.cell.search(t.source) and t.index in matches:
            return matches[t.index]
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and claim.cell.search(cell.get("source", "")):
            return i
    return None


def read_claim(cell: Any, claim: Claim) -> dict[str, float]:
    """key -> value for every match of the claim's output pattern ("" when there is no key)."""
    values: dict[str, float] = {}
    for match in claim.output.finditer(output_text(cell)):
        groups = match.groupdict()
        raw = groups.get("value") or (match.group(1) if match.re.groups else match.group(0))
        try:
            values[groups.get("key") or ""] = float(raw) * claim.scale
        except (TypeError, ValueError):
            continue
    return values


def agrees(claim: Claim, claimed: float, reproduced: float) -> bool:
    if claimed != claimed or reproduced != reproduced:  # nan on either side
        return claimed != claimed and reproduced != reproduced
    if claim.compare == "absolute":
        return abs(claimed - reproduced) <= claim.tolerance
    if claim.compare == "error":  # error sizes vary run to run: only which side of the bound matters
        return (claimed <= claim.tolerance) == (reproduced <= claim.tolerance)
    return abs(claimed - reproduced) <= claim.tolerance * max(abs(reproduced), 1e-12)


def record_claims(result: Result, config: NotebookConfig, template: list[TemplateCell], matches: dict[int, int],
            saved: Any, executed: Any | None, report: ExecutionReport | None, ctx: Any) -> None:
    """Numbers the saved outputs claim vs what the probes reproduced (and what re-execution
    printed). Flags only; points never depend on the notebook's outputs."""
    checks = {c.id: c for c in result.checks()}
    ran = {c.index for c in report.cells if c.status in ("ok", "error")} if report else set()
    rows = result.notebook["claims"]
    for claim in config.claims:
        index = claim_cell(saved.cells, template, matches, claim)
        if index is None:
            continue
        claimed = read_claim(saved.cells[index], claim)
        again = read_claim(executed.cells[index], claim) if executed is not None and index in ran else {}
        for key in sorted(set(claimed) | set(again)):
            row = _compare(claim, key, claimed.get(key), again.get(key), checks.get(claim.check), ctx, index + 1)
            rows.append(row)
            if row["status"] == "mismatch":
                result.flags.append(row["note"])


def _compare(claim: Claim, key: str, claimed: float | None, executed: float | None, check: CheckResult | None,
             ctx: Any, cell: int) -> dict[str, Any]:
    label = claim.label + (f" ({key})" if key else "")
    row: dict[str, Any] = {"label": label, "cell": cell, "claimed": claimed, "executed": executed,
                           "reproduced": None, "check": claim.check, "status": "not compared", "note": ""}
    reproduced, why = _reproduced(claim, key, check, ctx)
    row["reproduced"] = reproduced
    if claimed is None:
        row["note"] = "the submitted notebook shows no value (saved without outputs?)"
        return row
    if reproduced is not None:
        if agrees(claim, claimed, reproduced):
            row["status"], row["note"] = "match", ""
        else:
            row["status"] = "mismatch"
            row["note"] = (f"notebook cell {cell} shows {label} {claimed:.6g}; the submitted code reproduces "
                           f"{reproduced:.6g} (check {claim.check})")
        return row
    if why.startswith("fails:"):
        row["status"] = "mismatch"
        row["note"] = (f"notebook cell {cell} shows {label} {claimed:.6g}, but the submitted code {why[6:]} "
                       f"(check {claim.check})")
        return row
    if executed is not None and not agrees(claim, claimed, executed):
        row["status"] = "mismatch"
        row["note"] = (f"notebook cell {cell} shows {label} {claimed:.6g}; re-running the notebook prints "
                       f"{executed:.6g}")
        return row
    row["note"] = why
    return row


def _reproduced(claim: Claim, key: str, check: CheckResult | None, ctx: Any) -> tuple[float | None, str]:
    if check is None:
        return None, f"check {claim.check} is not in this grading run"
    if claim.dataset and getattr(ctx.dataset, "name", "") != claim.dataset:
        have = getattr(ctx.dataset, "name", "") or "no dataset"
        return None, (f"not comparable: the notebook used {claim.dataset}, the grader trained on {have}")
    if check.status == "skipped":
        return None, f"check {claim.check} was not run ({check.message})"
    if check.status in ("error", "timeout"):
        return None, "fails:" + ("times out" if check.status == "timeout" else "raises an error") + " in this check"
    value: Any = check.details.get(claim.field)
    if isinstance(value, dict):  # e.g. relative_errors = {"W1": ..., "b1": ...}
        part = key or claim.key
        value = value.get(part) if part else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"check {claim.check} reported no value to compare"
    return number, ""
