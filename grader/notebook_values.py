"""Values a student sets in their notebook, read WITHOUT executing it: the assignment
statements of the code cells are parsed, and only constant arithmetic is evaluated
(`lr = 1e-4 / (2 * 0.01)` is fine; `lr = pick()` is reported as unreadable)."""
from __future__ import annotations

import ast
import json
import operator
from pathlib import Path

import nbformat

from .errors import GraderError

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class NotebookValueError(GraderError):
    """A value the check needs could not be read from the notebook; the message says why."""


def read_values(notebook: Path, names: tuple[str, ...]) -> dict[str, float | int]:
    """The last value each name is assigned in the notebook's code cells, in cell order."""
    if not notebook.is_file():
        raise NotebookValueError(f"{notebook.name} is missing from the submission")
    try:
        nb = nbformat.reads(notebook.read_text(encoding="utf-8"), as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError, ValueError) as exc:
        raise NotebookValueError(f"{notebook.name} is not a readable notebook ({type(exc).__name__})") from exc
    found: dict[str, ast.expr] = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        tree = _parse(cell.get("source", ""))
        for node in tree.body if tree else ():
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) and node.value else []
            for target in targets:
                for name_node in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(name_node, ast.Name) and name_node.id in names:
                        value = node.value
                        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                            value = value.elts[target.elts.index(name_node)]
                        found[name_node.id] = value
    values = {}
    for name in names:
        if name not in found:
            raise NotebookValueError(f"{notebook.name} never sets {name}")
        try:
            values[name] = _constant(found[name])
        except ValueError:
            raise NotebookValueError(f"{notebook.name}: `{name} = {ast.unparse(found[name])}` cannot be read "
                                     "without running the notebook; write a number") from None
        if values[name] is None:
            raise NotebookValueError(f"{notebook.name} leaves {name} = None (the TODO is not done)")
    return values


def _parse(source: str) -> ast.Module | None:
    # IPython magics and shell escapes are not Python; blank them so the rest still parses.
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _constant(node: ast.expr):
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (int, float))) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_number(node.left), _number(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_number(node.operand))
    raise ValueError(ast.unparse(node))


def _number(node: ast.expr) -> float | int:
    value = _constant(node)
    if value is None:
        raise ValueError("None in arithmetic")
    return value
