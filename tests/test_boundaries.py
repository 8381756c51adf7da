"""Architecture rules: one door to the engine, no Flask in it."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

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


def test_bench_imports_nothing_from_tests():
    # Tests may use bench's cluster, HTTP client and gunicorn runner; the benchmark never needs the suite.
    offenders = [f for f, names in _imports("bench").items() if "tests" in names]
    assert offenders == []


def test_the_scan_sees_real_imports():
    assert "SpiffWorkflow" in _imports("workflows")["workflows/engine.py"]
    assert "workflows" in _imports("tracker")["tracker/web.py"]
    assert "bench" in _imports("tests")["tests/pgcluster.py"]


#: Methods that begin, end or undo a transaction (or a savepoint): the request or job boundary does that.
TRANSACTION_METHODS = {"commit", "rollback", "begin", "begin_nested"}
#: The few that services may use, as (file, function, method) -> how many times, each with why.
ALLOWED_TRANSACTION_CALLS = Counter({
    # Notes a token's last use in a short transaction of its own, on a separate connection: a reading
    # request stays read-only, and a busy database skips the note instead of failing the call.
    ("tracker/services/tokens.py", "_touch", "begin"): 1,
    # Savepoints inside the caller's transaction (it still commits or rolls back as a whole): the loser
    # of a race to insert the same definition version, or the same day's visit, reads the winner's row...
    ("tracker/services/definitions.py", "deploy_definition", "begin_nested"): 1,
    ("tracker/services/visits.py", "start_day", "begin_nested"): 1,
    # ...the later of two requests sent at once with one Idempotency-Key or form key (it answers with
    # the case the earlier made), and the public form's system account made by two requests at once.
    ("tracker/services/duplicates.py", "reserve_key", "begin_nested"): 1,
    ("tracker/services/public.py", "recorder", "begin_nested"): 1,
    # ...and a timer batch, then each timer of a failed batch, fails alone and keeps its timer.
    ("tracker/services/firing.py", "fire_due", "begin_nested"): 1,
    ("tracker/services/firing.py", "_fire_each", "begin_nested"): 1,
})


def _transaction_calls(path: Path) -> Counter[tuple[str, str, str]]:
    """Return (file, enclosing function, method) -> count for every use of a transaction method in a file.

    Any attribute of that name counts, called or not (``session.commit()``, ``with conn.begin():``,
    ``done = db.rollback``), whatever the object is called.
    """
    name = path.relative_to(ROOT).as_posix()
    found: Counter[tuple[str, str, str]] = Counter()

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Attribute) and node.attr in TRANSACTION_METHODS:
            found[name, function, node.attr] += 1
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_services_never_begin_commit_or_roll_back_a_transaction():
    found = sum((_transaction_calls(path) for path in (ROOT / "tracker" / "services").rglob("*.py")), Counter())
    unexpected = found - ALLOWED_TRANSACTION_CALLS
    assert not unexpected, f"services must leave transactions to the request/job boundary: {dict(unexpected)}"


@pytest.mark.parametrize("source", [
    "def f(session):\n    session.commit()\n",
    "def f(db):\n    db.rollback()\n",
    "def f(self):\n    self.svc.session.commit()\n",
    "def f(engine):\n    with engine.connect() as c, c.begin():\n        pass\n",
    "def f(session):\n    with session.begin_nested():\n        pass\n",
    "def f(session):\n    end = session.commit\n    end()\n",
    "async def f(session):\n    await session.commit()\n",
    "class C:\n    def f(self, s):\n        s.rollback()\n",
])
def test_the_transaction_scan_sees_every_form(tmp_path, monkeypatch, source):
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    path = tmp_path / "tracker" / "services" / "new.py"
    path.parent.mkdir(parents=True)
    path.write_text(source, encoding="utf-8")
    assert sum(_transaction_calls(path).values()) == 1


def test_the_allow_list_names_no_other_function_of_the_same_file():
    # An allowed call counts only in its own function: the same call one function over is refused.
    calls = _transaction_calls(ROOT / "tracker" / "services" / "tokens.py")
    assert calls["tracker/services/tokens.py", "_touch", "begin"] == 1
    moved = Counter({("tracker/services/tokens.py", "revoke", "begin"): 1})
    assert moved - ALLOWED_TRANSACTION_CALLS == moved


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
