"""Deadlines on the working-day calendar and the timers that enforce them, travelling in time."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import func, select

from tests.conftest import allow_audit, dispatch, intake, latest_case, open_task, refuse_audit, user_id
from tracker import create_app, jobs
from tracker.config import ConfigError
from tracker.models import AuditEvent, Case, Notification, Task, TaskStatus, Timer
from tracker.services.audit import verify_chain

SH = ZoneInfo("Asia/Shanghai")


def local(*args) -> dt.datetime:
    """A moment in Beijing time."""
    return dt.datetime(*args, tzinfo=SH)


def _notices(db, username: str, kind: str | None = None) -> list[Notification]:
    db.expire_all()
    query = select(Notification).where(Notification.user_id == user_id(db, username))
    if kind:
        query = query.where(Notification.kind == kind)
    return db.scalars(query.order_by(Notification.id)).all()


def _actions(db, case_id: int) -> list[str]:
    return db.scalars(select(AuditEvent.action).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)).all()


def _open(db, case_id: int) -> dict[str, Task]:
    db.expire_all()
    return {t.name: t for t in db.scalars(select(Task).where(Task.case_id == case_id, Task.status == TaskStatus.OPEN))}


def _dispatched(login, db, at: dt.datetime, deadline_class: str = "general", **overrides):
    """Record a case in grid A and dispatch it to member_a at ``at``."""
    with time_machine.travel(at, tick=False):
        member = login("member_a")
        member.submit("/cases/new", intake(db, **overrides))
        case = latest_case(db)
        leader = login("leader_a")
        assert dispatch(leader, db, case.id, deadline_class=deadline_class).status_code == 302
    return member, leader, latest_case(db)


def _tick(app, at: dt.datetime):
    with time_machine.travel(at, tick=False):
        return jobs.tick(app)


# -- the calendar ----------------------------------------------------------------------------

def test_general_limit_counts_working_days_across_national_day_and_its_make_up_day(login, db):
    # Wednesday 30 Sep 2026, 10:00. 1-7 Oct are holidays; Saturday 10 Oct is a make-up working day.
    _, _, case = _dispatched(login, db, local(2026, 9, 30, 10, 0))
    assert case.due_at.astimezone(SH) == local(2026, 10, 15, 10, 0)
    assert case.sign_for_at.astimezone(SH) == local(2026, 10, 8, 10, 0)
    assert case.escalate_at.astimezone(SH) == local(2026, 10, 19, 10, 0)
    # The reminder lands on a working day: 75% of 7 working days -> 5 working days.
    assert case.remind_at.astimezone(SH) == local(2026, 10, 13, 10, 0)
    assert open_task(db, case.id).due_at == case.due_at


def test_hour_limits_are_wall_clock_and_green_channel_is_shorter(login, db):
    _, _, case = _dispatched(login, db, local(2026, 10, 3, 22, 0), deadline_class="emergency")
    assert case.due_at.astimezone(SH) == local(2026, 10, 4, 0, 0)  # 2 hours, holiday or not
    _, _, green = _dispatched(login, db, local(2026, 11, 2, 9, 0), deadline_class="general", green_channel="elderly")
    assert green.due_at.astimezone(SH) == local(2026, 11, 6, 9, 0)  # ceil(7 x 0.5) = 4 working days


def test_config_extra_holidays_and_workdays_change_the_count(database_url):
    from tracker.workdays import WorkCalendar
    app = create_app({"app": {"database_url": database_url},
                      "calendar": {"extra_holidays": ["2026-11-23"], "extra_workdays": ["2026-11-28"]}})
    calendar: WorkCalendar = app.extensions["gridloop.calendar"]
    assert not calendar.is_working_day(dt.date(2026, 11, 23))
    assert calendar.is_working_day(dt.date(2026, 11, 28))  # a Saturday
    # Friday 20 Nov + 2 working days: Mon 23 is off, Tue 24 is the first, Wed 25 the second.
    assert calendar.add_working_days(local(2026, 11, 20, 15, 0), 2) == local(2026, 11, 25, 15, 0)
    app.extensions["gridloop.db"].dispose()


def test_request_on_a_weekend_starts_counting_on_the_next_working_day(app):
    calendar = app.extensions["gridloop.calendar"]
    # Saturday: one working day ends when Monday ends.
    assert calendar.add_working_days(local(2026, 11, 21, 11, 0), 1) == local(2026, 11, 24, 0, 0)


@pytest.mark.parametrize(("section", "values", "message"), [
    ("calendar", {"extra_holidays": ["2026-13-01"]}, "calendar.extra_holidays: '2026-13-01' is not a date"),
    ("calendar", {"extra_holidays": ["2026-10-10"], "extra_workdays": ["2026-10-10"]}, "both as a holiday and as a working day"),
    ("deadlines", {"general_days": 0}, "deadlines.general_days must be at least 1"),
    ("deadlines", {"reminder_at": 1.5}, "deadlines.reminder_at"),
    ("deadlines", {"green_channel_factor": "fast"}, "deadlines.green_channel_factor must be float"),
    ("scheduler", {"interval_seconds": 0}, "scheduler.interval_seconds"),
])
def test_bad_time_configuration_fails_at_start_naming_the_key(section, values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        create_app({section: values})


# -- the timers, firing as time passes -----------------------------------------------------

def test_reminder_supervision_and_escalation_fire_in_turn_and_reach_the_right_people(app, login, db):
    _, _, case = _dispatched(login, db, local(2026, 11, 2, 10, 0))  # Monday; limit Wed 11 Nov 10:00
    assert db.scalar(select(Timer.due_at).where(Timer.case_id == case.id)) == case.sign_for_at

    assert _tick(app, local(2026, 11, 2, 18, 0)).fired == 0
    assert _notices(db, "member_a") == []

    # Sign-for limit passes (Tuesday 10:00) without the member signing: the leader hears of it.
    assert _tick(app, local(2026, 11, 3, 10, 1)).fired == 1
    assert [n.kind for n in _notices(db, "leader_a")] == ["sign_for"]

    # 5 working days in: the reminder (催办) goes to the handler, once.
    assert _tick(app, local(2026, 11, 9, 10, 1)).fired == 1
    (reminder,) = _notices(db, "member_a", "reminder")
    assert json.loads(reminder.params)["number"] == case.number
    assert _tick(app, local(2026, 11, 9, 12, 0)).fired == 0

    # At the limit: a supervision task for the grid's leaders (督办), and notices.
    assert _tick(app, local(2026, 11, 11, 10, 1)).fired == 1
    tasks = _open(db, case.id)
    assert set(tasks) == {"handle_member", "supervise"}
    assert tasks["supervise"].role == "grid_leader" and tasks["supervise"].assignee_id is None
    assert [n.kind for n in _notices(db, "leader_a", "supervision")] == ["supervision"]
    assert latest_case(db).status == "handling"

    # Two working days past the limit: escalated to the street office of the community.
    assert _tick(app, local(2026, 11, 13, 10, 1)).fired == 1
    assert set(_open(db, case.id)) == {"handle_member", "supervise", "escalate"}
    assert [n.kind for n in _notices(db, "street", "escalation")] == ["escalation"]
    assert db.scalar(select(Timer).where(Timer.case_id == case.id)) is None  # nothing left to fire

    assert _actions(db, case.id)[-4:] == ["timer.sign_for", "timer.reminder", "timer.supervision", "timer.escalation"]
    assert verify_chain(db, case.id).ok


def test_leader_and_street_office_act_on_supervision_and_handling_closes_what_is_left(app, login, db):
    member, leader, case = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    _tick(app, local(2026, 11, 13, 11, 0))
    tasks = _open(db, case.id)
    # The leader sees the supervision task in the pool and sends an opinion to the handler.
    with time_machine.travel(local(2026, 11, 13, 11, 5), tick=False):
        assert tasks["supervise"].id in leader.get("/").get_data(as_text=True)
        assert leader.submit(f"/tasks/{tasks['supervise'].id}", {"note": ""}).status_code == 422
        assert leader.submit(f"/tasks/{tasks['supervise'].id}", {"note": "今天下班前必须办结"}).status_code == 302
        (note,) = _notices(db, "member_a", "supervision_note")
        assert json.loads(note.params)["note"] == "今天下班前必须办结"
        # The street office sees the escalation in its pool; the grid's member may not act on it.
        street = login("street")
        assert tasks["escalate"].id in street.get("/").get_data(as_text=True)
        assert member.get(f"/tasks/{tasks['escalate'].id}").status_code == 200  # may read the case
        assert member.submit(f"/tasks/{tasks['escalate'].id}", {"note": "x"}).status_code == 403
        # Handling finishes: the open escalation task closes by itself.
        assert member.submit(f"/tasks/{tasks['handle_member'].id}", {"handle_action": "done", "text": "已修好"}).status_code == 302
    assert set(_open(db, case.id)) == {"callback"}
    assert latest_case(db).status == "callback"


def test_signed_for_in_time_means_no_sign_for_notice(app, login, db):
    member, _, case = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    task = open_task(db, case.id)
    with time_machine.travel(local(2026, 11, 2, 11, 0), tick=False):
        page = member.get(f"/tasks/{task.id}").get_data(as_text=True)
        assert "签收" in page
        assert member.submit(f"/tasks/{task.id}/sign", {}, page=f"/tasks/{task.id}").status_code == 302
        assert member.submit(f"/tasks/{task.id}/sign", {}, page=f"/tasks/{task.id}").status_code == 409
    assert latest_case(db).signed_at is not None
    _tick(app, local(2026, 11, 3, 12, 0))
    assert _notices(db, "leader_a", "sign_for") == []
    assert _actions(db, case.id)[-2:] == ["task.signed", "timer.sign_for"]


def test_a_timer_firing_does_not_invalidate_the_form_being_filled_in(app, login, db):
    member, _, case = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    task = open_task(db, case.id)
    with time_machine.travel(local(2026, 11, 9, 10, 30), tick=False):
        page = member.get(f"/tasks/{task.id}").get_data(as_text=True)  # form loaded before the tick
        jobs.tick(app)  # the reminder fires while the member types
        from tests.conftest import csrf_token
        version = page.split('id="version" name="version" type="hidden" value="')[1].split('"')[0]
        response = member.client.post(f"/tasks/{task.id}", data={
            "csrf_token": csrf_token(page), "version": version, "handle_action": "done", "text": "已修好"})
    assert response.status_code == 302
    assert set(_open(db, case.id)) == {"callback"}


def test_approved_extension_moves_the_limit_and_rearms_the_timers(app, login, db):
    member, leader, case = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    _tick(app, local(2026, 11, 9, 10, 1))  # reminder sent for the old limit
    with time_machine.travel(local(2026, 11, 9, 11, 0), tick=False):
        member.submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "extend", "text": "等配件", "extension_days": "3"})
        assert db.scalar(select(Timer).where(Timer.case_id == case.id)) is None  # nothing runs during review
        leader.submit(f"/tasks/{open_task(db, case.id).id}", {"decision": "approve"})
    case = latest_case(db)
    assert case.due_at.astimezone(SH) == local(2026, 11, 16, 10, 0)  # Wed 11 + 3 working days
    assert case.escalate_at.astimezone(SH) == local(2026, 11, 18, 10, 0)
    assert open_task(db, case.id).due_at == case.due_at
    # The reminder is re-armed for the new limit: 75% of the 10 working days from dispatch, i.e. the
    # old limit's moment, where no supervision happens any more.
    assert _tick(app, local(2026, 11, 11, 10, 1)).fired == 1
    assert set(_open(db, case.id)) == {"handle_member"}
    assert _tick(app, local(2026, 11, 16, 10, 1)).fired == 1
    assert set(_open(db, case.id)) == {"handle_member", "supervise"}
    assert len(_notices(db, "member_a", "reminder")) == 2
    assert len(_notices(db, "leader_a", "supervision")) == 1


def test_overdue_and_due_soon_show_in_the_inbox_and_filter_the_case_list(app, login, db):
    member, leader, late = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    _, _, fresh = _dispatched(login, db, local(2026, 11, 10, 10, 0))
    with time_machine.travel(local(2026, 11, 11, 11, 0), tick=False):
        inbox = member.get("/").get_data(as_text=True)
        assert "已超期" in inbox
        mine = member.get("/cases/?deadline=mine").get_data(as_text=True)
        assert late.number in mine and fresh.number not in mine
        overdue = leader.get("/cases/?deadline=overdue").get_data(as_text=True)
        assert late.number in overdue and fresh.number not in overdue
        # The leader is not the handler: nothing of theirs is overdue.
        assert late.number not in leader.get("/cases/?deadline=mine").get_data(as_text=True)


def test_a_timer_that_cannot_fire_is_kept_and_retried_and_others_still_fire(app, login, db):
    _, _, broken = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    _, _, healthy = _dispatched(login, db, local(2026, 11, 2, 10, 5))
    db.execute(Case.__table__.update().where(Case.id == broken.id).values(workflow_state=b"garbage"))
    totals = _tick(app, local(2026, 11, 3, 11, 0))
    assert totals.fired == 1 and len(totals.failed) == 1 and f"case {broken.id}" in totals.failed[0]
    db.expire_all()
    timer = db.scalar(select(Timer).where(Timer.case_id == broken.id))
    assert timer is not None and timer.attempts == 1 and "unreadable" in timer.last_error
    assert timer.due_at > local(2026, 11, 3, 11, 0)  # retried later, not dropped
    assert _actions(db, healthy.id)[-1] == "timer.sign_for"
    health = app.test_client().get("/healthz").json
    assert health["timers"]["pending"] == 2


def test_a_database_failure_in_a_batch_keeps_that_timer_and_fires_the_others(app, login, db):
    # The batch fires as a whole; a row the database refuses (here: the sign-for audit event of one
    # case) undoes that attempt, and the batch is fired again case by case: nothing half-written.
    _, _, refused = _dispatched(login, db, local(2026, 11, 2, 10, 0))
    _, _, healthy = _dispatched(login, db, local(2026, 11, 2, 10, 5))
    state_before = db.scalar(select(Case.workflow_state).where(Case.id == refused.id))
    refuse_audit(db, refused.id, "timer.sign_for")
    db.commit()
    totals = _tick(app, local(2026, 11, 3, 11, 0))
    assert totals.taken == 2 and totals.fired == 1 and len(totals.failed) == 1
    assert f"case {refused.id}" in totals.failed[0] and "injected failure" in totals.failed[0]
    db.expire_all()
    assert _actions(db, healthy.id)[-1] == "timer.sign_for"
    assert db.scalar(select(func.count()).select_from(Notification).where(Notification.case_id == healthy.id)) > 0
    # The refused case is exactly as it was: same workflow state, no notice, no event; its timer waits.
    assert db.scalar(select(Case.workflow_state).where(Case.id == refused.id)) == state_before
    assert db.scalar(select(func.count()).select_from(Notification).where(Notification.case_id == refused.id)) == 0
    assert "timer.sign_for" not in _actions(db, refused.id)
    timer = db.scalar(select(Timer).where(Timer.case_id == refused.id))
    assert timer.attempts == 1 and "injected failure" in timer.last_error
    allow_audit(db)
    db.commit()
    retried = _tick(app, timer.due_at + dt.timedelta(seconds=1))
    assert retried.fired >= 1 and not retried.failed
    db.expire_all()
    assert "timer.sign_for" in _actions(db, refused.id)
    assert verify_chain(db, refused.id).ok and verify_chain(db, healthy.id).ok


def test_scheduler_command_once_fires_due_timers(app, login, db, database_url):
    _dispatched(login, db, local(2026, 11, 2, 10, 0))
    runner = app.test_cli_runner()
    with time_machine.travel(local(2026, 11, 20, 10, 0), tick=False):
        result = runner.invoke(args=["scheduler", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 timers due, 4 fired, 0 failed" in result.output
