"""My tasks and my lanes' unclaimed pool."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, url_for
from flask_login import current_user, login_required

from .. import clock, queries
from ..db import get_session
from ..forms import ClaimForm
from ..models import Role, User

bp = Blueprint("inbox", __name__)
#: Roles whose work reaches them as tasks: the inbox is their start page.
WORKING_ROLES = (Role.GRID_MEMBER, Role.GRID_LEADER, Role.DEPARTMENT_HANDLER, Role.STREET_OFFICE)


def has_inbox(user: User) -> bool:
    """Whether work reaches ``user`` as tasks (auditors and administrators without such a role: none)."""
    return any(m.role in WORKING_ROLES for m in user.memberships)


def start_page(user: User) -> str | None:
    """Where someone with no inbox starts: an auditor at the audit search, an administrator at the
    administration (else the case list); None for everyone else (the inbox)."""
    if has_inbox(user):
        return None
    if any(m.role == Role.AUDITOR for m in user.memberships):
        return url_for("audit.search")
    if user.is_admin:
        return url_for("admin.index") if "admin.index" in current_app.view_functions else url_for("cases.index")
    return None


@bp.route("/")
@login_required
def index():
    """List tasks assigned to me and the pool I may claim from (or send those without an inbox on)."""
    if (elsewhere := start_page(current_user)) is not None:
        return redirect(elsewhere)
    zone = current_app.extensions["gridloop.calendar"].zone
    found = queries.inbox(get_session(), current_user, clock.now(), zone)
    return render_template("inbox/index.html", mine=found.mine, pool=found.pool, visits=found.visits,
                           missed=found.missed, claim_form=ClaimForm())
