"""My tasks and my lanes' unclaimed pool."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required

from .. import clock, queries
from ..db import get_session
from ..forms import ClaimForm

bp = Blueprint("inbox", __name__)


@bp.route("/")
@login_required
def index():
    """List tasks assigned to me and the pool I may claim from."""
    zone = current_app.extensions["gridloop.calendar"].zone
    found = queries.inbox(get_session(), current_user, clock.now(), zone)
    return render_template("inbox/index.html", mine=found.mine, pool=found.pool, visits=found.visits,
                           missed=found.missed, claim_form=ClaimForm())
