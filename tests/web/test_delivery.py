"""Messages that reach people: notifications sent by e-mail to a real local SMTP server (aiosmtpd) and to a
local HTTP receiver, from the outbox, with retries, a delivery log, and nothing sent twice across restarts."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from bench.cases import dispatched_cases
from tests.conftest import PASSWORD, PASSWORD_HASH, Browser, configured_app, dispatch, intake, latest_case, user_id
from tracker import jobs
from tracker.codes import DeliveryStatus
from tracker.config import ConfigError, load_config
from tracker.db import get_session
from tracker.models import Delivery, DeliveryPreference, Notification, User
from tracker.services import delivery
from tracker.services.notices import notify

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "webhook-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Mailbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


@pytest.fixture
def smtp():
    """A real SMTP server on a loopback port."""
    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's hook name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        code = self.server.answers.pop(0) if self.server.answers else 200
        self.server.received.append((self.headers, body, code))  # names: any case
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    """A local HTTP receiver (the SMS / WeChat Work gateway): records each POST, answers 200 or what it is told."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    httpd.received, httpd.answers = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/hook"
    yield httpd
    httpd.shutdown()
    thread.join(timeout=10)
    httpd.server_close()


def _settings(smtp, receiver, **more) -> dict:
    return {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_from": "GridLoop <noreply@grid.example.cn>",
            "webhook_url": receiver.url, "webhook_secret": SECRET, "retry_seconds": 60, **more}


@pytest.fixture
def mail_app(database_url, smtp, receiver):
    """The app with both channels set up, pointing at the local SMTP server and HTTP receiver."""
    with configured_app(database_url, delivery=_settings(smtp, receiver)) as app:
        yield app


def _choose(db, username: str, email_on: bool = True, webhook_on: bool = True) -> int:
    uid = user_id(db, username)
    db.merge(DeliveryPreference(user_id=uid, email=f"{username}@grid.example.cn", email_on=email_on,
                                webhook_on=webhook_on))
    db.flush()
    return uid


def _notify(app, user_ids: list[int], kind: str = "reminder", **params) -> None:
    with app.app_context():
        session = get_session()
        notify(session, user_ids, kind, number="20261201-000001", due_at="2026-12-03T10:00:00+00:00", **params)
        session.commit()


def _deliveries(db) -> list[Delivery]:
    db.expire_all()
    return db.scalars(select(Delivery).order_by(Delivery.id)).all()


def _subject(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


# -- queuing -----------------------------------------------------------------------------------------------

def test_nothing_is_queued_or_read_while_no_channel_is_set_up(app, db):
    _choose(db, "member_a")
    _notify(app, [user_id(db, "member_a")])
    assert db.scalar(select(func.count()).select_from(Notification)) == 1
    assert _deliveries(db) == []
    assert jobs.deliver(app).claimed == 0


def test_each_person_gets_the_channels_they_chose(mail_app, db):
    both, mail_only = _choose(db, "member_a"), _choose(db, "leader_a", webhook_on=False)
    nothing = user_id(db, "member_a2")  # never chose: the app only
    _choose(db, "leader_a2", email_on=False, webhook_on=False)
    _notify(mail_app, [both, mail_only, nothing, user_id(db, "leader_a2")])
    assert sorted((d.user_id, d.channel.value, d.address) for d in _deliveries(db)) == sorted([
        (both, "email", "member_a@grid.example.cn"), (both, "webhook", ""),
        (mail_only, "email", "leader_a@grid.example.cn")])


def test_a_rolled_back_notification_queues_nothing(mail_app, db):
    uid = _choose(db, "member_a")
    with mail_app.app_context():
        session = get_session()
        notify(session, [uid], "reminder", number="x", due_at="")
        session.flush()
        session.rollback()
    assert _deliveries(db) == []


# -- sending -----------------------------------------------------------------------------------------------

def test_a_reminder_goes_out_by_email_and_signed_webhook_once(mail_app, db, smtp, receiver):
    uid = _choose(db, "member_a")
    db.execute(User.__table__.update().where(User.id == uid).values(phone="+8613812345678"))
    _notify(mail_app, [uid])
    totals = jobs.deliver(mail_app)
    assert (totals.claimed, totals.sent, totals.failed) == (2, 2, 0)
    assert jobs.deliver(mail_app).claimed == 0  # sent rows are never taken again

    [mail] = smtp.messages
    assert mail["To"] == "member_a@grid.example.cn"
    assert "催办" in _subject(mail) and "20261201-000001" in mail.get_payload(decode=True).decode()
    email_row, hook_row = _deliveries(db)
    assert mail["Message-ID"] == f"<gridloop-delivery-{email_row.id}@grid.example.cn>"

    [(headers, body, _code)] = receiver.received
    expected = hmac.new(SECRET.encode(), headers["X-GridLoop-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-GridLoop-Signature"] == f"sha256={expected}"
    document = json.loads(body)
    assert headers["Idempotency-Key"] == document["id"] == f"gridloop-delivery-{hook_row.id}"
    assert document["kind"] == "reminder" and document["text"].startswith("催办")
    assert document["recipient"] == {"id": uid, "username": "member_a", "name": "网格员甲", "phone": "+8613812345678"}
    assert [r.status for r in (email_row, hook_row)] == [DeliveryStatus.SENT] * 2
    assert all(r.sent_at is not None and r.attempts == 1 for r in (email_row, hook_row))


def test_a_failing_gateway_is_retried_with_growing_waits_then_given_up(database_url, smtp, receiver, db):
    settings = _settings(smtp, receiver, max_attempts=3, smtp_host="")  # the webhook only
    with configured_app(database_url, delivery=settings) as app:
        uid = _choose(db, "member_a")
        _notify(app, [uid])
        receiver.answers = [500, 503, 502]
        start = dt.datetime.now(dt.UTC)
        assert jobs.deliver(app, start).failed == 1
        [row] = _deliveries(db)
        assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
        assert row.next_attempt_at == start + dt.timedelta(seconds=60) and "HTTP 500" in row.last_error
        assert jobs.deliver(app, start + dt.timedelta(seconds=59)).claimed == 0  # not before its time
        later = start + dt.timedelta(seconds=60)
        assert jobs.deliver(app, later).failed == 1
        [row] = _deliveries(db)
        assert row.next_attempt_at == later + dt.timedelta(seconds=120)  # the wait doubles
        assert jobs.deliver(app, later + dt.timedelta(seconds=120)).failed == 1
        [row] = _deliveries(db)
        assert (row.status, row.attempts) == (DeliveryStatus.FAILED, 3) and "HTTP 502" in row.last_error
        assert jobs.deliver(app, later + dt.timedelta(days=2)).claimed == 0  # given up: no more attempts
        assert len(receiver.received) == 3

        with app.app_context():  # an administrator sends it again once the gateway is back
            session = get_session()
            delivery.retry(session, row.id)
            session.commit()
        assert jobs.deliver(app).sent == 1
        assert _deliveries(db)[0].status == DeliveryStatus.SENT


def test_an_unreachable_smtp_server_is_an_attempt_that_failed_not_a_crash(database_url, receiver, db):
    with configured_app(database_url, delivery={"smtp_host": "127.0.0.1", "smtp_port": _free_port(),
                                                "timeout_seconds": 2}) as app:
        _notify(app, [_choose(db, "member_a")])
        assert jobs.deliver(app).failed == 1
        [row] = _deliveries(db)
        assert row.status == DeliveryStatus.PENDING and "Connection refused" in row.last_error


def test_a_claim_is_leased_and_a_lost_claim_records_nothing(mail_app, db):
    _notify(mail_app, [_choose(db, "member_a", webhook_on=False)])
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(minutes=5)
    maker = mail_app.extensions["gridloop.sessionmaker"]
    with maker() as first:
        [taken] = delivery.claim(first, now, 10, lease)
        first.commit()
    with maker() as second:  # another scheduler: the message is SENDING under the first one's lease
        assert delivery.claim(second, now + dt.timedelta(minutes=4), 10, lease) == []
        # The first scheduler died mid-send: after the lease another one takes it over (attempt 2).
        [again] = delivery.claim(second, now + lease, 10, lease)
        second.commit()
    assert (taken.id, taken.attempt, again.attempt) == (again.id, 1, 2)
    with maker() as late:  # the first one's result arrives after all: the claim was lost, nothing recorded
        assert delivery.record(late, taken, None, now, {}) is None
        assert delivery.record(late, again, None, now, {}) == DeliveryStatus.SENT
        late.commit()


def test_two_claims_at_once_split_the_outbox(mail_app, db):
    """Row locks: while one scheduler holds its claim open, another takes only the rest (SKIP LOCKED);
    on SQLite the second claim waits for the first to commit and then sees the rows taken."""
    ids = [_choose(db, name, webhook_on=False) for name in ("member_a", "member_a2", "leader_a", "leader_a2")]
    _notify(mail_app, ids)
    maker = mail_app.extensions["gridloop.sessionmaker"]
    now = dt.datetime.now(dt.UTC)
    lease = dt.timedelta(minutes=5)
    with maker() as first:
        taken_first = delivery.claim(first, now, 2, lease)
        if db.bind.dialect.name == "sqlite":
            first.commit()
        with maker() as second:
            taken_second = delivery.claim(second, now, 10, lease)
            second.commit()
        first.commit()
    assert len(taken_first) == 2 and len(taken_second) == 2
    assert not {m.id for m in taken_first} & {m.id for m in taken_second}


# -- exactly once across a scheduler restart (real processes) ------------------------------------------------

def _scheduler(database_url: str, smtp, *args: str) -> subprocess.Popen:
    env = {**os.environ, "GRIDLOOP_APP_DATABASE_URL": database_url, "FLASK_APP": "tracker",
           "GRIDLOOP_SCHEDULER_INTERVAL_SECONDS": "0.2", "GRIDLOOP_DELIVERY_SMTP_HOST": "127.0.0.1",
           "GRIDLOOP_DELIVERY_SMTP_PORT": str(smtp.port)}
    return subprocess.Popen([sys.executable, "-m", "flask", "scheduler", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, f"{what} did not happen in 90 s"
        time.sleep(0.05)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def test_a_reminder_reaches_the_smtp_server_exactly_once_across_a_scheduler_restart(app, db, database_url, smtp):
    member = _choose(db, "member_a", webhook_on=False)
    [case_id] = dispatched_cases(app, 1, dt.datetime.now(dt.UTC) - dt.timedelta(days=40), "member_a", "leader_a")
    reminder = select(Notification.id).where(Notification.case_id == case_id, Notification.kind == "reminder")

    first = _scheduler(database_url, smtp)
    sent = select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.SENT)
    try:  # the scheduler fires the case's timers and mails member_a's notices (sign-for, reminder, supervision)
        _wait_for(lambda: db.scalar(sent) >= 3, first, "three e-mails recorded as sent")
    finally:
        # The restart: killed outright, as a crashed or redeployed process is. (Killed between sending and
        # recording, a message goes again after its lease: test_a_claim_is_leased_and_a_lost_claim_records_nothing.)
        _stop(first)
    assert len(smtp.messages) == 3
    [reminder_id] = db.scalars(reminder).all()

    # After the restart, one more notice: when it arrives, the restarted scheduler has worked the outbox.
    with configured_app(database_url, delivery={"smtp_host": "127.0.0.1", "smtp_port": smtp.port}) as mailing:
        _notify(mailing, [member], "supervision_note", by="网格长甲", note="请尽快处理")
    second = _scheduler(database_url, smtp)
    try:
        _wait_for(lambda: len(smtp.messages) >= 4, second, "the notice after the restart")
        time.sleep(1)  # a few more runs of the delivery job (0.2 s apart): a repeat would show now
    finally:
        _stop(second)

    rows = {d.notification_id: d for d in _deliveries(db)}
    assert all(d.status == DeliveryStatus.SENT and d.attempts == 1 for d in rows.values())
    counts = Counter(smtp.ids())
    assert counts[f"<gridloop-delivery-{rows[reminder_id].id}@localhost>"] == 1
    assert len(smtp.messages) == len(rows) == 4 and set(counts.values()) == {1}
    assert sum("催办" in _subject(m) for m in smtp.messages) == 1


# -- the pages ---------------------------------------------------------------------------------------------

def test_a_person_chooses_channels_on_their_profile(mail_app, db):
    member = Browser(mail_app.test_client())
    member.submit("/login", {"username": "member_a", "password": PASSWORD})
    page = member.get("/profile/messages").get_data(as_text=True)
    assert 'name="email"' in page and 'name="webhook_on"' in page
    refused = member.submit("/profile/messages", {"email": "", "email_on": "y"})
    assert refused.status_code == 422 and 'class="error"' in refused.get_data(as_text=True)
    assert db.get(DeliveryPreference, user_id(db, "member_a")) is None  # nothing saved
    bad = member.submit("/profile/messages", {"email": "not-an-address", "email_on": "y"})
    assert bad.status_code == 422
    saved = member.submit("/profile/messages", {"email": " wang@grid.example.cn ", "email_on": "y",
                                                "webhook_on": "y"})
    assert saved.status_code == 302
    db.expire_all()
    pref = db.get(DeliveryPreference, user_id(db, "member_a"))
    assert (pref.email, pref.email_on, pref.webhook_on) == ("wang@grid.example.cn", True, True)
    member.submit("/profile/messages", {"email": "wang@grid.example.cn"})  # unticked: both off
    db.expire_all()
    assert (pref.email_on, pref.webhook_on) == (False, False)


def test_the_delivery_log_is_for_administrators(mail_app, db, receiver):
    db.add(User(username="admin", display_name="管理员", password_hash=PASSWORD_HASH, is_admin=True))
    db.commit()
    _notify(mail_app, [_choose(db, "member_a", email_on=False)])
    receiver.answers = [500]
    jobs.deliver(mail_app)
    admin = Browser(mail_app.test_client())
    admin.submit("/login", {"username": "admin", "password": PASSWORD})
    page = admin.get("/deliveries").get_data(as_text=True)
    assert "网格员甲" in page and "HTTP 500" in page and "20261201-000001" in page
    member = Browser(mail_app.test_client())
    member.submit("/login", {"username": "member_a", "password": PASSWORD})
    assert member.get("/deliveries").status_code == 403
    assert member.submit(f"/deliveries/{_deliveries(db)[0].id}/retry", {}, page="/profile/messages").status_code \
        == 403


def test_a_webhook_needs_its_secret():
    with pytest.raises(ConfigError, match="webhook_secret"):
        load_config(overrides={"delivery": {"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": ""}})
    with pytest.raises(ConfigError, match="webhook_url"):
        load_config(overrides={"delivery": {"webhook_url": "ftp://x", "webhook_secret": "s"}})


# -- a new task ----------------------------------------------------------------------------------------------

def test_a_case_dispatched_to_someone_who_gets_messages_reaches_them_as_a_new_task(mail_app, db, smtp):
    _choose(db, "member_a2", webhook_on=False)
    member, leader = Browser(mail_app.test_client()), Browser(mail_app.test_client())
    member.submit("/login", {"username": "member_a", "password": PASSWORD})
    leader.submit("/login", {"username": "leader_a", "password": PASSWORD})
    for handler in ("member_a2", "member_a"):  # member_a never chose a channel: the inbox is enough
        assert member.submit("/cases/new", intake(db)).status_code == 302
        assert dispatch(leader, db, latest_case(db).id, handler=handler).status_code == 302
    kinds = db.execute(select(Notification.user_id, Notification.kind)).all()
    assert kinds == [(user_id(db, "member_a2"), "new_task")]
    assert jobs.deliver(mail_app).sent == 1
    [mail] = smtp.messages
    assert mail["To"] == "member_a2@grid.example.cn" and "新任务" in _subject(mail)
    assert "网格长甲" in mail.get_payload(decode=True).decode()


def test_without_a_channel_a_dispatch_writes_no_new_task_notice(app, db, login):
    _choose(db, "member_a")
    login("member_a").submit("/cases/new", intake(db))
    assert dispatch(login("leader_a"), db, latest_case(db).id).status_code == 302
    assert db.scalar(select(func.count()).select_from(Notification)) == 0
