"""The signed-in user's notifications: reminders, supervision, escalation, missed visits."""

from __future__ import annotations

import json

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from .. import queries
from ..db import get_session
from ..services.notices import mark_read

bp = Blueprint("notifications", __name__, url_prefix="/notifications")


@bp.route("/")
@login_required
def index():
    """List my newest notifications, unread first; seeing them marks them read (those new this time stay marked)."""
    rows = queries.notifications(get_session(), current_user)
    new = {n.id for n in rows if n.read_at is None}
    if new:
        mark_read(get_session(), current_user)  # committed with the page: seen is read
    return render_template("notifications/index.html", rows=rows, params=lambda n: json.loads(n.params), new=new)


@bp.post("/read")
@login_required
def read():
    """Mark all my notifications read (opening the page does it too; kept for pages and programs that post)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    mark_read(get_session(), current_user)
    return redirect(url_for("notifications.index"))
