"""Auditors trace who did what: history with chain verification, the diagram at any event, search."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, render_template, request, stream_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import Markup

from .. import labels, queries
from ..bundle import verifier_sha256
from ..db import get_session, read_while_streaming
from ..models import Case
from ..permissions import Permission, can
from ..services.audit import AUDITED, VERIFY_BATCH, verify_chain, verify_chains
from ..services.history import moment
from . import local_zone, services

bp = Blueprint("audit", __name__)


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
    rows = [(e, json.loads(e.changes)) for e in queries.case_events(db, case.id)]
    return render_template("audit/history.html", case=case, timeline=rows, names=queries.referenced_names(db, rows),
                           report=verify_chain(db, case.id), verifier_sha256=verifier_sha256())


def _event_number(given: str | None, last: int) -> int | None:
    """Read ``?at=``: none is now; an event number from 1 to ``last``; anything else is refused (400), never
    silently read as now."""
    if given is None:
        return None
    if not (given.isascii() and given.isdigit() and 1 <= int(given) <= last):
        abort(400, _("?at= takes the number of one of this case's events, from 1 to %(last)d; \"%(given)s\" is not "
                     "one.", last=last, given=given[:20]))
    return int(given)


@bp.route("/cases/<int:case_id>/diagram")
@login_required
def diagram(case_id: int):
    """The process diagram of the case now, or right after event ``at``: path taken, current, overdue."""
    case = _case(case_id)
    at = _event_number(request.args.get("at"), case.audit_seq)
    legend = {"done": _("Done"), "current": _("Current"), "overdue": _("Overdue")}
    view = moment(services(), case, at, title=_("Process of case %(number)s", number=case.number), legend=legend)
    events = queries.case_events(get_session(), case.id)
    return render_template("audit/diagram.html", case=case, view=view, svg=Markup(view.svg), events=events,
                           latest=at is None or at >= case.audit_seq)


@bp.route("/audit")
@login_required
def search():
    """Search the audit trail of every case the user may read: by actor, action, date and field changed."""
    f = queries.audit_filters(request.args)
    before = request.args.get("before", type=int)
    rows, last = queries.audit_search(get_session(), current_user, f,
                                      before if before and 0 < before < 2**62 else None, local_zone())
    next_url = url_for("audit.search", **{**f, "before": last}) if last else None
    fields = {name: labels.FIELDS.get(name, name) for name in (*AUDITED, "assignee", "reason", "stand_in")}
    return render_template("audit/search.html", filters=f, rows=[(e, n, json.loads(e.changes)) for e, n in rows],
                           next_url=next_url, fields=fields, actions=labels.ACTIONS)


@bp.route("/audit/verify")
@login_required
def verify_all():
    """Verify the chain of every case the user may read, streaming the result as it goes."""
    scope = queries.readable_case_ids(current_user)  # now: the stream runs after the request's teardown

    def results():
        session = get_session()
        for batch in queries.case_number_batches(session, scope, VERIFY_BATCH):
            reports = verify_chains(session, [case_id for case_id, _number in batch])
            for case_id, number in batch:
                yield case_id, number, reports[case_id]

    return Response(stream_template("audit/verify.html", results=read_while_streaming(results())),
                    mimetype="text/html")


__all__ = ["bp"]
