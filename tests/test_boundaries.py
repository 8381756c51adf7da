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


# -- what the test setup relaxes, the app does not -------------------------------------------------------

def test_the_app_hashes_new_passwords_strongly():
    # The suite seeds users with a one-round hash (tests/conftest.py); the app's own hashes are scrypt.
    from types import SimpleNamespace

    from werkzeug.security import check_password_hash

    from tracker.models import User
    from tracker.services import accounts

    class NoTokens:
        def execute(self, _statement):
            """Revoke nothing: the user has no API tokens."""
            return SimpleNamespace(rowcount=0)

    user = User(id=1, username="someone", display_name="某人", password_hash="")
    assert accounts.set_password(NoTokens(), user, "a-long-new-password") == 0
    method = user.password_hash.split("$")[0]
    assert method.startswith("scrypt:"), method
    assert check_password_hash(user.password_hash, "a-long-new-password")



def test_unknown_names_are_checked_against_a_hash_of_the_default_method():
    # tests/conftest.py swaps the hash itself for a cheap one; the source must make it like a real user's.
    tree = ast.parse((ROOT / "tracker" / "services" / "accounts.py").read_text(encoding="utf-8"))
    calls = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "_DUMMY_HASH" for t in node.targets)]
    assert len(calls) == 1 and isinstance(calls[0], ast.Call), "accounts._DUMMY_HASH is no longer a call"
    call = calls[0]
    assert getattr(call.func, "id", getattr(call.func, "attr", "")) == "generate_password_hash"
    assert len(call.args) == 1 and not call.keywords, "the dummy hash must use the default method, as set_password"
