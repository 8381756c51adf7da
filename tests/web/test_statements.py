"""How many SQL statements a task completion sends: counted, never timed (a behaviour test).

Counted is every statement SQLAlchemy sends through a cursor, except the BEGIN opening the
transaction: SQLite's (BEGIN IMMEDIATE) passes through the cursor and PostgreSQL's does not, and
neither backend's COMMIT does, so both backends count the same work.

An API completion needs at most 8: the token with its user and roles (1), the task with its case
locked and everything the change reads — tasks, definition, timer row, handler (1), and one flush:
the audit event, the task done, the case, a task opened, the timer row inserted, moved or deleted
(up to 5). A dispatch also reads the chosen handler with who stands in for them today (1), and so
does a completion that opens the callback for the recorder; neither then touches the timer row or
opens a task more than once, which keeps them at 8 too.

A page completion reads the signed-in person with their roles (1) instead of the token, and the
same lock and flush: at most 8. Dispatching by page also builds its form's choices, as the form
validates the chosen handler and department against them: the grid's members with their roles (2)
and the departments (1), so at most 11.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from flask import Flask
from sqlalchemy import text

from bench.statements import counting
from tests.conftest import BACKEND, Browser, csrf_token, intake, latest_case, open_task, user_id
from tests.web.test_api import Api, make_token, new_case
from tracker.db import get_session
from tracker.models import Case, Task
from tracker.services import for_app
from tracker.services.locks import lock_task

#: The most statements one completion may send, through the API and through a page.
API_MOST = 8
PAGE_MOST = {"dispatch": 11, "handle": 8, "callback": 8, "review_archive": 8}


def listing(seen: list[str]) -> str:
    """Return the statements one a line, shortened, for a failure message."""
    return "\n".join(f"  {s[:160]}" for s in seen)


def warm(client: Api) -> Api:
    """Use a token once, so its last-use note (written at most every five minutes) is behind it."""
    assert client.get("/me").status_code == 200
    return client


def test_an_api_completion_sends_at_most_8_statements_and_locks_the_case_once(app, db):
    member, handler, leader = (warm(Api(app.test_client(), make_token(app, name)[1]))
                               for name in ("member_a", "member_a2", "leader_a"))
    assert member.post("/cases", new_case(db)).status_code == 201  # a worker reads a process version's source once
    with counting(app) as seen:
        case = member.post("/cases", new_case(db)).get_json()
    # The intake settles its first task too: token (1), building with its grid (1), process version (1),
    # the case inserted (1) and one flush: the case, its two events and two tasks (SQLite: one event a statement).
    assert len(seen) <= API_MOST, f"intake: {len(seen)} statements\n{listing(seen)}"
    steps = [(leader, {"dispatch_to": "member", "handler_id": user_id(db, "member_a2"), "deadline_class": "general"}),
             (handler, {"handle_action": "done", "text": "修好了"}),
             (member, {"satisfaction": "satisfied"}),
             (leader, {"confirm": True})]
    for client, data in steps:
        task = case["tasks"][0]
        with counting(app) as seen:
            response = client.post(f"/tasks/{task['id']}/complete", {"version": case["version"], "data": data})
        assert response.status_code == 200, response.get_data(as_text=True)
        assert len(seen) <= API_MOST, f"{task['form_key']}: {len(seen)} statements\n{listing(seen)}"
        locks = [s for s in seen if "FOR UPDATE" in s]
        if BACKEND == "postgresql":
            assert len(locks) == 1 and 'FOR UPDATE OF "case"' in locks[0], listing(seen)
        case = response.get_json()
    assert case["status"] == "archived"


def test_the_answer_names_what_the_completion_changed_without_reading_it_again(app, db):
    """The dispatch's answer names the new handler and the handling task's assignee from what it loaded."""
    leader = warm(Api(app.test_client(), make_token(app, "leader_a")[1]))
    case = warm(Api(app.test_client(), make_token(app, "member_a")[1])).post("/cases", new_case(db)).get_json()
    with counting(app) as seen:
        response = leader.post(f"/tasks/{case['tasks'][0]['id']}/complete", {"version": case["version"], "data": {
            "dispatch_to": "member", "handler_id": user_id(db, "member_a2"), "deadline_class": "general"}})
    answer = response.get_json()
    assert answer["handler"] == {"id": user_id(db, "member_a2"), "name": "网格员乙"}
    assert answer["tasks"][0]["assignee"]["name"] == "网格员乙"
    assert not [s for s in seen if s.startswith("SELECT") and "FROM user_account WHERE" in s], listing(seen)


def page_fields(browser: Browser, task_id: str) -> dict[str, str]:
    """Load a task's page and return the hidden fields its form posts back."""
    html = browser.get(f"/tasks/{task_id}").get_data(as_text=True)
    return {"csrf_token": csrf_token(html),
            "version": re.search(r'name="version" type="hidden" value="(\d+)"', html).group(1)}


def test_a_page_completion_reads_only_the_person_the_lock_and_its_form_choices(app, login, db):
    member, handler, leader = login("member_a"), login("member_a2"), login("leader_a")
    assert member.submit("/cases/new", intake(db)).status_code == 302
    case_id = latest_case(db).id
    steps = [(leader, {"dispatch_to": "member", "handler_id": str(user_id(db, "member_a2")), "department_id": "0",
                       "deadline_class": "general"}),
             (handler, {"handle_action": "done", "text": "修好了"}),
             (member, {"satisfaction": "satisfied"}),
             (leader, {"confirm": "y"})]
    for browser, data in steps:
        task = open_task(db, case_id)
        fields = page_fields(browser, task.id)
        with counting(app) as seen:
            response = browser.client.post(f"/tasks/{task.id}", data={**fields, **data})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        most = PAGE_MOST[task.form_key]
        assert len(seen) <= most, f"{task.form_key}: {len(seen)} statements\n{listing(seen)}"
    assert latest_case(db).status == "archived"


def test_the_lock_reads_afresh_what_the_session_read_before_it(app, db):
    """A task the session read before (in an earlier transaction, or unlocked: claim, sign for and reassign
    load it first) is read again with the lock."""
    member = Api(app.test_client(), make_token(app, "member_a")[1])
    case = member.post("/cases", new_case(db)).get_json()
    task_id, leader_id = case["tasks"][0]["id"], user_id(db, "leader_a")
    with app.app_context():
        session = get_session()
        before = session.get(Task, task_id)
        session.commit()  # the session keeps it (expire_on_commit=False), as a request does after its commit
        db.execute(text("UPDATE task SET assignee_id = :u WHERE id = :t"), {"u": leader_id, "t": task_id})
        db.execute(text('UPDATE "case" SET row_version = row_version + 1 WHERE id = :c'), {"c": case["id"]})
        task = lock_task(for_app(app, session), task_id)
        assert task is before and task.assignee_id == leader_id
        assert task.case.row_version == db.get(Case, case["id"]).row_version


def test_a_token_notes_its_last_use_at_most_every_five_minutes(app, db):
    member = Api(app.test_client(), make_token(app, "member_a")[1])
    first, again = ([s for s in seen if s.startswith("UPDATE api_token")]
                    for seen in _two_calls(app, member, db))
    assert len(first) == 1 and not again


def _two_calls(app: Flask, member: Api, db) -> Iterator[list[str]]:
    """Record a case twice, yielding the statements of each call."""
    for _ in range(2):
        with counting(app) as seen:
            assert member.post("/cases", new_case(db)).status_code == 201
        yield seen
