"""My tasks and my lanes' unclaimed pool."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..db import get_session
from ..forms import ClaimForm
from .. import clock
from ..models import Case, Role, Task, TaskStatus, Visit, VisitStatus
from ..permissions import grid_ids, pool_filter

bp = Blueprint("inbox", __name__)


@bp.route("/")
@login_required
def index():
    """List tasks assigned to me and the pool I may claim from."""
    db = get_session()
    # contains_eager reuses the join the ordering needs; a separate joinedload would add an outer
    # join of (case, building, grid) that SQLite materializes by scanning every case.
    base = (select(Task).join(Task.case).join(Case.building)
            .options(contains_eager(Task.case).contains_eager(Case.building))
            .where(Task.status == TaskStatus.OPEN)
            .order_by(Case.green_channel.desc(), Task.due_at.is_(None), Task.due_at, Task.created_at))
    # Only tasks of lanes I still hold a role in: someone who lost a role sees no work of it.
    mine = db.scalars(base.where(Task.assignee_id == current_user.id, pool_filter(current_user)).limit(200)).all()
    pool = db.scalars(base.where(Task.assignee_id.is_(None), pool_filter(current_user)).limit(200)).all()
    visits = db.scalars(select(Visit).where(Visit.member_id == current_user.id, Visit.status == VisitStatus.OPEN,
                                            Visit.planned_at <= _end_of_today())
                        .order_by(Visit.planned_at).limit(100)).all()
    leads = grid_ids(current_user, Role.GRID_LEADER)
    missed = db.scalars(select(Visit).where(Visit.grid_id.in_(leads), Visit.status == VisitStatus.OPEN,
                                            Visit.missed_at.is_not(None))
                        .order_by(Visit.planned_at).limit(100)).all() if leads else []
    return render_template("inbox/index.html", mine=mine, pool=pool, visits=visits, missed=missed,
                           claim_form=ClaimForm())


def _end_of_today() -> dt.datetime:
    """Return the end of the local day on the app's clock (visits planned later today show too)."""
    zone = current_app.extensions["gridloop.calendar"].zone
    today = clock.now().astimezone(zone).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), zone)
