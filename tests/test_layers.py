"""Layer rules: views hold no SQL, never use another view's helpers, and tracker's imports have no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ROOT / "tracker" / "views"


def _module_name(path: Path) -> str:
    """Return the dotted module name of a file under ROOT (a package by its __init__)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tracker_modules() -> dict[str, Path]:
    """Return every tracker module by dotted name."""
    return {_module_name(path): path for path in (ROOT / "tracker").rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """Return (tracker module, name imported from it or "", line) for every import in a file.

    Imports inside functions count: moving an import into a function hides a cycle, it does not
    break it. Only ``if TYPE_CHECKING:`` blocks, which never run, are left out.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    skipped = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
               and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "tracker"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            if base.split(".")[0] != "tracker":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, "", node.lineno) if submodule in modules else (base, alias.name, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    """Return tracker module -> the tracker modules it imports (the nearest existing module of each name)."""
    modules = _tracker_modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target, _name, _line in _imports(path, modules):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """Return one import cycle as a path (first module repeated at the end), or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        stack.pop()
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def _blueprint_modules() -> set[str]:
    """Return the view modules that define a blueprint (the others are helpers the views share)."""
    return {_module_name(path) for path in VIEWS.glob("*.py") if "Blueprint(" in path.read_text(encoding="utf-8")}


def test_views_run_no_select():
    offenders = []
    for path in VIEWS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and (getattr(node.func, "id", None) == "select"
                                               or getattr(node.func, "attr", None) == "select"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "views hold no SQL: put the query in tracker/queries"


def test_no_view_imports_private_names_of_another_view_module():
    modules = _tracker_modules()
    offenders = [f"{path.relative_to(ROOT)}:{line} {target}.{name}"
                 for path in VIEWS.glob("*.py")
                 for target, name, line in _imports(path, modules)
                 if target.startswith("tracker.views") and target != _module_name(path) and name.startswith("_")]
    assert offenders == []


def test_no_blueprint_module_imports_another():
    blueprints = _blueprint_modules()
    modules = _tracker_modules()
    offenders = [f"{path.relative_to(ROOT)}:{line} {target}"
                 for path in VIEWS.glob("*.py") if _module_name(path) in blueprints
                 for target, _name, line in _imports(path, modules)
                 if target in blueprints and target != _module_name(path)]
    assert offenders == [], "share through tracker/queries, tracker/views/__init__ or a helper module"


def test_tracker_imports_have_no_cycle():
    assert _cycle(_graph()) == []


def test_the_scans_see_real_imports_and_cycles():
    graph = _graph()
    assert "tracker.views.api" in graph["tracker.web"]  # registered in a function: counted all the same
    assert "tracker.queries" in graph["tracker.views.cases"]
    assert {"tracker.services.cases", "tracker.services.visits"} <= graph["tracker.services.firing"]
    assert "tracker.views.cases" in _blueprint_modules() and "tracker.views.task_page" not in _blueprint_modules()
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
