"""Health check for load balancers and process supervisors."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, current_app, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..db import get_session
from ..models import Timer

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Report whether the database answers and which process definitions are loaded."""
    timers = None
    try:
        db = get_session()
        db.execute(text("SELECT 1"))
        database = "ok"
        # Timers due more than five minutes ago mean no scheduler is running (or it is stuck).
        late = db.scalar(select(func.count()).select_from(Timer).where(
            Timer.due_at < clock.now() - dt.timedelta(minutes=5)))
        timers = {"pending": db.scalar(select(func.count()).select_from(Timer)), "late": late}
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unavailable: %s", exc)
        database = "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "definitions": sorted(current_app.extensions["gridloop.definitions"]),
        "rejected_bpmn_files": [str(e) for e in current_app.extensions["gridloop.bpmn_errors"]],
        "timers": timers,
    }
    return jsonify(body), 200 if database == "ok" else 503
