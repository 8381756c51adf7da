"""Archive review sending a case back for rework (退回重办) and a leader recalling a referral (撤回)."""

from __future__ import annotations

import datetime as dt

import pytest

from workflows import WorkflowError

ARCHIVE = {"archive_decision": "archive"}
HANDLE_TASK = {"member": "handle_member", "department": "handle_department"}

REWORK = {"archive_decision": "rework", "comment": "结果不完整"}


def _to_handle(case, dispatch_to: str):
    """record_reply (not on the spot) -> dispatch -> the handle task for ``dispatch_to``."""
    case.complete("record_reply", {"answered_on_spot": False})
    case.complete("dispatch", {"dispatch_to": dispatch_to})


def _to_review(case, dispatch_to: str, **handle):
    """Dispatch, handle, a satisfied callback: the case waits in archive review."""
    _to_handle(case, dispatch_to)
    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    case.complete("callback", {"satisfaction": "satisfied"})
    assert case.task.name == "review_archive"


@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_rework_goes_back_to_the_same_handling_then_through_callback_again(start_case, dispatch_to):
    case = start_case()
    _to_review(case, dispatch_to)
    snap = case.complete("review_archive", REWORK)
    assert not snap.completed
    assert case.task.name == HANDLE_TASK[dispatch_to]
    assert snap.path[-6:] == ("review_archive", "gw_review", "rework", "gw_reopen", "handling_start", "gw_route")
    # Not a reopen: the resident was satisfied; the review sent it back.
    assert snap.data["reopen_count"] == 0
    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    snap = case.complete("callback", {"satisfaction": "satisfied"})
    assert case.task.name == "review_archive"
    snap = case.complete("review_archive", ARCHIVE)
    assert snap.completed
    assert snap.path.count("callback") == 2


def test_rework_after_unreachable_callbacks_starts_the_attempts_afresh(start_case):
    case = start_case(max_callback_attempts=1)
    _to_handle(case, "member")
    case.complete("handle_member", {"handle_action": "done"})
    snap = case.complete("callback", {"satisfaction": "unreachable"})
    assert case.task.name == "review_archive" and snap.data["callback_attempts"] == 1
    snap = case.complete("review_archive", REWORK)
    assert snap.data["callback_attempts"] == 0
    assert case.task.name == "handle_member"


def test_rework_of_a_case_answered_on_the_spot_goes_to_dispatch(start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": True})
    case.complete("callback", {"satisfaction": "basic"})
    snap = case.complete("review_archive", REWORK)
    assert [(t.name, t.lane) for t in snap.ready] == [("dispatch", "网格长")]


def test_review_without_a_decision_is_refused_and_state_stays_usable(engine, definition, start_case):
    case = start_case()
    _to_review(case, "member")
    with pytest.raises(WorkflowError, match="archive_decision"):
        case.complete("review_archive", {})
    assert case.complete("review_archive", ARCHIVE).completed


def test_recall_stops_department_handling_and_waits_for_dispatch(engine, definition, start_case):
    case = start_case()
    _to_handle(case, "department")
    snap = engine.send_signal(definition, case.snap.state, "recalled")
    assert snap is not None
    assert [(t.name, t.lane) for t in snap.ready] == [("dispatch", "网格长")]
    assert snap.path[-2:] == ("b_recalled", "throw_recalled")
    assert snap.next_timer is None  # the handling period's timers are gone with it
    case.snap = snap
    case.complete("dispatch", {"dispatch_to": "member"})
    assert case.task.name == "handle_member"


def test_recall_closes_open_supervision(engine, definition, start_case):
    past = {"sign_for_at": "2000-01-01T00:00:00+00:00", "remind_at": "2000-01-02T00:00:00+00:00",
            "due_at": "2000-01-03T00:00:00+00:00", "escalate_at": "2099-01-04T00:00:00+00:00"}
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    case.snap = engine.complete_task(definition, case.snap.state, case.snap.ready[0].id,
                                     {"dispatch_to": "department", **past})
    case.snap = engine.fire_timers(definition, case.snap.state, dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    assert {t.name for t in case.snap.ready} == {"handle_department", "supervise"}
    snap = engine.send_signal(definition, case.snap.state, "recalled")
    assert [t.name for t in snap.ready] == ["dispatch"]


def test_recall_outside_handling_changes_nothing(engine, definition, start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    assert engine.send_signal(definition, case.snap.state, "recalled") is None
