"""What the desk's pages share about duplicates (重复件): the intake's checks, the case page's panel and forms."""

from __future__ import annotations

import uuid

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import DataRequired, Regexp

from ..db import get_session
from ..forms import rules_from
from ..models import Case, Role
from ..permissions import grid_ids
from ..queries import residents as found
from ..services import duplicates
from ..services.commands import LinkDuplicate, RecordCase
from . import services


def new_intake_key() -> str:
    """Return a fresh one-time key for an intake form."""
    return uuid.uuid4().hex


@rules_from(LinkDuplicate)
class LinkForm(FlaskForm):
    """Link this case to the main case it repeats (a leader, while the case waits for dispatch)."""

    version = HiddenField()
    main_number = StringField(_l("Main case number"))


class UnlinkForm(FlaskForm):
    """Unlink a duplicate still following its main case."""

    version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$")])


def duplicate_panel(case: Case) -> dict:
    """What the case page shows of duplicates: the main case followed, the cases following, the forms."""
    link_row, followers = found.links_touching(get_session(), case.id)
    leads = current_user.is_admin or case.grid_id in grid_ids(current_user, Role.GRID_LEADER)
    linkable = (leads and link_row is None and not followers and case.status in duplicates.LINKABLE
                and any(t.status == "open" for t in case.tasks))
    return {"link": link_row, "followers": followers, "link_form": LinkForm(version=case.version) if linkable else None,
            "unlink_form": UnlinkForm(version=case.version) if leads and link_row is not None
            and link_row.released_at is None else None}


def following(cases: list[Case]) -> set[int]:
    """Return which of a list's cases wait as duplicates of another (no query unless one could)."""
    ids = [c.id for c in cases if c.status in duplicates.LINKABLE]
    return found.waiting_duplicates_among(get_session(), ids) if ids else set()


# -- the intake: a form sent again, and likely duplicates (called by cases.new) ----------------------------

def before_intake(form: FlaskForm, intake: RecordCase):
    """Answer an intake before it is recorded, or return None to record it.

    A form sent again with its one-time key (a double click, a retry) shows the case already made from
    it; a form sent with ``duplicates=check`` whose request matches open or recent cases shows them
    first, and the person saves anyway (``duplicates=confirmed``) or goes to the existing case. The key
    is then reserved for the case about to be made (``after_intake`` keeps it).
    """
    svc = services()
    key = request.form.get("intake_key", "").strip()
    if key and not duplicates.valid_key(key):
        key = ""  # a damaged key protects nothing; the intake itself is sound
    if key and (made := duplicates.replayed(svc, current_user, key, None)) is not None:
        return _already_made(made)
    if request.form.get("duplicates") == "check":
        matches = duplicates.find_duplicates(svc, current_user, intake)
        if matches:
            return render_template("cases/new.html", form=form, matches=matches)
    if key:
        row = duplicates.reserve_key(svc, current_user, key, duplicates.intake_digest(intake))
        if row is None:  # the same form, sent at the same moment, was recorded meanwhile
            made = duplicates.replayed(svc, current_user, key, None)
            return _already_made(made) if made is not None else abort(409)
        g.gridloop_intake_key = row
    return None


def after_intake(case: Case) -> None:
    """Remember the case made under the form's one-time key, if it had one."""
    if (row := g.pop("gridloop_intake_key", None)) is not None:
        duplicates.keep_key(row, case)
        get_session().flush()


def _already_made(case: Case):
    """Show the case a form sent again had already made."""
    flash(_("This form was already sent: case %(number)s was recorded from it.", number=case.number), "info")
    return redirect(url_for("cases.detail", case_id=case.id))
