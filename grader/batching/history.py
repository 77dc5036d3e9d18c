"""Regrades keep their past: before a student's result is recomputed (or its late decision
changes), its result.json and report.html move to OUT/history/<run>/<student>/, and
OUT/history/index.json lists each run with what its results were made with (grader version,
rubric hash, dataset, sandbox), so `mlp-grader diff OUT/history/<run> OUT` can say what changed
and why."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from grader.files import atomic_write
from grader.results import Result

HISTORY = "history"
INDEX = "index.json"
KEPT = ("result.json", "report.html")


def archive(out_dir: Path, folders: list[str], now: datetime | None = None) -> Path | None:
    """Copy the current result of each of `folders` (under out_dir) into a new history run;
    returns the run's folder, or None when none of them had a result yet."""
    present = [name for name in folders if (out_dir / name / "result.json").is_file()]
    if not present:
        return None
    history = out_dir / HISTORY
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    run, n = history / stamp, 1
    while run.exists():
        n += 1
        run = history / f"{stamp}-{n}"
    made: dict[str, set[str]] = {"grader_version": set(), "rubric_hash": set(), "dataset": set(), "sandbox": set()}
    students = []
    for name in present:
        for kept in KEPT:
            if (out_dir / name / kept).is_file():
                (run / name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(out_dir / name / kept, run / name / kept)
        try:
            result = Result.read_json(run / name / "result.json")
        except (OSError, ValueError, TypeError, KeyError):
            students.append({"folder": name, "readable": False})
            continue
        students.append({"folder": name, "student": result.submission, "assignment": result.assignment,
                         "total_points": result.total_points})
        for key in made:
            made[key].add(getattr(result, key))
    entry = {"run": run.name, "archived_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
             **{key: sorted(values) for key, values in made.items()}, "students": students}
    index = read_index(out_dir)
    index.append(entry)
    atomic_write(history / INDEX, json.dumps(index, indent=1))
    return run


def read_index(out_dir: Path) -> list[dict]:
    try:
        data = json.loads((Path(out_dir) / HISTORY / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []
