"""Architecture rules: one door to the engine, no Flask in it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    """Return file -> top-level modules imported, for every file in a package."""
    found = {}
    for path in (ROOT / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_tracker_never_imports_spiffworkflow():
    offenders = [f for f, names in _imports("tracker").items() if "SpiffWorkflow" in names]
    assert offenders == []


def test_workflows_imports_neither_flask_nor_tracker():
    offenders = [f for f, names in _imports("workflows").items() if names & {"flask", "tracker", "flask_babel"}]
    assert offenders == []


def test_the_scan_sees_real_imports():
    assert "SpiffWorkflow" in _imports("workflows")["workflows/engine.py"]
    assert "workflows" in _imports("tracker")["tracker/web.py"]


def test_services_never_commit():
    for path in (ROOT / "tracker" / "services").rglob("*.py"):
        assert ".commit(" not in path.read_text(encoding="utf-8"), path
