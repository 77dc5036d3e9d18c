"""Values a student sets in their notebook, read WITHOUT executing it: the assignment
statements of the code cells are walked in cell order, and only constants and arithmetic over
names bound earlier to such values are evaluated (`l2_lambda = weight_decay / (2 * lr)` after
`weight_decay = 1e-4` and `lr = 0.01` is fine; `lr = pick()` is reported as unreadable, and so
is everything computed from it)."""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError
from grader.notebooks.reading import load_notebook
from grader.parsing import parse_cell, statement_names

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class NotebookValueError(GraderError):
    """A value the check needs could not be read from the notebook; the message says why."""


@dataclass(frozen=True)
class Unreadable:
    """A name whose value cannot be known without running code: where it was bound, and why."""

    source: str  # the statement that bound it, e.g. "lr = pick()"
    reason: str  # e.g. "calls pick()" or "`lr` is set by `lr = pick()`"


def read_values(notebook: Path, names: tuple[str, ...]) -> dict[str, float | int]:
    """The value each name has after the notebook's code cells run in order, as far as it can
    be known without running them."""
    env = resolve_bindings(_cell_sources(notebook))
    values = {}
    for name in names:
        if name not in env:
            raise NotebookValueError(f"{notebook.name} never sets {name}")
        value = env[name]
        if isinstance(value, Unreadable):
            raise NotebookValueError(f"{notebook.name}: `{value.source}` cannot be read without running the "
                                     f"notebook ({value.reason}); write a number or arithmetic over numbers")
        if value is None:
            raise NotebookValueError(f"{notebook.name} leaves {name} = None (the TODO is not done)")
        values[name] = value
    return values


def resolve_bindings(sources: list[str]) -> dict[str, float | int | None | Unreadable]:
    """Every top-level name the sources bind, in order, mapped to its numeric value (or None),
    or to an Unreadable saying why not. A later binding replaces an earlier one, as when run."""
    env: dict[str, float | int | None | Unreadable] = {}
    for source in sources:
        tree = parse_cell(source)
        for node in tree.body if tree else ():
            _bind_statement(node, env)
    return env


def evaluate(node: ast.expr, env: dict) -> float | int | None | Unreadable:
    """One expression over the bindings `resolve_bindings` returned (e.g. a call's argument)."""
    return _evaluate(node, env, _short_expr(node))


def _short_expr(node: ast.expr) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _cell_sources(notebook: Path) -> list[str]:
    if not notebook.is_file():
        raise NotebookValueError(f"{notebook.name} is missing from the submission")
    loaded = load_notebook(notebook)  # the report's reader: a truncated notebook is salvaged here too
    if loaded.nb is None:
        reason = loaded.messages[0] if loaded.messages else loaded.status
        raise NotebookValueError(f"{notebook.name} is not a readable notebook ({reason})")
    return [cell.get("source", "") for cell in loaded.nb.cells if cell.get("cell_type") == "code"]


def _bind_statement(node: ast.stmt, env: dict) -> None:
    text = _short(node)
    if isinstance(node, ast.Assign):
        for target in node.targets:
            _bind_target(target, node.value, env, text)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        _bind_target(node.target, node.value, env, text)
    elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        op = ast.BinOp(left=ast.Name(node.target.id, ast.Load()), op=node.op, right=node.value)
        env[node.target.id] = _evaluate(op, env, text)
    else:
        # Anything else that binds a top-level name (a loop, an import, a def, a with-block, an
        # if-branch) makes its value depend on running code from here on.
        for name in statement_names(node)[1]:
            env[name] = Unreadable(text, f"{name} is bound by code that must run")


def _bind_target(target: ast.expr, value: ast.expr, env: dict, text: str) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = _evaluate(value, env, text)
    elif isinstance(target, (ast.Tuple, ast.List)):
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            values = [_evaluate(v, env, text) for v in value.elts]  # evaluated before binding, as Python does
            for sub, val in zip(target.elts, values):
                if isinstance(sub, ast.Name):
                    env[sub.id] = val
        else:
            for sub in target.elts:
                if isinstance(sub, ast.Name):
                    env[sub.id] = Unreadable(text, f"unpacks {ast.unparse(value)}")


def _evaluate(node: ast.expr, env: dict, text: str):
    """The value of a constant expression over earlier bindings, or an Unreadable."""
    try:
        return _constant(node, env)
    except _NotConstant as exc:
        return Unreadable(text, str(exc))


class _NotConstant(Exception):
    pass


def _constant(node: ast.expr, env: dict):
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (int, float))) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise _NotConstant(f"`{node.id}` is not set earlier in the notebook")
        value = env[node.id]
        if isinstance(value, Unreadable):
            raise _NotConstant(f"`{node.id}` comes from `{value.source}`")
        return value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _number(node.left, env), _number(node.right, env)
        try:
            return _BINARY[type(node.op)](left, right)
        except (ZeroDivisionError, OverflowError) as exc:
            raise _NotConstant(f"{type(exc).__name__} in {ast.unparse(node)}") from None
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_number(node.operand, env))
    if isinstance(node, ast.Call):
        raise _NotConstant(f"calls {ast.unparse(node.func)}()")
    raise _NotConstant(f"`{ast.unparse(node)}` is not arithmetic over numbers")


def _number(node: ast.expr, env: dict) -> float | int:
    value = _constant(node, env)
    if value is None:
        raise _NotConstant(f"`{ast.unparse(node)}` is None")
    return value


def _short(node: ast.stmt) -> str:
    text = ast.unparse(node).splitlines()[0]
    return text if len(text) <= 80 else text[:77] + "..."
