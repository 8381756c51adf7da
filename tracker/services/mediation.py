"""Mediations (矛盾调解): recorded while handling a dispute, on the case's chain, with a follow-up reminder.

A mediation's follow-up moment lives in its own row (``follow_up_at``); the scheduler's tick takes
the due ones with row locks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and marks each reminded in the
same transaction as the notification, so a restart loses none and two schedulers never send one twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from .. import media
from ..codes import AttachmentKind, NotificationKind
from ..errors import N_, InvalidInput, NotFound
from ..models import Case, Mediation, User, utcnow
from ..permissions import PermissionDenied, handles_case
from . import Services, attachments, notices
from .audit import record_event
from .commands import RecordMediation, ReferMediation
from .locks import flush

#: The local hour a follow-up reminder goes out on its day.
FOLLOW_UP_HOUR = 9
#: How much of the agreement a reminder quotes.
QUOTE = 100


def record(svc: Services, store: media.Store, actor: User, case_id: int, command: RecordMediation,
           uploads: Sequence[media.Upload] = ()) -> Mediation:
    """Record a mediation on the case (its handler only), with its photos; all or nothing."""
    photos = attachments.check_uploads(svc, uploads)
    case = attachments.lock_case(svc, case_id)
    if not handles_case(actor, case):
        raise PermissionDenied(f"{actor.username} does not handle case {case.number}")
    today = utcnow().astimezone(svc.calendar.zone).date()
    if command.follow_up_on is not None and command.follow_up_on < today:
        raise InvalidInput(N_("The follow-up date is in the past; choose today or a later day."), field="follow_up_on")
    parties = [{"name": p.name, "phone": p.phone} for p in command.parties]
    row = Mediation(case_id=case.id, parties=json.dumps(parties, ensure_ascii=False), mediators=command.mediators,
                    agreement=command.agreement, accepted=command.accepted, referred_to=command.referred_to,
                    follow_up_on=command.follow_up_on, follow_up_at=_follow_up_at(svc, command.follow_up_on),
                    recorded_by_id=actor.id, created_at=utcnow())
    svc.session.add(row)
    svc.session.flush()
    changes = {"mediation": (None, row.id), "mediation_parties": (None, parties),
               "mediation_mediators": (None, row.mediators), "mediation_agreement": (None, row.agreement),
               "mediation_accepted": (None, row.accepted),
               "mediation_follow_up_on": (None, row.follow_up_on.isoformat() if row.follow_up_on else None),
               "mediation_referred_to": (None, row.referred_to or None)}
    record_event(svc.session, case, actor, "mediation.recorded", {k: v for k, v in changes.items() if v[1] is not None})
    attachments.attach(svc, store, actor, case, photos, AttachmentKind.MEDIATION, mediation=row)
    flush(svc.session)
    return row


def _follow_up_at(svc: Services, day: dt.date | None) -> dt.datetime | None:
    """Return the moment of a follow-up day's reminder: FOLLOW_UP_HOUR local time, in UTC."""
    if day is None:
        return None
    local = dt.datetime.combine(day, dt.time(FOLLOW_UP_HOUR), tzinfo=svc.calendar.zone)
    return local.astimezone(dt.UTC)


def refer(svc: Services, actor: User, mediation_id: int, command: ReferMediation) -> Mediation:
    """Refer a failed mediation on (the case's handler); the referral is on the case's chain."""
    row = svc.session.get(Mediation, mediation_id)
    if row is None:
        raise NotFound(N_("Mediation %(id)s not found."), id=mediation_id)
    case = attachments.lock_case(svc, row.case_id)
    if not handles_case(actor, case):
        raise PermissionDenied(f"{actor.username} does not handle case {case.number}")
    if row.accepted:
        raise InvalidInput(N_("Both parties accepted this mediation: there is nothing to refer on."),
                           field="referred_to")
    if row.referred_to:
        raise InvalidInput(N_("This mediation was already referred to %(target)s."), field="referred_to",
                           target=row.referred_to)
    record_event(svc.session, case, actor, "mediation.referred",
                 {"mediation": (None, row.id), "mediation_referred_to": (None, command.referred_to)})
    row.referred_to = command.referred_to
    flush(svc.session)
    return row


def of_case(session: Session, case_id: int) -> list[Mediation]:
    """Return a case's mediations, oldest first."""
    return list(session.scalars(select(Mediation).where(Mediation.case_id == case_id).order_by(Mediation.id)))


def parties(row: Mediation) -> list[dict[str, str]]:
    """Return a mediation's parties as recorded."""
    return json.loads(row.parties)


def fire_follow_ups(session: Session, now: dt.datetime, limit: int = 100) -> int:
    """Remind the handlers of mediations whose follow-up moment has come; return how many were sent.

    Rows are taken under lock (skipping any another scheduler holds) and marked reminded in the
    caller's transaction, together with the notification: committed once, sent once.
    """
    due = session.scalars(
        select(Mediation).where(Mediation.follow_up_at <= now, Mediation.reminded_at.is_(None))
        .order_by(Mediation.follow_up_at, Mediation.id).limit(limit)
        .with_for_update(of=Mediation, skip_locked=True)
        .options(joinedload(Mediation.case).lazyload(Case.grid))).all()
    for row in due:
        notices.notify(session, [row.recorded_by_id], NotificationKind.MEDIATION_FOLLOW_UP, case=row.case,
                       number=row.case.number, agreement=row.agreement[:QUOTE])
        row.reminded_at = now
    session.flush()
    return len(due)


__all__ = ["FOLLOW_UP_HOUR", "fire_follow_ups", "of_case", "parties", "record", "refer"]
