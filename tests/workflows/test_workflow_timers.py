"""Boundary timers on handling: sign-for, reminder, supervision, escalation, driven by data."""

from __future__ import annotations

import datetime as dt

import pytest

T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)
HANDLE_TASK = {"member": "handle_member", "department": "handle_department"}


def _at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def _deadlines(offset: float = 0) -> dict[str, str]:
    """Sign-for after 1 day, reminder after 3, limit at 5, escalation at 7 (from T0 + offset)."""
    return {"sign_for_at": _at(offset + 1).isoformat(), "remind_at": _at(offset + 3).isoformat(),
            "due_at": _at(offset + 5).isoformat(), "escalate_at": _at(offset + 7).isoformat()}


@pytest.fixture
def handling(engine, start_case):
    """A case dispatched at T0 with the deadlines above, waiting in handling."""
    def make(dispatch_to: str = "member"):
        engine.clock = lambda: T0
        case = start_case()
        case.complete("record_reply", {"answered_on_spot": False})
        case.complete("dispatch", {"dispatch_to": dispatch_to, **_deadlines()})
        return case
    return make


def _names(snap) -> list[str]:
    return sorted(t.name for t in snap.ready)


@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_each_timer_fires_once_at_its_moment_in_order(engine, definition, handling, dispatch_to):
    case = handling(dispatch_to)
    assert case.snap.next_timer == _at(1)
    # One set of timers, on the handling sub-process, whoever handles.
    expected = [(0.5, []), (1.5, [("t_sign_for", "sign_for")]), (2.9, []), (3.5, [("t_remind", "reminder")]),
                (5.5, [("t_supervise", "supervision")]), (7.5, [("t_escalate", "escalation")])]
    state = case.snap.state
    for days, fired in expected:
        snap = engine.fire_timers(definition, state, _at(days))
        assert [(f.name, f.notice) for f in snap.fired] == fired, days
        state = snap.state
    assert _names(snap) == sorted([HANDLE_TASK[dispatch_to], "supervise", "escalate"])
    assert {t.name: t.lane for t in snap.ready}["escalate"] == "街道办"
    assert {t.name: t.form_key for t in snap.ready}["supervise"] == "supervise"
    assert snap.next_timer is None
    # Firing again at the same moment changes nothing: each timer fires once.
    again = engine.fire_timers(definition, state, _at(7.5))
    assert again.fired == ()
    assert _names(again) == _names(snap)


def test_fired_timer_reports_its_due_time_and_title(engine, definition, handling):
    case = handling()
    snap = engine.fire_timers(definition, case.snap.state, _at(3.5))
    assert [(f.title, f.due) for f in snap.fired] == [("签收时限", _at(1)), ("催办", _at(3))]
    assert snap.next_timer == _at(5)


def test_late_tick_fires_everything_due_at_once(engine, definition, handling):
    snap = engine.fire_timers(definition, handling().snap.state, _at(30))
    assert [f.notice for f in snap.fired] == ["sign_for", "reminder", "supervision", "escalation"]


def test_finishing_handling_closes_open_supervision_and_escalation(engine, definition, handling):
    case = handling()
    snap = engine.fire_timers(definition, case.snap.state, _at(8))
    handle = next(t for t in snap.ready if t.name == "handle_member")
    snap = engine.complete_task(definition, snap.state, handle.id, {"handle_action": "done"})
    assert _names(snap) == ["callback"]
    assert "end_supervise_closed" in snap.path and "end_escalate_closed" in snap.path
    assert snap.next_timer is None


def test_handling_in_time_cancels_every_timer(engine, definition, handling):
    case = handling()
    snap = case.complete("handle_member", {"handle_action": "done"})
    assert snap.next_timer is None
    assert engine.fire_timers(definition, snap.state, _at(100)).fired == ()


def test_supervision_task_completes_on_its_own_and_handling_goes_on(engine, definition, handling):
    snap = engine.fire_timers(definition, handling().snap.state, _at(5.5))
    supervise = next(t for t in snap.ready if t.name == "supervise")
    snap = engine.complete_task(definition, snap.state, supervise.id, {"note": "今天必须办结"})
    assert _names(snap) == ["handle_member"]
    assert snap.next_timer == _at(7)


def test_approved_extension_rearms_timers_with_the_new_deadline(engine, definition, handling):
    case = handling()
    snap = engine.fire_timers(definition, case.snap.state, _at(3.5))  # reminder sent
    engine.clock = lambda: _at(4)
    handle = next(t for t in snap.ready if t.name == "handle_member")
    snap = engine.complete_task(definition, snap.state, handle.id, {"handle_action": "extend"})
    assert _names(snap) == ["review_extension"] and snap.next_timer is None
    # Approved: the tracker hands in the moved moments; the handle task comes back with fresh timers.
    moved = {k: v for k, v in _deadlines(offset=10).items() if k != "sign_for_at"}
    snap = engine.complete_task(definition, snap.state, snap.ready[0].id, {"extension_approved": True, **moved})
    assert _names(snap) == ["handle_member"]
    # The old sign-for moment has passed, so that timer fires at once; the rest wait for the new limit.
    assert [f.notice for f in snap.fired] == ["sign_for"]
    assert snap.next_timer == _at(13)
    snap = engine.fire_timers(definition, snap.state, _at(12))
    assert snap.fired == ()
    snap = engine.fire_timers(definition, snap.state, _at(15.5))
    assert [f.notice for f in snap.fired] == ["reminder", "supervision"]


def test_timers_follow_the_engine_clock(engine, definition, handling):
    case = handling()
    engine.clock = lambda: _at(1.5)
    # Any step the engine takes sees its clock: completing an unrelated read fires nothing, a tick does.
    assert engine.fire_timers(definition, case.snap.state).fired[0].notice == "sign_for"
    engine.clock = lambda: _at(0.5)
    assert engine.fire_timers(definition, case.snap.state).fired == ()


def test_wall_clock_is_untouched_outside_engine_steps(engine, definition, handling):
    handling()
    from workflows.compat import EngineClock

    assert abs(EngineClock.now(dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_missing_deadline_data_is_a_clear_error(engine, definition, start_case):
    from workflows import WorkflowError

    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    with pytest.raises(WorkflowError, match="sign_for_at"):
        engine.complete_task(definition, case.snap.state, case.task.id,
                             {"dispatch_to": "member", "sign_for_at": None, "remind_at": None})
