"""The audit chain: every step is chained, and tampering is found at the first broken link."""

from __future__ import annotations

from sqlalchemy import select, text, update

from tests.conftest import dispatch, intake, latest_case
from tracker.models import AuditEvent
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
