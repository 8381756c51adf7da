"""Health check for load balancers and process supervisors."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..db import get_session
from ..services.timers import counts as timer_counts

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    """Report whether the database answers and which process definitions are loaded.

    Anyone sees the status and the counts; why a BPMN file was rejected is shown to administrators only.
    """
    timers = None
    try:
        db = get_session()
        db.execute(text("SELECT 1"))
        database = "ok"
        timers = timer_counts(db, clock.now())
    except SQLAlchemyError as exc:
        current_app.logger.warning("health check: database unavailable: %s", exc)
        database = "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "definitions": sorted(current_app.extensions["gridloop.definitions"]),
        "rejected_bpmn_files": len(current_app.extensions["gridloop.bpmn_errors"]),
        "timers": timers,
    }
    if database == "ok" and current_user.is_authenticated and current_user.is_admin:
        body["rejected_bpmn_errors"] = [str(e) for e in current_app.extensions["gridloop.bpmn_errors"]]
    return jsonify(body), 200 if database == "ok" else 503
