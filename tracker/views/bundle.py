"""Download a case bundle: the case and its audit chain, verifiable offline with Python alone."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user, login_required

from ..bundle import build_bundle, file_name
from ..db import get_session
from ..models import Case
from ..permissions import Permission, can

bp = Blueprint("bundle", __name__, url_prefix="/cases")


@bp.route("/<int:case_id>/bundle.zip")
@login_required
def download(case_id: int):
    """Send the case's bundle to anyone who may read the case."""
    db = get_session()
    case = db.get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    body = build_bundle(db, case, exported_by=f"{current_user.display_name} ({current_user.username})")
    return Response(body, mimetype="application/zip",
                    headers={"Content-Disposition": f"attachment; filename={file_name(case)}"})
