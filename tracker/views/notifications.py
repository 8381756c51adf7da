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
    """List my newest notifications, unread first."""
    rows = queries.notifications(get_session(), current_user)
    return render_template("notifications/index.html", rows=rows, params=lambda n: json.loads(n.params),
                           form=FlaskForm())


@bp.post("/read")
@login_required
def read():
    """Mark all my notifications read."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    mark_read(get_session(), current_user)
    return redirect(url_for("notifications.index"))
