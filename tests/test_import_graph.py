"""aebench's own imports form no circle: every module's imports, at module level and inside
functions, read with `ast`. Importing `a.b.c` also runs the `__init__` of the package `a.b`,
which counts as an import of `a.b`, except from inside `a.b` (whose `__init__` has started
by then).

Beside that, two rules of the layout: the metrics are pure functions of arrays (they import
no evaluator, model or torch), and importing the model registry loads neither matplotlib nor
the evaluator.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import aebench

SRC = Path(aebench.__file__).resolve().parent
PACKAGE = "aebench"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The aebench modules `path` (module `name`) imports anywhere in its body, each with the
    packages whose `__init__` the import runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                continue
            if target in known:
                found.add(target)
            parts = target.split(".")
            for i in range(2, len(parts)):  # the packages on the way run their __init__
                prefix = ".".join(parts[:i])
                if prefix in known and not (name == prefix or name.startswith(prefix + ".")):
                    found.add(prefix)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imported(path, name, set(mods)) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_the_imports():
    graph = import_graph()
    assert "aebench.models.base" in graph["aebench.models.vae"]
    assert "aebench.models" in graph["aebench.models.vae"]  # the registry, whose `register` it uses
    assert "aebench.evaluation.suites" in graph["aebench.evaluation.evaluator"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_metrics_import_no_evaluator_model_or_torch():
    graph = import_graph()
    for name, path in modules().items():
        if not name.startswith("aebench.metrics"):
            continue
        upward = {m for m in graph[name] if m.startswith(("aebench.evaluation", "aebench.models", "aebench.training"))}
        assert not upward, f"{name} imports {upward}"
        tree = ast.parse(path.read_text())
        roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        roots |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "torch" not in roots, f"{name} imports torch"


def test_the_model_registry_loads_no_matplotlib_and_no_evaluator():
    code = ("import sys, aebench.models as m; m.known_types(); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'matplotlib' "
            "or k.startswith(('aebench.evaluation.evaluator', 'aebench.evaluation.suites'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
