"""The notebook's figures for the report: PNG outputs of the cells the grader ran, and the
saved ones of cells it did not run (marked as such)."""
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from grader.notebooks.kernel import ExecutionReport

MAX_FIGURES = 24


MAX_FIGURE_BYTES = 2 * 1024**2


PNG = b"\x89PNG\r\n\x1a\n"


def notebook_figures(saved: Any, report: ExecutionReport | None, out_dir: Path) -> dict[str, str]:
    """PNG figures: from the cells the grader executed, and (marked as such) the saved ones of
    cells it did not run. Only real PNG data is written, at most MAX_FIGURES."""
    runs = report.by_index() if report else {}
    figures: dict[str, str] = {}
    folder = out_dir / "notebook-figures"
    for index, cell in enumerate(saved.cells):
        if cell.get("cell_type") != "code":
            continue
        run = runs.get(index)
        executed = run is not None and run.status in ("ok", "error", "timeout", "died")
        outputs = run.outputs if executed else cell.get("outputs", [])
        images = [o["data"]["image/png"] for o in outputs
                  if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
        for k, data in enumerate(images, 1):
            if len(figures) >= MAX_FIGURES:
                return figures
            try:
                raw = base64.b64decode("".join(data) if isinstance(data, list) else data, validate=False)
            except (ValueError, TypeError):
                continue
            if not raw.startswith(PNG) or len(raw) > MAX_FIGURE_BYTES:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            file = folder / f"cell{index + 1}-{k}.png"
            file.write_bytes(raw)
            where = "re-run by the grader" if executed else "as saved in the submission (not re-run)"
            figures[f"notebook cell {index + 1}" + (f" ({k})" if len(images) > 1 else "") + f", {where}"] = \
                file.relative_to(out_dir).as_posix()
    return figures
