"""API tokens: created once (the secret is shown once), stored hashed, revocable, acting as their user."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload

from ..db import write_intent
from ..errors import N_, InvalidInput, NotFound
from ..models import ApiToken, User, utcnow

#: Every secret starts with this, so a leaked one is easy to recognise (and to scan for).
PREFIX = "glt_"
#: How often last_used_at is written at most (it would otherwise be an UPDATE per API call).
TOUCH_EVERY = dt.timedelta(minutes=5)


def digest(secret: str) -> str:
    """Return the stored form of a token secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the row and the secret, which is never stored or shown again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput(N_("Name the token (up to 100 characters), e.g. the program that will use it."),
                           field="name")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=digest(secret), prefix=secret[:10],
                     created_at=utcnow())
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> User | None:
    """Return the active user a live token belongs to, or None."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    # The user (and, by its selectin, their memberships) comes with the token: every request asks.
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret))
                           .options(joinedload(ApiToken.user, innerjoin=True)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        if write_intent.get():
            token.last_used_at = now  # a writing request commits it with its own work
        else:
            _touch(session, token.id, now)
    return token.user


def _touch(session: Session, token_id: int, now: dt.datetime) -> None:
    """Note when a token was last used, in a short transaction of its own, for a reading request.

    On SQLite a read snapshot cannot always turn into a write; and the note is best effort: a busy
    database skips it rather than failing the call.
    """
    try:
        with session.get_bind().connect() as connection:
            # On SQLite wait a moment for the write lock, not the usual half minute (set on the driver
            # connection, so no transaction begins before ours).
            raw = connection.connection.driver_connection if connection.dialect.name == "sqlite" else None
            waited = raw.execute("PRAGMA busy_timeout").fetchone()[0] if raw is not None else None
            if raw is not None:
                raw.execute("PRAGMA busy_timeout = 200")
            try:
                with connection.begin():
                    connection.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
            finally:
                if raw is not None:
                    raw.execute(f"PRAGMA busy_timeout = {int(waited)}")
    except OperationalError:
        return


def revoke(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens (an admin may revoke anyone's)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != user.id and not user.is_admin):
        raise NotFound(N_("Token not found."))
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    session.flush()
    return token


def of(session: Session, user: User) -> list[ApiToken]:
    """Return the user's tokens, newest first."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())))


__all__ = ["PREFIX", "authenticate", "create", "digest", "of", "revoke"]
