"""SQL statements per completion: one case through the loop in-process, on the benchmark's database.

The timed loop runs behind gunicorn, where nothing counts statements; this takes one more case the
same two ways through the app itself (Flask's test client) and counts what each request sends, with
a SQLAlchemy ``before_cursor_execute`` listener. The BEGIN opening a transaction is not counted
(SQLite's passes through the cursor, PostgreSQL's does not; neither's COMMIT does), as in
tests/web/test_statements.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from sqlalchemy import event, select

from tracker import create_app
from tracker.db import get_session
from tracker.models import User
from tracker.services import tokens

from .loop import PASSWORD, TASK_LINK
from .webclient import form_fields

#: The demo people of grid 1 the loop's first client acts as.
PEOPLE = ("member1a", "member1b", "leader1")
#: The steps after the intake, as the loop takes them: who acts (demo user of grid 1) and with what.
API_STEPS = [("leader1", "dispatch", {"dispatch_to": "member", "deadline_class": "general"}),
             ("member1b", "handle", {"handle_action": "done", "text": "已处理"}),
             ("member1a", "callback", {"satisfaction": "satisfied"}),
             ("leader1", "archive", {"confirm": True})]
PAGE_STEPS = [("leader1", "dispatch", {"dispatch_to": "member", "department_id": "0", "deadline_class": "general"}),
              ("member1b", "handle", {"handle_action": "done", "text": "已处理"}),
              ("member1a", "callback", {"satisfaction": "satisfied"}),
              ("leader1", "archive", {"confirm": "y"})]
INTAKE = {"resident_name": "居民", "resident_phone": "13812345678", "category": "property_repair",
          "description": "基准测试：楼道灯不亮", "channel": "phone"}


@contextmanager
def counting(app: Flask) -> Iterator[list[str]]:
    """Collect the statements the app sends meanwhile (not the BEGIN of a transaction)."""
    seen: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(" ".join(statement.split()))

    engine = app.extensions["gridloop.db"]
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def count_statements(url: str) -> dict:
    """Take one case through the API and one through the pages; return statements per request.

    {"api": {"intake": n, "dispatch": n, ...}, "ui": {"intake": n, ..., "walk": n per completion}}
    """
    app = create_app({"app": {"database_url": url}, "api": {"ratelimit_enabled": False},
                      "scheduler": {"in_web": False}})
    try:
        with app.app_context():
            db = get_session()
            users = {u.username: u for u in db.scalars(select(User).where(User.username.in_(PEOPLE)))}
            secrets = {name: tokens.create(db, user, "statements")[1] for name, user in users.items()}
            handler_id = users["member1b"].id
            db.commit()
        return {"api": _api(app, secrets, handler_id), "ui": _pages(app, handler_id)}
    finally:
        app.extensions["gridloop.db"].dispose()


def _api(app: Flask, secrets: dict[str, str], handler_id: int) -> dict[str, int]:
    """Count the statements of each API request of one case (tokens used once before: their last-use
    note, written at most every five minutes, is behind them, as in a steady stream of calls)."""
    client = app.test_client()

    def call(who: str, method: str, path: str, body: dict | None = None) -> tuple[dict, int]:
        with counting(app) as seen:
            reply = client.open("/api/v1" + path, method=method, json=body,
                                headers={"Authorization": f"Bearer {secrets[who]}"})
        if reply.status_code >= 300:
            raise RuntimeError(f"{method} {path} answered {reply.status_code}: {reply.get_data(as_text=True)[:300]}")
        return reply.get_json(), len(seen)

    for who in secrets:
        call(who, "GET", "/me")
    building = call("member1a", "GET", "/buildings")[0]["items"][0]["id"]
    for _ in range(2):  # the second case counts: the first warms what a worker keeps (definitions, ...)
        case, counts = call("member1a", "POST", "/cases", {**INTAKE, "building_id": building})
        found = {"intake": counts}
        for who, step, data in API_STEPS:
            data = {**data, "handler_id": handler_id} if step == "dispatch" else data
            case, found[step] = call(who, "POST", f"/tasks/{case['tasks'][0]['id']}/complete",
                                     {"version": case["version"], "data": data})
    return found


def _pages(app: Flask, handler_id: int) -> dict[str, int]:
    """Count the statements of each page completion of one case, and of the whole walk per completion
    (case page, task form, post, the page it redirects to), as the loop's people take it."""
    people = {name: app.test_client() for name in PEOPLE}
    for name, client in people.items():
        fields = form_fields(client.get("/login").get_data(as_text=True))
        if client.post("/login", data={**fields, "username": name, "password": PASSWORD}).status_code != 302:
            raise RuntimeError(f"login of {name} failed")
    member = people["member1a"]
    form = member.get("/cases/new").get_data(as_text=True)
    building = re.search(r'<option value="(\d+)">G1 · ', form).group(1)
    with counting(app) as seen:
        reply = member.post("/cases/new", data={**form_fields(form), **INTAKE, "building_id": building,
                                                "urgency": "normal", "green_channel": "", "disposition": "dispatch",
                                                "reply": ""})
    case_page = reply.headers["Location"]
    found, walked = {"intake": len(seen)}, 0
    for who, step, data in PAGE_STEPS:
        client = people[who]
        with counting(app) as walk:
            task = TASK_LINK.search(client.get(case_page).get_data(as_text=True)).group(1)
            html = client.get(f"/tasks/{task}").get_data(as_text=True)
            data = {**data, "handler_id": str(handler_id)} if step == "dispatch" else data
            with counting(app) as post:
                reply = client.post(f"/tasks/{task}", data={**form_fields(html), **data})
            if reply.status_code != 302:
                raise RuntimeError(f"POST /tasks/{task} ({step}) answered {reply.status_code}")
            client.get(reply.headers["Location"])
        found[step] = len(post)
        walked += len(walk)
    found["walk"] = round(walked / len(PAGE_STEPS))
    return found
