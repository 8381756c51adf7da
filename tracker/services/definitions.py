"""Deploy BPMN definitions to the database and find the version a case runs on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workflows import Definition, DefinitionError, Engine

from ..errors import N_, DomainError
from ..models import CaseStatus, ProcessDefinition


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


def current_definition(session: Session, engine_definitions: dict[str, Definition],
                       process_id: str) -> ProcessDefinition:
    """Return the row of the newest loaded version of ``process_id``, deploying it on first use."""
    definition = engine_definitions.get(process_id)
    if definition is None:
        raise DomainError(N_("Process %(process)s is not loaded; check bpmn/%(process)s.bpmn and the server log."),
                          process=process_id)
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


def check_statuses(engine: Engine, definitions: list[Definition],
                   process_id: str) -> tuple[list[Definition], list[DefinitionError]]:
    """Keep the definitions whose user tasks of ``process_id`` each name a case status; refuse the others.

    A case's status comes from its process: the ``status`` property of the user task waiting. Only
    versions deployed before that exist without one, for the cases still running on them.
    """
    known = [s.value for s in CaseStatus if s != CaseStatus.ARCHIVED]  # archived: the process has ended
    missing = 'user task names no case status: add <spiffworkflow:property name="status" value="..." />'
    refused = [DefinitionError(d.file_name, task, missing if status is None else
                               f"status {status!r} is not a case status (use one of {', '.join(known)})")
               for d in definitions if d.process_id == process_id
               for task, status in engine.task_statuses(d).items() if status not in known]
    files = {e.file_name for e in refused}
    return [d for d in definitions if d.file_name not in files], refused


__all__ = ["Engine", "as_definition", "check_statuses", "current_definition", "deploy_definition"]
