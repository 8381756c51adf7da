"""Messages that reach people: notifications sent by e-mail (SMTP) and to a webhook, through an outbox.

``notify`` queues one ``Delivery`` row per notification and channel the person chose, in the same
transaction as the notification (so a rolled-back tick queues nothing). The scheduler's delivery job
then works the outbox in three steps:

1. ``claim``: take due rows with row locks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so schedulers
   split the work; SQLite serializes writers), mark them SENDING with a lease, commit;
2. send each one outside any transaction (a slow mail server holds no lock);
3. ``record``: SENT, or back to PENDING with a doubling wait, or FAILED after ``max_attempts``.

A row that was SENT is never taken again, so restarting a scheduler sends nothing twice. A scheduler
killed between sending and recording leaves the row SENDING; when its lease ends another one sends
it again. That is the one case of a repeat, and the receiver can tell: the e-mail's Message-ID and
the webhook's ``Idempotency-Key`` name the delivery, the same on every attempt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ..codes import DeliveryChannel, DeliveryStatus
from ..models import Delivery, DeliveryPreference, Notification, User, utcnow

#: session.info key: the channels this deployment has configured (set on every session by ``init_app``).
CHANNELS_KEY = "gridloop.delivery_channels"
_PREFS_KEY = "gridloop.delivery_prefs"
#: The longest wait between two attempts.
RETRY_MAX = dt.timedelta(days=1)
#: The webhook's signature header: "sha256=" + HMAC-SHA256(secret, timestamp + "." + body), in hex.
SIGNATURE_HEADER = "X-GridLoop-Signature"
TIMESTAMP_HEADER = "X-GridLoop-Timestamp"


def configured_channels(settings: Mapping[str, Any]) -> tuple[DeliveryChannel, ...]:
    """Return the channels ``[delivery]`` turns on: e-mail with an SMTP host, the webhook with a URL."""
    channels = []
    if settings.get("smtp_host"):
        channels.append(DeliveryChannel.EMAIL)
    if settings.get("webhook_url"):
        channels.append(DeliveryChannel.WEBHOOK)
    return tuple(channels)


def init_app(app) -> None:
    """Tell every session of the app which channels are on: with none, notify queues nothing and reads nothing."""
    channels = configured_channels(app.config["GRIDLOOP"].get("delivery", {}))
    app.extensions["gridloop.sessionmaker"].configure(info={CHANNELS_KEY: channels})


def channels_on(session: Session) -> bool:
    """Whether any channel is set up for this session's app."""
    return bool(session.info.get(CHANNELS_KEY))


def wanting(session: Session, user_ids: Iterable[int]) -> list[int]:
    """Return those of ``user_ids`` who get messages by a channel that is set up."""
    channels = session.info.get(CHANNELS_KEY) or ()
    prefs = _preferences(session, set(user_ids))
    return sorted(user_id for user_id, pref in prefs.items() if pref is not None and (
        (pref[1] and pref[0] and DeliveryChannel.EMAIL in channels)
        or (pref[2] and DeliveryChannel.WEBHOOK in channels)))


def enqueue(session: Session, notifications: Iterable[Notification]) -> int:
    """Queue the notifications for each channel their person chose; return how many messages were queued."""
    channels = session.info.get(CHANNELS_KEY)
    notifications = list(notifications)
    if not channels or not notifications:
        return 0
    prefs = _preferences(session, {n.user_id for n in notifications})
    now = utcnow()
    queued = 0
    for notification in notifications:
        pref = prefs.get(notification.user_id)
        if pref is None:
            continue
        email, email_on, webhook_on = pref
        wanted = [(DeliveryChannel.EMAIL, email)] if email_on and email and DeliveryChannel.EMAIL in channels else []
        if webhook_on and DeliveryChannel.WEBHOOK in channels:
            wanted.append((DeliveryChannel.WEBHOOK, ""))
        for channel, address in wanted:
            session.add(Delivery(notification=notification, user_id=notification.user_id, channel=channel,
                                 address=address, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                                 last_error="", created_at=now))
            queued += 1
    return queued


def _preferences(session: Session, user_ids: set[int]) -> dict[int, tuple[str, bool, bool] | None]:
    """Return each person's (e-mail, e-mail on, webhook on), read once per session (a tick asks per case)."""
    cache = session.info.setdefault(_PREFS_KEY, {})
    missing = user_ids - cache.keys()
    if missing:
        with session.no_autoflush:
            found = {p.user_id: (p.email, p.email_on, p.webhook_on) for p in session.scalars(
                select(DeliveryPreference).where(DeliveryPreference.user_id.in_(missing)))}
        cache.update({user_id: found.get(user_id) for user_id in missing})
    return {user_id: cache[user_id] for user_id in user_ids}


def preference(session: Session, user: User) -> DeliveryPreference:
    """Return the user's preference row, a new unsaved one (everything off) if they never chose."""
    return session.get(DeliveryPreference, user.id) or DeliveryPreference(
        user_id=user.id, email="", email_on=False, webhook_on=False)


def set_preference(session: Session, user: User, email: str, email_on: bool, webhook_on: bool) -> DeliveryPreference:
    """Store which channels the user wants and their e-mail address."""
    pref = session.get(DeliveryPreference, user.id)
    if pref is None:
        pref = DeliveryPreference(user_id=user.id)
        session.add(pref)
    pref.email, pref.email_on, pref.webhook_on = email.strip(), email_on, webhook_on
    session.info.pop(_PREFS_KEY, None)
    session.flush()
    return pref


@dataclass(frozen=True)
class Outgoing:
    """One claimed message, with everything needed to send it outside the transaction."""

    id: int
    attempt: int
    channel: str
    address: str
    notification_id: int
    kind: str
    params: dict[str, Any]
    created_at: dt.datetime
    user_id: int
    username: str
    name: str
    phone: str
    case_id: int | None
    case_number: str | None

    @property
    def key(self) -> str:
        """Name the message the same way on every attempt (Message-ID, Idempotency-Key)."""
        return f"gridloop-delivery-{self.id}"


def claim(session: Session, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[Outgoing]:
    """Take up to ``limit`` due messages under row locks, mark them SENDING until ``now + lease``; caller commits."""
    rows = session.scalars(
        select(Delivery).where(Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                               Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
        .options(joinedload(Delivery.notification).joinedload(Notification.case), joinedload(Delivery.user))
        .with_for_update(of=Delivery, skip_locked=True)  # SQLite ignores it: its writers are serialized
        .execution_options(populate_existing=True)).unique().all()
    taken = []
    for row in rows:
        row.status = DeliveryStatus.SENDING
        row.attempts += 1
        row.next_attempt_at = now + lease
        n, user = row.notification, row.user
        taken.append(Outgoing(
            id=row.id, attempt=row.attempts, channel=row.channel.value, address=row.address,
            notification_id=n.id, kind=n.kind.value, params=json.loads(n.params or "{}"), created_at=n.created_at,
            user_id=user.id, username=user.username, name=user.display_name, phone=user.phone,
            case_id=n.case_id, case_number=n.case.number if n.case else None))
    session.flush()
    return taken


def record(session: Session, message: Outgoing, error: str | None, now: dt.datetime,
           settings: Mapping[str, Any]) -> DeliveryStatus | None:
    """Record how an attempt went; return the new status, or None when the claim was lost meanwhile."""
    row = session.scalars(select(Delivery).where(Delivery.id == message.id).with_for_update()
                          .execution_options(populate_existing=True)).one_or_none()
    if row is None or row.status != DeliveryStatus.SENDING or row.attempts != message.attempt:
        return None  # our lease ran out and another scheduler took the message over: it records
    if error is None:
        row.status, row.sent_at, row.last_error = DeliveryStatus.SENT, now, ""
    else:
        row.last_error = error[:2000]
        if row.attempts >= settings.get("max_attempts", 6):
            row.status = DeliveryStatus.FAILED
        else:
            wait = dt.timedelta(seconds=settings.get("retry_seconds", 60)) * 2 ** (row.attempts - 1)
            row.status, row.next_attempt_at = DeliveryStatus.PENDING, now + min(wait, RETRY_MAX)
    session.flush()
    return row.status


def retry(session: Session, delivery_id: int) -> Delivery | None:
    """Put a FAILED message back in the outbox now (an administrator fixed the address or the gateway)."""
    row = session.get(Delivery, delivery_id)
    if row is None or row.status != DeliveryStatus.FAILED:
        return None
    row.status, row.attempts, row.next_attempt_at = DeliveryStatus.PENDING, 0, utcnow()
    session.flush()
    return row


# --- channels -----------------------------------------------------------------------------------------------

def send(message: Outgoing, subject: str, text: str, link: str | None, settings: Mapping[str, Any]) -> str | None:
    """Send one message over its channel; return None on success, else what went wrong."""
    try:
        if message.channel == DeliveryChannel.EMAIL:
            send_email(message, subject, text, link, settings)
        else:
            send_webhook(message, subject, text, link, settings)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def send_email(message: Outgoing, subject: str, text: str, link: str | None, settings: Mapping[str, Any]) -> None:
    """Send the message as a plain-text e-mail over SMTP."""
    sender = settings.get("smtp_from") or "gridloop@localhost"
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.address
    email["Subject"] = subject
    email["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    # The same on every attempt: a mail client shows a repeat (a sender killed mid-send) once.
    email["Message-ID"] = f"<{message.key}@{domain}>"
    email.set_content(text + (f"\n\n{link}\n" if link else "\n"))
    timeout = settings.get("timeout_seconds", 10)
    with smtplib.SMTP(settings["smtp_host"], settings.get("smtp_port", 25), timeout=timeout) as smtp:
        if settings.get("smtp_starttls"):
            smtp.starttls()
        if settings.get("smtp_username"):
            smtp.login(settings["smtp_username"], settings.get("smtp_password", ""))
        smtp.send_message(email)


def webhook_body(message: Outgoing, subject: str, text: str, link: str | None) -> bytes:
    """Return the webhook's JSON document (see README, "Messages that reach people")."""
    return json.dumps({
        "id": message.key,
        "kind": message.kind,
        "subject": subject,
        "text": text,
        "link": link,
        "created_at": message.created_at.isoformat(),
        "attempt": message.attempt,
        "recipient": {"id": message.user_id, "username": message.username, "name": message.name,
                      "phone": message.phone},
        "case": {"id": message.case_id, "number": message.case_number} if message.case_id else None,
        "params": message.params,
    }, ensure_ascii=False, sort_keys=True, default=str).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_webhook(message: Outgoing, subject: str, text: str, link: str | None, settings: Mapping[str, Any]) -> None:
    """POST the message as signed JSON; any answer but 2xx is a failed attempt."""
    body = webhook_body(message, subject, text, link)
    timestamp = str(int(time.time()))
    request = urllib.request.Request(settings["webhook_url"], data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "GridLoop",
        "Idempotency-Key": message.key, TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.get("webhook_secret", ""), timestamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=settings.get("timeout_seconds", 10)) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise OSError(f"the webhook answered HTTP {exc.code}") from None
