"""Auditors trace who did what: history with chain verification, the diagram at any event, search."""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, abort, render_template, request, stream_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select

from .. import labels
from ..bundle import verifier_sha256
from ..db import get_session, read_while_streaming
from ..models import AuditEvent, Case
from ..permissions import Permission, can, visible_cases
from ..services.audit import AUDITED, VERIFY_BATCH, verify_chain, verify_chains
from ..services.history import moment
from ..web import services
from .cases import _parse_date, _referenced_names

bp = Blueprint("audit", __name__)
#: Search results per page.
PAGE = 50
#: Events read per step of a search, and how many steps before offering "look further".
SCAN_SIZE, SCAN_BATCHES = 500, 40


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
                           report=verify_chain(db, case.id), verifier_sha256=verifier_sha256())


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
    return {k: request.args.get(k, "").replace("\x00", "").strip()
            for k in ("actor", "action", "field", "date_from", "date_to", "number")}


@bp.route("/audit")
@login_required
def search():
    """Search the audit trail of every case the user may read: by actor, action, date and field changed."""
    f = _search_filters()
    db = get_session()
    query = select(AuditEvent)
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
        query = query.where(AuditEvent.case_id == (db.scalar(select(Case.id).where(Case.number == f["number"])) or 0))
    before = request.args.get("before", type=int)
    rows, last = _visible_events(query, before if before and 0 < before < 2**62 else None)
    next_url = url_for("audit.search", **{**f, "before": last}) if last else None
    fields = {name: labels.FIELDS.get(name, name) for name in (*AUDITED, "assignee", "reason", "stand_in")}
    return render_template("audit/search.html", filters=f, rows=[(e, n, json.loads(e.changes)) for e, n in rows],
                           next_url=next_url, fields=fields, actions=labels.ACTIONS)


def _visible_events(query, before: int | None) -> tuple[list[tuple[AuditEvent, str]], int | None]:
    """Walk matching events newest first in batches, keeping those of cases the user may read.

    Driving from the events (newest first, by primary key) and checking each batch's cases is fast
    for any scope; joining cases first would make a wide scope gather every case. Returns one page
    and the id to continue before (None at the end); a scope that matches rarely stops after
    SCAN_BATCHES batches with a link to look further.
    """
    db = get_session()
    found: list[tuple[AuditEvent, str]] = []
    for _ in range(SCAN_BATCHES):
        batch_query = query.where(AuditEvent.id < before) if before else query
        batch = db.scalars(batch_query.order_by(AuditEvent.id.desc()).limit(SCAN_SIZE)).all()
        if not batch:
            return found, None
        numbers = dict(db.execute(visible_cases(current_user, select(Case.id, Case.number)
                                                .where(Case.id.in_({e.case_id for e in batch})))).all())
        for event in batch:
            if event.case_id in numbers:
                found.append((event, numbers[event.case_id]))
                if len(found) == PAGE:
                    return found, event.id
        before = batch[-1].id
    return found, before


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
            reports = verify_chains(session, [case_id for case_id, _number in batch])
            for case_id, number in batch:
                yield case_id, number, reports[case_id]
            last = batch[-1][0]

    return Response(stream_template("audit/verify.html", results=read_while_streaming(results())),
                    mimetype="text/html")


__all__ = ["bp"]
