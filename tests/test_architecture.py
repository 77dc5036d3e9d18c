"""The package's structure, as docs/architecture.md draws it: no import cycle between modules
(imports inside functions and `importlib.import_module` of a grader module included), no module
importing another's underscored name, and dependencies between the subpackages pointing one way,
down the layers below."""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "grader"
SANDBOXED = PACKAGE / "probes"  # runs inside the sandbox as plain scripts: never imports the grader

# Lowest first. A module may import from its own layer or a lower one, never a higher one. The
# shared top-level modules are the floor; the entry points (api, cli) the roof.
LAYERS = [
    {"grader", "grader.errors", "grader.files", "grader.parsing", "grader.regions", "grader.rubric",
     "grader.results", "grader.submission", "grader.data", "grader.course"},
    # a course's rules (late policy, extensions, submission times): data in, decisions out, no grading
    {"grader.latework"},
    {"grader.probes"},
    {"grader.sandbox"},
    {"grader.kinds"},
    {"grader.notebooks"},
    {"grader.assignments"},
    {"grader.reporting"},
    {"grader.grading"},
    {"grader.batching"},
    {"grader.delivery"},
    {"grader.api"},
    {"grader.cli", "grader.__main__"},
]


def module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(REPO.resolve()).with_suffix("").parts) if REPO.resolve() in \
        path.resolve().parents else [path.stem]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def grader_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if SANDBOXED not in p.parents}


def imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(module imported, name imported from it or "") for every import anywhere in the file."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, "") if sub in modules else (base, alias.name))
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((arg.value, ""))
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                found.append((arg.values[0].value.rstrip("."), ""))  # f"grader.x.{name}": the package x
    return [(m, name) for m, name in found if m == "grader" or m.startswith("grader.")]


@functools.cache
def graph() -> dict[str, set[str]]:
    modules = grader_modules()
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target, _ in imports(path, modules):
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target != name:
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    for number, members in enumerate(LAYERS):
        if module in members or any(module.startswith(m + ".") for m in members if m != "grader"):
            return number
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    """The checks below can fail: a function-level import that closes a loop is a cycle."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from grader.api import grade_folder\n    importlib.import_module(f'grader.kinds.{x}')\n")
    assert imports(source, {}) == [("grader.api", "grade_folder"), ("grader.kinds", "")]


def test_no_import_cycle_between_modules():
    assert cycles(graph()) == []


def test_no_module_imports_an_underscored_name_of_another():
    modules = grader_modules()
    private = [f"{module_name(path)} imports {target}.{name}"
               for path in modules.values() for target, name in imports(path, modules)
               if name.startswith("_") and name != "__version__"]
    assert private == []


@pytest.mark.parametrize("module", sorted(grader_modules()))
def test_dependencies_point_down_the_layers(module):
    edges = graph()
    upward = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
              for target in sorted(edges[module]) if layer(target) > layer(module)]
    assert upward == []


def test_the_top_of_the_package_holds_only_entry_points_and_shared_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "__main__", "api", "cli", "course", "data", "errors", "files", "parsing",
                   "regions", "results", "rubric", "submission"]
