"""Accounts: signing in without telling which names exist, and ending sessions server-side."""

from __future__ import annotations

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session, joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import N_, InvalidInput
from ..models import ApiToken, Membership, User, utcnow

#: Checked when the name is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password-of-anyone")


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with this name and password, else None (in about constant time)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active or user.is_program:
        return None  # a program's account works through its tokens only
    return user


#: Shortest password accepted when one is set.
MIN_PASSWORD_LENGTH = 10


def check_password(username: str, password: str) -> None:
    """Refuse a password that is short, the username, or one character repeated (the one rule, every door)."""
    if len(password) < MIN_PASSWORD_LENGTH or password.strip().lower() == username.lower() \
            or len(set(password)) < 4:
        raise InvalidInput(N_("Choose a password of at least %(n)d characters, not your username and not one "
                              "character repeated."), field="password", n=MIN_PASSWORD_LENGTH)


def set_password(session: Session, user: User, password: str) -> int:
    """Give the user a new password (stored hashed); their sessions end at the flush and their API tokens
    are revoked (whoever knew the old password could have made one). Return how many were revoked."""
    check_password(user.username, password)
    user.password_hash = generate_password_hash(password)
    revoked = session.execute(update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=utcnow()))
    return revoked.rowcount


def set_active(user: User, active: bool) -> None:
    """Enable or disable an account; disabling ends its sessions (and its API tokens stop working)."""
    user.active = active


def end_sessions(user: User) -> None:
    """End every session of the user, on every device: their signed id no longer matches."""
    user.session_generation = (user.session_generation or 0) + 1


def user_for_session(session: Session, session_id: str) -> User | None:
    """Return the user a session's stored id ("<id>.<generation>") still stands for, else None."""
    user_id, _, generation = session_id.partition(".")
    if not (user_id.isdigit() and generation.isdigit()) or len(session_id) > 40:
        return None  # a session from before generations, or a forged id
    user = session.get(User, int(user_id), options=[joinedload(User.memberships)])  # one query, roles with it
    if user is None or not user.active or (user.session_generation or 0) != int(generation):
        return None
    return user


@event.listens_for(Session, "before_flush")
def _end_sessions_on_account_changes(session: Session, _context, _instances) -> None:
    """A new password, disabling an account or taking a role away ends the user's sessions.

    Listening at flush catches every door that changes an account (CLI, admin screens, scripts).
    """
    for obj in session.dirty:
        if isinstance(obj, User):
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in ("password_hash", "active")) \
                    or state.attrs.memberships.history.deleted:
                if not state.attrs.session_generation.history.has_changes():
                    end_sessions(obj)
    for obj in session.deleted:
        if isinstance(obj, Membership) and obj.user is not None and obj.user not in session.deleted:
            if not inspect(obj.user).attrs.session_generation.history.has_changes():
                end_sessions(obj.user)


__all__ = ["MIN_PASSWORD_LENGTH", "authenticate", "check_password", "end_sessions", "set_active", "set_password",
           "user_for_session"]
