"""Printable A4 pages of a case: the dispatch slip (派单单), the handling record (办结单), the whole case file."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from .. import queries
from ..db import get_session
from ..models import AuditEvent, Case
from ..permissions import Permission, can

bp = Blueprint("printing", __name__, url_prefix="/cases")


def _readable(case_id: int) -> Case:
    """Load a case the user may read (404, 403)."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    return case


def _last(events: list[AuditEvent], action: str) -> AuditEvent | None:
    """Return the case's last event of ``action`` (who dispatched it, who handled it), or None."""
    return next((e for e in reversed(events) if e.action == action), None)


def _page(template: str, case: Case, **extra: Any):
    """Render a print page with the case's events at hand."""
    events = list(queries.case_events(get_session(), case.id))
    return render_template(template, case=case, dispatched=_last(events, "task.dispatch"),
                           handled=_last(events, "task.handle"), **extra)


@bp.get("/<int:case_id>/print/dispatch")
@login_required
def dispatch_slip(case_id: int):
    """The dispatch slip (派单单): what to do, where, for whom, by when, with signature lines."""
    return _page("print/dispatch.html", _readable(case_id))


@bp.get("/<int:case_id>/print/handling")
@login_required
def handling_record(case_id: int):
    """The handling record (办结单): the result, the handler, the callback and the before/after photos."""
    return _page("print/handling.html", _readable(case_id))


@bp.get("/<int:case_id>/print/file")
@login_required
def case_file(case_id: int):
    """The whole case file: every fact, photo, mediation and the full timeline with each event's hash."""
    case = _readable(case_id)
    timeline = [(e, json.loads(e.changes)) for e in queries.case_events(get_session(), case.id)]
    return _page("print/case_file.html", case, timeline=timeline,
                 names=queries.referenced_names(get_session(), timeline))
