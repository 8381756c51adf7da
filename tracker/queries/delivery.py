"""The delivery log: the outbox of e-mail and webhook messages, newest first (administrators read it)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from ..codes import DeliveryStatus
from ..models import Delivery, Notification

#: Rows the log shows at once.
LOG_SIZE = 200


def delivery_log(session: Session, status: str | None = None, limit: int = LOG_SIZE) -> Sequence[Delivery]:
    """Return the newest messages, of one status if given, with their notification, case and person."""
    query = (select(Delivery).options(joinedload(Delivery.notification).joinedload(Notification.case),
                                      joinedload(Delivery.user))
             .order_by(Delivery.id.desc()).limit(limit))
    if status:
        query = query.where(Delivery.status == status)
    return session.scalars(query).all()


def delivery_counts(session: Session) -> dict[str, int]:
    """Return how many messages stand in each status (every status named, zero included)."""
    counts = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    return {status.value: counts.get(status, 0) for status in DeliveryStatus}
