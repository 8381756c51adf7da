"""Attach photos to cases: check every upload first, store them by hash, record their hashes on the chain.

All or nothing: ``check_uploads`` refuses the whole submission on the first bad file, before anything
is written; the files go into the store (content-addressed: storing one twice, or one a rolled-back
transaction left behind, changes nothing) and the rows and the audit event into the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .. import media
from ..codes import AttachmentKind
from ..errors import N_, ConflictError, InvalidInput, NotFound
from ..media import Upload
from ..models import Attachment, Case, Mediation, User
from ..permissions import PermissionDenied, may_attach
from . import Services
from .audit import record_event
from .commands import UploadAttachment
from .locks import flush

#: The audit action of attaching files; its changes list them under chain.FILES_KEY.
ACTION = "case.files_attached"
#: An upload that passed the checks, with the name it is shown by.
Checked = tuple[media.Photo, str]


def check_uploads(svc: Services, uploads: Sequence[Upload], field: str = "photos") -> list[Checked]:
    """Check every upload by its content and the limits of ``[media]``; refuse all on the first bad one."""
    limits = media.settings(svc.config)
    uploads = [u for u in uploads if u.data or u.name]  # an empty file input sends one nameless empty part
    if len(uploads) > limits["max_files"]:
        raise InvalidInput(N_("At most %(count)s photos at a time; send the others separately."), field=field,
                           count=limits["max_files"])
    photos = []
    for upload in uploads:
        try:
            name = _display_name(upload.name)
            photos.append((media.process(upload.data, name, limits), name))
        except media.BadImage as exc:
            raise InvalidInput(exc.template, field=field, **exc.params) from None
    return photos


def _display_name(name: str) -> str:
    """Return the file's own name, without any folder a browser sent, cut to fit its column."""
    return (name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "photo")[:200]


def attach(svc: Services, store: media.Store, actor: User, case: Case, photos: Sequence[Checked],
           kind: AttachmentKind, *, mediation: Mediation | None = None) -> list[Attachment]:
    """Store the photos and record them on the case's chain (one event); the caller holds the case's lock."""
    if not photos:
        return []
    rows = []
    for photo, name in photos:
        sha256 = store.put(photo.original)
        row = Attachment(case_id=case.id, mediation_id=mediation.id if mediation else None, kind=kind,
                         sha256=sha256, content_type=photo.content_type, size=len(photo.original),
                         width=photo.width, height=photo.height, file_name=name,
                         display_sha256=store.put(photo.display), thumb_sha256=store.put(photo.thumb),
                         created_by_id=actor.id)
        svc.session.add(row)
        rows.append(row)
    record_event(svc.session, case, actor, ACTION, {"files": (None, [entry(row) for row in rows])})
    return rows


def of_case(session: Session, case_id: int) -> list[Attachment]:
    """Return a case's photos, oldest first."""
    return list(session.scalars(select(Attachment).where(Attachment.case_id == case_id).order_by(Attachment.id)))


def entry(row: Attachment) -> dict[str, Any]:
    """Return what the chain records of a file (chain.recorded_files reads sha256 and type)."""
    return {"sha256": row.sha256, "type": row.content_type, "bytes": row.size, "kind": str(row.kind),
            "name": row.file_name}


def lock_case(svc: Services, case_id: int) -> Case:
    """Load a case and lock its row for a change that appends to its chain (NotFound if there is none)."""
    case = svc.session.get(Case, case_id, with_for_update={"of": Case}, populate_existing=True,
                           options=[selectinload(Case.tasks)])
    if case is None:
        raise NotFound(N_("Case %(id)s not found."), id=case_id)
    return case


def add_photos(svc: Services, store: media.Store, actor: User, case_id: int, command: UploadAttachment,
               uploads: Sequence[Upload], expected_audit_seq: int | None = None) -> list[Attachment]:
    """Add photos to a case from its pages or the API: check them all, lock the case, attach, flush."""
    kind = command.kind
    photos = check_uploads(svc, uploads)
    if not photos:
        raise InvalidInput(N_("Choose at least one photo."), field="photos")
    case = lock_case(svc, case_id)
    if not may_attach(actor, case, kind):
        raise PermissionDenied(f"{actor.username} may not add {kind} photos to case {case.number}")
    if expected_audit_seq is not None and expected_audit_seq != case.audit_seq:
        raise ConflictError(N_("This case was changed by someone else after you opened it; reload and try again."))
    rows = attach(svc, store, actor, case, photos, kind)
    flush(svc.session)
    return rows


__all__ = ["ACTION", "Checked", "Upload", "add_photos", "attach", "check_uploads", "entry",
           "lock_case", "of_case"]
