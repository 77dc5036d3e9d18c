"""One Python syntax tree built at a time in the grader's process.

CPython 3.11 and earlier keep the AST builder's recursion depth per interpreter, not per thread:
two threads building syntax trees at once can fail with "SystemError: AST constructor recursion
depth mismatch" (cpython#106905). A grading worker has several threads: the engine reads the
code's imports (grader/grading/preload.py) while the notebook's thread reads its cells, and the figures'
thread imports matplotlib, whose import parses builtin signatures (inspect). It happened: a
pset4 grading in the Docker image lost its grade to that error. Every parse of the grader goes
through `parse`, and that import holds `LOCK` (plots.preload).
"""
from __future__ import annotations

import ast
import threading

# Module level on purpose: what it guards is shared by the whole interpreter. Reentrant, so
# that an import made while holding it may parse through `parse` too.
LOCK = threading.RLock()


def parse(source: str | bytes, filename: str = "<unknown>") -> ast.Module:
    with LOCK:
        return ast.parse(source, filename=filename)


def parse_cell(source: str) -> ast.Module | None:
    """A notebook cell's syntax tree, its IPython magics and shell escapes (not Python) blanked so
    the rest still parses; None when it does not."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return parse("\n".join(lines))
    except SyntaxError:
        return None


def statement_names(stmt: ast.stmt) -> tuple[set[str], set[str]]:
    """(names a top-level statement reads, names it binds). Function and class bodies and lambdas
    are not followed: a def binds its name, and its body runs only when called."""
    loads: set[str] = set()
    stores: set[str] = set()
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        stores.add(stmt.name)
        for deco in stmt.decorator_list:
            loads |= statement_names(ast.Expr(deco))[0]
        return loads, stores
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        for alias in stmt.names:
            if alias.name != "*":
                stores.add((alias.asname or alias.name).split(".")[0])
        return loads, stores
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name):
            (stores if isinstance(node.ctx, (ast.Store, ast.Del)) else loads).add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return loads, stores
