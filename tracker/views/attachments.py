"""Photos: served only through a permission-checked view, and added to a case from its pages."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import HiddenField

from .. import media
from ..codes import AttachmentKind
from ..db import get_session
from ..errors import DomainError
from ..models import Attachment, Case, Task, Visit
from ..permissions import Permission, PermissionDenied, can, may_attach
from ..services import attachments
from ..services.commands import InvalidCommand, UploadAttachment, build
from . import services

bp = Blueprint("attachments", __name__)

#: Endpoints that take photos: their requests may be as large as ``[media] max_request_mb``.
UPLOAD_ENDPOINTS = frozenset({"cases.new", "attachments.upload", "mediation.new", "api.upload_attachments",
                              "open311.create_request", "visits.visit"})
#: What each variant of a photo is, as stored: the original (EXIF kept) or a copy without metadata.
VARIANTS = ("display", "thumb", "original")
#: The photo kinds a case's pages offer, with their labels.
KIND_LABELS = {AttachmentKind.INTAKE: _l("Photo of the request"), AttachmentKind.BEFORE: _l("Before handling"),
               AttachmentKind.AFTER: _l("After handling"), AttachmentKind.VISIT: _l("Visit"),
               AttachmentKind.MEDIATION: _l("Mediation")}


class PhotoForm(FlaskForm):
    """Add photos of one kind to a case (the files come as ``photos``); the task page it came from, if any."""

    kind = HiddenField()
    task_id = HiddenField()


@bp.record_once
def _limit_uploads_first(state) -> None:
    """Raise the body limit for upload endpoints before anything (CSRF checks) reads the body."""
    app: Flask = state.app
    app.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)


def _upload_limit() -> None:
    """Let an upload endpoint's request be as large as ``[media] max_request_mb`` (others keep the app's)."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        limits = media.settings(current_app.config["GRIDLOOP"])
        request.max_content_length = int(limits["max_request_mb"] * 1024 * 1024)


@bp.get("/attachments/<int:attachment_id>/<variant>")
@login_required
def show(attachment_id: int, variant: str):
    """Send a photo to someone who may read its case: the display copy, the thumbnail or the original."""
    if variant not in VARIANTS:
        abort(404)
    row = get_session().get(Attachment, attachment_id) or abort(404)
    case = get_session().get(Case, row.case_id) if row.case_id is not None else None
    visit = get_session().get(Visit, row.visit_id) if row.visit_id is not None else None
    if not (case is not None and can(current_user, Permission.CASE_READ, case)
            or visit is not None and can(current_user, Permission.HOUSEHOLD_READ, visit.household)):
        abort(404)
    digest = {"display": row.display_sha256, "thumb": row.thumb_sha256, "original": row.sha256}[variant]
    try:
        body = media.current_store().get(digest)
    except FileNotFoundError:
        abort(404)
    mimetype = row.content_type if variant == "original" else "image/jpeg"
    response = Response(body, mimetype=mimetype)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if variant == "original":
        # The original keeps its EXIF (the place it was taken): a download for evidence, never shown inline.
        extension = media.EXTENSIONS.get(row.content_type, "bin")
        response.headers["Content-Disposition"] = f"attachment; filename={row.sha256[:16]}.{extension}"
    return response


@bp.post("/cases/<int:case_id>/photos")
@login_required
def upload(case_id: int):
    """Add photos (before/after handling, or of the request) to a case; all are refused if one is bad."""
    case = get_session().get(Case, case_id) or abort(404)
    if not can(current_user, Permission.CASE_READ, case):
        abort(403)
    form = PhotoForm()
    back = _back(case, form.task_id.data or "")
    if not form.validate():
        abort(400)
    try:
        command = build(UploadAttachment, {"kind": form.kind.data or ""})
    except InvalidCommand:
        abort(400)  # the form's hidden kind is one of the command's: another was not sent by its page
    try:
        rows = attachments.add_photos(services(), media.current_store(), current_user, case.id, command,
                                      media.request_uploads())
    except PermissionDenied:
        abort(403)
    except DomainError as exc:
        get_session().rollback()
        flash(exc.localized(), "error")
        return redirect(back)
    flash(_("%(count)s photos added to case %(number)s.", count=len(rows), number=case.number), "success")
    return redirect(back)


def _back(case: Case, task_id: str) -> str:
    """Return the page to go back to: the case's task page the form was on, else the case page."""
    task = get_session().get(Task, task_id) if task_id and len(task_id) <= 36 else None
    if task is not None and task.case_id == case.id:
        return url_for("tasks.detail", task_id=task.id)
    return url_for("cases.detail", case_id=case.id)


def photo_form(kind: AttachmentKind, task_id: str = "") -> PhotoForm:
    """Return a form adding photos of ``kind`` (for the templates of other pages)."""
    return PhotoForm(kind=str(kind), task_id=task_id, formdata=None)


@bp.app_context_processor
def _photo_helpers() -> dict:
    """Give every template the photo forms and lists (the case and task pages show them)."""
    return {"photo_form": photo_form, "case_photos": _case_photos, "may_add_photos": _may_add,
            "photo_kind_label": lambda kind: KIND_LABELS.get(kind, kind)}


def _case_photos(case: Case) -> list[Attachment]:
    """Return the case's photos, oldest first."""
    return attachments.of_case(get_session(), case.id)


def _may_add(case: Case, kind: str) -> bool:
    """Tell whether the signed-in user may add photos of ``kind`` to ``case``."""
    return may_attach(current_user, case, AttachmentKind(kind))
