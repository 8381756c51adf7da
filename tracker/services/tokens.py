"""API tokens: created once (the secret is shown once), stored hashed, revocable, acting as their user
within a scope (Open311 filing only, read only, or full) and, when given one, until they expire."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload

from ..db import write_intent
from ..errors import N_, DomainError, NotFound
from ..models import ApiToken, TokenScope, User, utcnow
from .commands import CreateToken, build

#: Every secret starts with this, so a leaked one is easy to recognise (and to scan for).
PREFIX = "glt_"
#: How often last_used_at is written at most (it would otherwise be an UPDATE per API call).
TOUCH_EVERY = dt.timedelta(minutes=5)
#: The longest expiry a token can be given, in days (ten years).
MAX_DAYS = 3650
#: Which scopes may make a call, by door ("api", "open311") and whether it may change anything; narrowest first.
ALLOWED: dict[tuple[str, bool], tuple[TokenScope, ...]] = {
    ("api", False): (TokenScope.READ, TokenScope.FULL),
    ("api", True): (TokenScope.FULL,),
    ("open311", False): (TokenScope.OPEN311, TokenScope.READ, TokenScope.FULL),
    ("open311", True): (TokenScope.OPEN311, TokenScope.FULL),
}
#: What each scope lets a program do, for the refusals (English, as the API's and Open311's errors are).
MEANINGS = {
    TokenScope.OPEN311: "it may only file requests through /open311/v2 and follow them",
    TokenScope.READ: "it may only read (GET), through /api/v1 and Open311",
    TokenScope.FULL: "it may do everything its user may",
}

#: A token by its digest, its user and their memberships with it: every request asks (built once).
_BY_DIGEST = (select(ApiToken).where(ApiToken.token_hash == bindparam("digest"))
              .options(joinedload(ApiToken.user, innerjoin=True).joinedload(User.memberships)))


class TokenExpired(DomainError):
    """The token was issued with an expiry, and that moment has passed."""


def digest(secret: str) -> str:
    """Return the stored form of a token secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create(session: Session, user: User, name: str, scope: TokenScope = TokenScope.FULL,
           expires_days: int | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``user`` from plain values (scripts, the CLI, tests): see ``issue``."""
    return issue(session, user, build(CreateToken, {"name": name, "scope": scope, "expires_days": expires_days}))


def issue(session: Session, user: User, command: CreateToken) -> tuple[ApiToken, str]:
    """Create a token for ``user``; return the row and the secret, which is never stored or shown again.

    The command's scope limits what it may do; its ``expires_days`` ends it that many days from now.
    """
    name, scope, expires_days = command.name, command.scope, command.expires_days
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(user_id=user.id, name=name, token_hash=digest(secret), prefix=secret[:10],
                     scope=TokenScope(scope), created_at=now,
                     expires_at=now + dt.timedelta(days=expires_days) if expires_days is not None else None)
    session.add(token)
    session.flush()
    return token, secret


def authenticate(session: Session, secret: str) -> ApiToken | None:
    """Return the live token, its user loaded; None when it is unknown, revoked or its user disabled.

    Raise TokenExpired when the token is otherwise good but its expiry has passed.
    """
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = session.execute(_BY_DIGEST, {"digest": digest(secret)}).unique().scalar_one_or_none()
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenExpired(N_("This token expired at %(when)s UTC; create a new one on your profile page (or "
                              "ask the administrator: flask create-token USERNAME --name NAME --scope SCOPE)."),
                           when=token.expires_at.strftime("%Y-%m-%d %H:%M"))
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        if write_intent.get():
            token.last_used_at = now  # a writing request commits it with its own work
        else:
            _touch(session, token.id, now)
    return token


def refusal(token: ApiToken, door: str, writes: bool, call: str) -> str | None:
    """Say why the token's scope does not allow ``call`` (e.g. "POST /api/v1/cases") at ``door``; None if it does.

    ``writes``: the call may change something (any method but GET, HEAD and OPTIONS).
    """
    needed = ALLOWED[door, writes]
    if token.scope in needed:
        return None
    scope = TokenScope(token.scope)
    return (f"This token's scope is {scope}: {MEANINGS[scope]}. {call} needs a token of scope "
            f"{' or '.join(needed)}; create one on your profile page (or: flask create-token USERNAME "
            f"--name NAME --scope {needed[0]}).")


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


__all__ = ["ALLOWED", "MAX_DAYS", "PREFIX", "TokenExpired", "authenticate", "create", "digest", "of", "refusal",
           "revoke"]
