"""Generic check kinds: any rubric can use them without new Python (see each module's
docstring for its rubric parameters). They run in the generic probe (grader/probes/generic.py)
and score in the parent, like an assignment's own kinds (grader/assignments/<probe>.py); the
engine puts the two together (grader.grading.engine.kinds_for).

What a kind is (base.py) and the tasks it asks a probe to run (tasks.py) live here too: the
assignments' kinds and the engine both build on them."""
from __future__ import annotations

from grader.kinds import function, numeric_gradient, returned_values
from grader.kinds.base import Kind

GENERIC: dict[str, Kind] = {
    "function": function.KIND,
    "numeric_gradient": numeric_gradient.KIND,
    "returned_values": returned_values.KIND,
}

