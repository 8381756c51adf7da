"""A case bundle: the case, its audit events and its BPMN version in one zip an auditor can verify offline.

The bundle carries exactly what ``tracker.chain.verify_bundle`` reads, and ships ``tracker/chain.py``
itself as ``verify_bundle.py``: checking a bundle needs Python's standard library and nothing else.
Every file's content is set by ``tracker.chain`` (the CSV, the README, the JSON layout), so the
verifier can check each of them; what it cannot check sits in case.json's ``not_verified`` section.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import chain, clock, media
from .models import AuditEvent, Case
from .services.audit import as_record, audited_fields


def build_bundle(session: Session, case: Case, exported_by: str = "", store: media.Store | None = None) -> bytes:
    """Return the case's bundle as the bytes of a deflated zip, with the files its chain attached.

    ``store``: where the files are (default: the running app's). A file missing from the store is left
    out, and the bundle's verifier names it: the bundle shows the damage instead of hiding it.
    """
    # Re-read the row under a share lock (PostgreSQL; SQLite reads one snapshot anyway) so no event
    # can commit between reading the case and reading its events: the pair always agrees.
    case = session.get(Case, case.id, with_for_update={"read": True}, populate_existing=True)
    events = [as_record(e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq))]
    files = {
        "case.json": chain.bundle_json(_case_record(case, exported_by)),
        "events.json": chain.bundle_json(events),
        "events.csv": chain.events_csv(events),
        "process.bpmn": case.definition.source.encode("utf-8"),
        "verify_bundle.py": Path(chain.__file__).read_bytes(),
        "README.txt": chain.readme(case.number),
        **_attached_files(events, store or media.current_store()),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        stamp = clock.now().timetuple()[:6]
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=stamp)
            entry.external_attr = 0o644 << 16  # readable once unpacked (the default is owner-only)
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _attached_files(events: list[dict[str, Any]], store: media.Store) -> dict[str, bytes]:
    """Return the originals of the files the chain attached, by their names in the bundle."""
    found = {}
    for name, (_seq, sha256) in chain.recorded_files(events).items():
        if store.exists(sha256):
            found[name] = store.get(sha256)
    return found


def file_name(case: Case) -> str:
    """Return the bundle's file name, e.g. case-20261123-000001-bundle.zip."""
    return chain.bundle_name(case.number)


def _case_record(case: Case, exported_by: str) -> dict[str, Any]:
    """Return case.json: what the verifier checks against the chain, then what it says it does not."""
    definition = case.definition
    return {
        "id": case.id,
        "audit_seq": case.audit_seq,
        "audit_head": case.audit_head,
        "fields": {name: chain.jsonable(value) for name, value in audited_fields(case).items()},
        "not_verified": {
            "note": chain.NOT_VERIFIED_NOTE,
            "grid_code": case.grid.code,
            "grid_name": case.grid.name,
            "building_name": case.building.name,
            "recorded_by": case.created_by.display_name,
            "process": {"process_id": definition.process_id, "name": definition.name,
                        "file_name": definition.file_name},
            "created_at": chain.jsonable(case.created_at),
            "exported_at": chain.jsonable(clock.now()),
            "exported_by": exported_by,
        },
    }


def verifier_sha256() -> str:
    """Return the SHA-256 of the verifier bundles carry (tracker/chain.py), to check a bundle's copy by."""
    return chain.verifier_sha256()


__all__ = ["build_bundle", "file_name", "verifier_sha256"]
