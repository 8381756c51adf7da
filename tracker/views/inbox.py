"""My tasks and my lanes' unclaimed pool."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from ..db import get_session
from ..forms import ClaimForm
from ..models import Case, Task, TaskStatus
from ..permissions import pool_filter

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
    mine = db.scalars(base.where(Task.assignee_id == current_user.id).limit(200)).all()
    pool = db.scalars(base.where(Task.assignee_id.is_(None), pool_filter(current_user)).limit(200)).all()
    return render_template("inbox/index.html", mine=mine, pool=pool, claim_form=ClaimForm())
