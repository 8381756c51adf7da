"""A lock that had to wait: what PostgreSQL alone does (SQLite writers never wait for a row lock: BEGIN
IMMEDIATE), so this runs on the PostgreSQL cluster whichever backend the suite runs on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from bench.statements import counting
from tests.conftest import pg_copy, user_id
from tests.web.test_api import Api, make_token, new_case
from tracker.db import get_session
from tracker.models import Case
from tracker.services import for_app
from tracker.services.locks import lock_task

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(request, pg_template) -> Iterator[str]:
    """A fresh copy of the seeded database on the PostgreSQL cluster (the app and db fixtures use it)."""
    yield from pg_copy(request.getfixturevalue("pg_cluster"))


def test_a_lock_that_waited_reads_the_tasks_as_the_other_transaction_left_them(app, db):
    """PostgreSQL returns a row locked after a wait as the other transaction left it, but the rows joined
    to it as they were before: the lock notices (the case's row version moved) and reads them again."""
    member = Api(app.test_client(), make_token(app, "member_a")[1])
    case = member.post("/cases", new_case(db)).get_json()
    task_id, leader_id = case["tasks"][0]["id"], user_id(db, "leader_a")
    engine = app.extensions["gridloop.db"]
    seen: dict = {}

    def complete_later() -> None:
        with app.app_context(), counting(app) as sent:
            task = lock_task(for_app(app, get_session()), task_id)
            seen.update(assignee=task.assignee_id, version=task.case.row_version, sent=list(sent))

    with engine.connect() as other:  # another writer, e.g. a scheduler firing a timer, holds the case
        other.execute(text('SELECT id FROM "case" WHERE id = :c FOR UPDATE'), {"c": case["id"]})
        waiting = threading.Thread(target=complete_later)
        waiting.start()
        _wait_until_blocked(db)
        other.execute(text("UPDATE task SET assignee_id = :u WHERE id = :t"), {"u": leader_id, "t": task_id})
        other.execute(text('UPDATE "case" SET row_version = row_version + 1 WHERE id = :c'), {"c": case["id"]})
        other.commit()
        waiting.join(timeout=30)
    db.expire_all()
    assert seen["assignee"] == leader_id and seen["version"] == db.get(Case, case["id"]).row_version
    assert len([s for s in seen["sent"] if "FOR UPDATE" in s]) == 2  # the lock, then the read under it


def _wait_until_blocked(db, seconds: float = 10) -> None:
    """Wait until some backend waits for a lock."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if db.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND wait_event_type = 'Lock'")):
            return
        time.sleep(0.02)
    raise AssertionError("the completion never waited for the lock")
