"""The public door: the resident form a grid poster's QR code opens, and following a case by its number.

No one signs in here. A request filed through the form enters the same intake as every other door
(``cases.open_case``) with the door ``public`` and the channel ``qr_code`` (扫码), recorded as the
system account named by ``[public] recorder``: an account that cannot log in (its password hash
matches no password) and holds no role, so it appears in no inbox, pool or list of people to pick.
Its cases' record-and-reply step waits in the grid's pool for a member to call the resident back.
"""

from __future__ import annotations

import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..codes import Channel, Door
from ..models import Case, User
from . import Services
from .cases import open_case
from .commands import RecordCase

#: The recorder's display name: what the case page and its audit chain show as who recorded it.
RECORDER_NAME = "居民扫码自助登记"


def recorder_username(svc: Services) -> str:
    """Return the username of the public form's system account (``[public] recorder``)."""
    return svc.config.get("public", {}).get("recorder", "public_form")


def recorder(svc: Services) -> User:
    """Return the public form's system account, creating it on first use (two at once: one wins)."""
    username = recorder_username(svc)
    user = svc.session.scalar(select(User).where(User.username == username))
    if user is not None:
        return user
    try:
        with svc.session.begin_nested():
            # "!" + random: not a hash any password matches (werkzeug reads no method in it).
            user = User(username=username, display_name=RECORDER_NAME, password_hash="!" + secrets.token_hex(16),
                        is_admin=False, active=True, is_program=True)
            svc.session.add(user)
    except IntegrityError:
        user = svc.session.scalar(select(User).where(User.username == username))
    assert user is not None
    return user


def file_request(svc: Services, command: RecordCase) -> Case:
    """File a resident's request from the public form: the same intake as every door, left for the grid."""
    if command.channel != Channel.QR_CODE or command.answered_on_spot is not None:
        raise ValueError("the public form files channel qr_code, left for the grid to record and reply")
    return open_case(svc, recorder(svc), command, door=Door.PUBLIC)


def follow(session: Session, number: str, last_four: str) -> Case | None:
    """Return the case with this number whose resident phone ends in ``last_four``, else None.

    The same answer whether the number is unknown or the digits are wrong: nothing tells which. A case
    with no phone (a visit's household gave none) cannot be followed here.
    """
    number, last_four = number.strip(), last_four.strip()
    if not (len(last_four) == 4 and last_four.isascii() and last_four.isdigit()) or len(number) > 32:
        return None
    case = session.scalar(select(Case).where(Case.number == number))
    if case is None or len(case.resident_phone) < 4:
        return None
    return case if hmac.compare_digest(case.resident_phone[-4:], last_four) else None


__all__ = ["RECORDER_NAME", "file_request", "follow", "recorder", "recorder_username"]
