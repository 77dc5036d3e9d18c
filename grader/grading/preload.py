"""Which libraries a probe's runner imports before it forks the tasks: the well-known heavy ones
the code under test imports itself.

A forked task inherits what the runner loaded, so a library the code imports costs one import per
probe instead of one per task (matplotlib.pyplot: about 0.4 s each, against a fork's 20 ms); a
library the code never imports would cost its import for nothing on every probe start. Found by
reading the code's import statements (parsed, never run), and only from a fixed list of
third-party libraries: the runner must not import anything a submission could have placed."""
from __future__ import annotations

import ast
from pathlib import Path

from grader.parsing import parse

# Libraries whose import takes long enough to matter, in the order the runner imports them.
# Not torch: a library that may start threads at import is not safe to fork after.
HEAVY = ("numpy", "scipy", "pandas", "matplotlib", "matplotlib.pyplot", "sklearn")
ALWAYS = ("numpy",)  # every probe module imports it
MAX_FILE_BYTES = 2 * 1024**2


def modules_to_preload(workdir: Path) -> tuple[str, ...]:
    """The HEAVY modules that the Python files in `workdir` import, NumPy always; none that a
    file or folder of `workdir` would shadow (its own `numpy.py` is the code's business)."""
    workdir = Path(workdir)
    imported: set[str] = set()
    for path in sorted(workdir.rglob("*.py")):
        imported |= _imports(path)
    own = {p.stem if p.suffix == ".py" else p.name for p in workdir.iterdir()} if workdir.is_dir() else set()
    wanted = set(ALWAYS) | imported
    return tuple(m for m in HEAVY if m in wanted and m.split(".")[0] not in own)


def _imports(path: Path) -> set[str]:
    """Dotted names a file imports when it is imported (`from a import b` gives a and a.b; not
    the imports inside functions, which run only if called: a data loader's scikit-learn would
    cost every probe); nothing for a file that does not parse (its error is the student's)."""
    try:
        if path.is_symlink() or path.stat().st_size > MAX_FILE_BYTES:
            return set()
        tree = parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in _run_at_import(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    # importing a.b.c imports a and a.b first
    return {".".join(parts[:i]) for name in names if (parts := name.split(".")) for i in range(1, len(parts) + 1)}


def _run_at_import(tree: ast.AST):
    """The nodes executed when the module is imported: everything but function bodies."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [child for child in ast.iter_child_nodes(node)
                 if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
