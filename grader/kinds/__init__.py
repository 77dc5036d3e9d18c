"""Generic check kinds: any rubric can use them without new Python (see each module's
docstring for its rubric parameters). They run in the generic probe (grader/probes/generic.py)
and score in the parent, like an assignment's own kinds (grader/assignments/<probe>.py)."""
from __future__ import annotations

import importlib

from grader.kinds.base import Kind
from grader.errors import RubricError
from grader.kinds import function, numeric_gradient, returned_values

GENERIC: dict[str, Kind] = {
    "function": function.KIND,
    "numeric_gradient": numeric_gradient.KIND,
    "returned_values": returned_values.KIND,
}


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
