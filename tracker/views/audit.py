"""Auditors trace who did what: history with chain verification, the diagram at any event, search."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, abort, render_template, request, stream_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from .. import chain, labels
from ..db import get_session, read_while_streaming
from ..models import AuditEvent, Case
from ..permissions import Permission, can, visible_cases
from ..services.audit import AUDITED, verify_chain
from ..services.history import moment
from ..web import services
from .cases import _parse_date, _referenced_names

bp = Blueprint("audit", __name__)
#: Search results per page.
PAGE = 50
#: Cases verified per batch on the verify-all page (each batch streams out as it is done).
VERIFY_BATCH = 200


def _case(case_id: int) -> Case:
    """Load a case the user may read: 404 if missing, 403 if out of scope."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    return case


@bp.route("/cases/<int:case_id>/history")
@login_required
def history(case_id: int):
    """Every event of the case with its hash, the chain's verification, and links to past diagrams."""
    case = _case(case_id)
    db = get_session()
    events = db.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq)).all()
    rows = [(e, json.loads(e.changes)) for e in events]
    return render_template("audit/history.html", case=case, timeline=rows, names=_referenced_names(rows),
                           report=verify_chain(db, case.id), verifier_sha256=_verifier_sha256())


@functools.cache
def _verifier_sha256() -> str:
    """Return the SHA-256 of the verifier bundles carry, so an auditor can check theirs is genuine."""
    return hashlib.sha256(Path(chain.__file__).read_bytes()).hexdigest()


@bp.route("/cases/<int:case_id>/diagram")
@login_required
def diagram(case_id: int):
    """The process diagram of the case now, or right after event ``at``: path taken, current, overdue."""
    case = _case(case_id)
    at = request.args.get("at", type=int)
    legend = {"done": _("Done"), "current": _("Current"), "overdue": _("Overdue")}
    view = moment(services(), case, at, title=_("Process of case %(number)s", number=case.number), legend=legend)
    events = get_session().scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                   .order_by(AuditEvent.seq)).all()
    return render_template("audit/diagram.html", case=case, view=view, svg=Markup(view.svg), events=events,
                           latest=at is None or at >= case.audit_seq)


def _search_filters() -> dict[str, str]:
    """Read the search form from the query string."""
    return {k: request.args.get(k, "").strip() for k in ("actor", "action", "field", "date_from", "date_to", "number")}


@bp.route("/audit")
@login_required
def search():
    """Search the audit trail of every case the user may read: by actor, action, date and field changed."""
    f = _search_filters()
    query = select(AuditEvent, Case.number).join(Case, Case.id == AuditEvent.case_id)
    query = visible_cases(current_user, query)
    if f["actor"]:
        query = query.where(AuditEvent.actor_name.contains(f["actor"], autoescape=True))
    if f["action"]:
        query = query.where(AuditEvent.action == f["action"])
    if f["field"]:
        # Changes are stored as a JSON object keyed by field: match the key itself.
        query = query.where(AuditEvent.changes.contains(json.dumps(f["field"]) + ":", autoescape=True))
    if start := _parse_date(f["date_from"]):
        query = query.where(AuditEvent.at >= start)
    if end := _parse_date(f["date_to"]):
        query = query.where(AuditEvent.at < end + dt.timedelta(days=1))
    if f["number"]:
        query = query.where(Case.number == f["number"])
    before = request.args.get("before", type=int)
    if before:
        query = query.where(AuditEvent.id < before)
    rows = get_session().execute(query.order_by(AuditEvent.id.desc()).limit(PAGE + 1)).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    next_url = url_for("audit.search", **{**f, "before": rows[-1][0].id}) if more else None
    fields = {name: labels.FIELDS.get(name, name) for name in (*AUDITED, "assignee", "reason", "stand_in")}
    return render_template("audit/search.html", filters=f, rows=[(e, n, json.loads(e.changes)) for e, n in rows],
                           next_url=next_url, fields=fields, actions=labels.ACTIONS)


@bp.route("/audit/verify")
@login_required
def verify_all():
    """Verify the chain of every case the user may read, streaming the result as it goes."""
    ids = visible_cases(current_user, select(Case.id))

    def results():
        session = get_session()
        last = 0
        while True:
            batch = session.execute(ids.with_only_columns(Case.id, Case.number).where(Case.id > last)
                                    .order_by(Case.id).limit(VERIFY_BATCH)).all()
            if not batch:
                return
            for case_id, number in batch:
                report = verify_chain(session, case_id)
                yield case_id, number, report
            last = batch[-1][0]

    return Response(stream_template("audit/verify.html", results=read_while_streaming(results())),
                    mimetype="text/html")


__all__ = ["bp"]
