"""The audit chain: every step is chained, and tampering is found at the first broken link."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text, update

from tests.conftest import building_id, dispatch, intake, latest_case, user_id
from tracker import chain
from tracker.models import AuditEvent, ProcessDefinition
from tracker.services.audit import verify_chain


def _case_with_three_events(login, db):
    """Record and dispatch a case: opened, record_reply, dispatch."""
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    dispatch(login("leader_a"), db, case.id)
    return case


def test_untouched_chain_verifies(login, db):
    case = _case_with_three_events(login, db)
    report = verify_chain(db, case.id)
    assert (report.ok, report.events) == (True, 3)


def test_edited_event_is_named_as_the_first_broken_link(login, db):
    case = _case_with_three_events(login, db)
    db.execute(update(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.seq == 2)
               .values(actor_name="someone else"))
    report = verify_chain(db, case.id)
    assert (report.ok, report.broken_seq) == (False, 2)
    assert "hash" in report.problem


def test_deleted_event_is_detected(login, db):
    case = _case_with_three_events(login, db)
    db.execute(text("DELETE FROM audit_event WHERE case_id = :c AND seq = 3"), {"c": case.id})
    report = verify_chain(db, case.id)
    assert (report.ok, report.broken_seq) == (False, 3)


def test_verify_audit_command_reports_broken_chains(login, db, app):
    case = _case_with_three_events(login, db)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0 and "all chains intact" in result.output
    first = db.scalar(select(AuditEvent.id).where(AuditEvent.case_id == case.id, AuditEvent.seq == 1))
    db.execute(update(AuditEvent).where(AuditEvent.id == first).values(changes="{}"))
    result = runner.invoke(args=["verify-audit", case.number])
    assert result.exit_code == 1
    assert f"{case.number}: BROKEN at event 1" in result.output


def test_case_field_changed_behind_the_chain_is_named(login, db):
    case = _case_with_three_events(login, db)
    db.execute(text('UPDATE "case" SET description = :d WHERE id = :c'), {"d": "改过的描述", "c": case.id})
    db.expire_all()
    report = verify_chain(db, case.id)
    # The description was recorded by the opening event; that link no longer holds.
    assert (report.ok, report.broken_seq) == (False, 1)
    assert "description" in report.problem and "改过的描述" in report.problem


def test_field_never_recorded_but_set_directly_is_found(login, db):
    case = _case_with_three_events(login, db)
    db.execute(text('UPDATE "case" SET outcome = :o WHERE id = :c'), {"o": "satisfied", "c": case.id})
    db.expire_all()
    report = verify_chain(db, case.id)
    assert not report.ok and "outcome" in report.problem


def test_deleting_the_last_event_and_the_count_is_still_detected(login, db):
    case = _case_with_three_events(login, db)
    db.execute(text("DELETE FROM audit_event WHERE case_id = :c AND seq = 3"), {"c": case.id})
    db.execute(text('UPDATE "case" SET audit_seq = 2 WHERE id = :c'), {"c": case.id})
    db.expire_all()
    report = verify_chain(db, case.id)
    assert not report.ok


def _append_junk_event(db, case) -> None:
    """Store an event after the case's last one, behind the services' back (a junk hash)."""
    db.execute(text("INSERT INTO audit_event (case_id, seq, at, actor_id, actor_name, action, task_name, changes, "
                    "prev_hash, hash) VALUES (:c, 4, :at, NULL, 'system', 'task.handle', NULL, '{}', :prev, :junk)"),
               {"c": case.id, "at": case.created_at, "prev": case.audit_head, "junk": "f" * 64})


def test_event_stored_past_the_case_count_is_named_everywhere(login, db, app):
    case = _case_with_three_events(login, db)
    _append_junk_event(db, case)
    report = verify_chain(db, case.id)
    assert (report.ok, report.broken_seq) == (False, 4)
    assert "event 4" in report.problem and "records 3" in report.problem
    result = app.test_cli_runner().invoke(args=["verify-audit", case.number])
    assert result.exit_code == 1 and f"{case.number}: BROKEN at event 4" in result.output
    page = login("auditor").get(f"/cases/{case.id}/history").get_data(as_text=True)
    assert "链在第 4 个事件处断裂" in page and "链完整" not in page
    from tests.web.test_api import make_token
    secret = make_token(app, "auditor")[1]
    body = app.test_client().get(f"/api/v1/cases/{case.id}/verify",
                                 headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert (body["ok"], body["broken_seq"]) == (False, 4)
    assert case.number in login("auditor").get("/audit/verify").get_data(as_text=True)


def test_event_stored_past_the_count_with_a_good_hash_is_named_too(login, db):
    case = _case_with_three_events(login, db)
    at = "2026-01-01T00:00:00+00:00"
    digest = chain.event_hash(case.id, 4, at, None, "system", "task.handle", None, "{}", case.audit_head)
    _append_junk_event(db, case)
    db.execute(update(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.seq == 4).values(hash=digest))
    report = verify_chain(db, case.id)
    assert (report.ok, report.broken_seq) == (False, 4) and "records 3" in report.problem


@pytest.mark.parametrize("column, value", [("grid_id", "other_grid"), ("created_by_id", "other_user"),
                                           ("number", "'20200101-999999'"), ("definition_id", "other_definition")])
def test_access_fields_changed_behind_the_chain_are_named(login, db, column, value):
    """Who may read a case (its grid, its recorder), its number and its process version are on the chain."""
    case = _case_with_three_events(login, db)
    login("member_b").submit("/cases/new", intake(db, building_id=str(building_id(db, "GB"))))
    other = latest_case(db)
    assert other.grid_id != case.grid_id and other.created_by_id != case.created_by_id
    values = {"other_grid": other.grid_id, "other_user": other.created_by_id, "other_definition": _other_definition(db, case)}
    db.execute(text(f'UPDATE "case" SET {column} = {values.get(value, value)} WHERE id = :c'), {"c": case.id})
    db.expire_all()
    report = verify_chain(db, case.id)
    field = "process_hash" if column == "definition_id" else column
    assert (report.ok, report.broken_seq) == (False, 1)
    assert f"case field {field}" in report.problem, report.problem


def _other_definition(db, case) -> int:
    """Add another version of the case's process definition; return its id."""
    row = db.get(ProcessDefinition, case.definition_id)
    copy = ProcessDefinition(**{c.key: getattr(row, c.key) for c in ProcessDefinition.__table__.columns if c.key != "id"})
    copy.content_hash = "e" * 64
    db.add(copy)
    db.flush()
    return copy.id


def test_opening_event_records_the_access_fields(login, db):
    case = _case_with_three_events(login, db)
    opened = db.scalar(select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.seq == 1))
    changes = json.loads(opened.changes)
    assert changes["grid_id"] == [None, case.grid_id] and changes["created_by_id"] == [None, case.created_by_id]
    assert changes["number"] == [None, case.number]
    assert changes["process_hash"] == [None, db.get(ProcessDefinition, case.definition_id).content_hash]


def test_verifying_many_chains_reads_them_in_one_query(login, db, app):
    from sqlalchemy import event

    from tracker.services.audit import verify_chains
    ids = [_case_with_three_events(login, db).id for _ in range(3)]
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.bind, "before_cursor_execute", listener)
    try:
        reports = verify_chains(db, ids)
    finally:
        event.remove(db.bind, "before_cursor_execute", listener)
    assert [reports[i].ok for i in ids] == [True] * 3 and len(statements) == 1


#: The fields chains began to record at revision 0009.
ADDED_IN_0009 = ("number", "grid_id", "created_by_id", "process_hash")


def _as_before_0009(db, case_id: int) -> None:
    """Rewrite a case's chain as the code before revision 0009 wrote it: opened without the access fields."""
    prev = chain.GENESIS
    for event in db.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)):
        changes = json.loads(event.changes)
        for name in ADDED_IN_0009 if event.seq == 1 else ():
            del changes[name]
        event.changes, event.prev_hash = json.dumps(changes, ensure_ascii=False, sort_keys=True), prev
        event.hash = prev = chain.event_hash(event.case_id, event.seq, chain.utc_text(event.at), event.actor_id,
                                             event.actor_name, event.action, event.task_name, event.changes, prev)
        db.flush()
    db.execute(text('UPDATE "case" SET audit_head = :h WHERE id = :c'), {"h": prev, "c": case_id})


def test_upgrade_puts_the_access_fields_of_older_chains_on_them(app, login, db):
    from tracker.migrate import downgrade, upgrade
    intact, moved = _case_with_three_events(login, db), _case_with_three_events(login, db)
    db.refresh(intact)
    expected = {"number": [None, intact.number], "grid_id": [None, intact.grid_id],
                "created_by_id": [None, intact.created_by_id],
                "process_hash": [None, db.get(ProcessDefinition, intact.definition_id).content_hash]}
    intact, moved = intact.id, moved.id
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0008")
    for case_id in (intact, moved):
        _as_before_0009(db, case_id)
    # Before the upgrade someone made another member the recorder of one case, in the database.
    db.execute(text('UPDATE "case" SET created_by_id = :u WHERE id = :c'), {"u": user_id(db, "member_a2"), "c": moved})
    upgrade(engine)
    db.expire_all()
    report = verify_chain(db, intact)
    assert (report.ok, report.events) == (True, 4), report.problem
    recorded = db.scalar(select(AuditEvent).where(AuditEvent.case_id == intact, AuditEvent.seq == 4))
    assert (recorded.action, recorded.actor_id, recorded.actor_name) == ("audit.fields_recorded", None, "system")
    assert json.loads(recorded.changes) == expected
    # The recorder is taken from the opening event's actor, so the earlier change is found.
    report = verify_chain(db, moved)
    assert not report.ok and "case field created_by_id" in report.problem
    # Going down and up again records nothing twice; cases opened by today's code need nothing.
    fresh = _case_with_three_events(login, db).id
    downgrade(engine, "0008")
    upgrade(engine)
    db.expire_all()
    assert [verify_chain(db, c).events for c in (intact, fresh)] == [4, 3]
    assert verify_chain(db, fresh).ok
