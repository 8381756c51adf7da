"""Deploy BPMN definitions to the database and find the version a case runs on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workflows import Definition, Engine

from ..errors import N_, DomainError
from ..models import ProcessDefinition


def deploy_definition(session: Session, definition: Definition) -> ProcessDefinition:
    """Store a definition version unless a row with its content hash already exists.

    Several workers may deploy the same new version at once; the insert runs in a savepoint so
    the loser of that race simply reads the winner's row.
    """
    query = select(ProcessDefinition).where(ProcessDefinition.content_hash == definition.content_hash)
    row = session.scalar(query)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = ProcessDefinition(process_id=definition.process_id, name=definition.name,
                                    file_name=definition.file_name, content_hash=definition.content_hash,
                                    source=definition.source)
            session.add(row)
    except IntegrityError:
        row = session.scalar(query)
    return row


def current_definition(session: Session, engine_definitions: dict[str, Definition], process_id: str) -> ProcessDefinition:
    """Return the row of the newest loaded version of ``process_id``, deploying it on first use."""
    definition = engine_definitions.get(process_id)
    if definition is None:
        raise DomainError(N_("Process %(process)s is not loaded; check bpmn/%(process)s.bpmn and the server log."), process=process_id)
    return deploy_definition(session, definition)


#: Content hash -> Definition: a version never changes, so its (deferred) source is read once per process.
_BY_HASH: dict[str, Definition] = {}


def as_definition(row: ProcessDefinition) -> Definition:
    """Turn a stored version back into the engine's Definition value."""
    found = _BY_HASH.get(row.content_hash)
    if found is None:
        found = _BY_HASH[row.content_hash] = Definition(row.process_id, row.name, row.file_name,
                                                        row.content_hash, row.source)
    return found


__all__ = ["Engine", "as_definition", "current_definition", "deploy_definition"]
