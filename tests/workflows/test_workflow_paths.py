"""Every path through the real case_closed_loop process, driven through Engine's public API."""

from __future__ import annotations

import pytest

from workflows import TaskNotReady, WorkflowError

HANDLE_TASK = {"member": "handle_member", "department": "handle_department"}
HANDLE_LANE = {"member": "网格员", "department": "职能部门"}
HANDLE_TITLE = {"member": "网格员办理", "department": "部门办理"}
#: What the tracker hands in when archive review files the record.
ARCHIVE = {"archive_decision": "archive"}


def _to_handle(case, dispatch_to: str):
    """record_reply (not on the spot) -> dispatch -> the handle task for ``dispatch_to``."""
    case.complete("record_reply", {"answered_on_spot": False})
    case.complete("dispatch", {"dispatch_to": dispatch_to})
    return case.task


def _satisfied_and_archive(case, satisfaction: str = "satisfied"):
    case.complete("callback", {"satisfaction": satisfaction})
    assert case.task.name == "review_archive"
    return case.complete("review_archive", ARCHIVE)


# -- 1. on-the-spot answer ---------------------------------------------------------------------


def test_start_waits_for_record_reply_in_member_lane(start_case):
    case = start_case()
    snap = case.snap
    assert not snap.completed
    assert [t.name for t in snap.ready] == ["record_reply"]
    task = snap.ready[0]
    assert (task.lane, task.form_key, task.title) == ("网格员", "record_reply", "登记答复")
    assert snap.path == ("start",)
    assert dict(snap.data) == {"reopen_count": 0, "callback_attempts": 0, "dispatch_to": "",
                               "max_callback_attempts": 3}
    assert dict(task.data) == dict(snap.data)


@pytest.mark.parametrize("satisfaction", ["satisfied", "basic"])
def test_on_the_spot_answer_goes_straight_to_callback_then_archive(start_case, satisfaction):
    case = start_case()
    snap = case.complete("record_reply", {"answered_on_spot": True})
    task = case.task
    assert (task.name, task.lane, task.form_key, task.title) == ("callback", "网格员", "callback", "回访")
    assert snap.path == ("start", "record_reply", "gw_on_spot")
    assert task.data["answered_on_spot"] is True

    snap = case.complete("callback", {"satisfaction": satisfaction})
    task = case.task
    assert (task.name, task.lane, task.form_key, task.title) == (
        "review_archive", "网格长", "review_archive", "审核归档")
    assert not snap.completed

    snap = case.complete("review_archive", ARCHIVE)
    assert snap.completed
    assert snap.ready == ()
    assert snap.path == ("start", "record_reply", "gw_on_spot", "callback", "gw_callback",
                         "review_archive", "gw_review", "end")
    assert "dispatch" not in snap.path
    assert snap.data["satisfaction"] == satisfaction
    assert snap.data["reopen_count"] == 0
    assert snap.data["callback_attempts"] == 0


# -- 2./3. dispatch to a member, referral to a department --------------------------------------


@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_dispatch_handle_done_callback_archive(start_case, dispatch_to):
    case = start_case()
    snap = case.complete("record_reply", {"answered_on_spot": False})
    task = case.task
    assert (task.name, task.lane, task.form_key, task.title) == (
        "dispatch", "网格长", "dispatch", "派单/转办")
    assert snap.path == ("start", "record_reply", "gw_on_spot")

    snap = case.complete("dispatch", {"dispatch_to": dispatch_to})
    task = case.task
    assert task.name == HANDLE_TASK[dispatch_to]
    assert task.lane == HANDLE_LANE[dispatch_to]
    assert task.form_key == "handle"
    assert task.title == HANDLE_TITLE[dispatch_to]
    assert task.data["dispatch_to"] == dispatch_to

    snap = case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    assert case.task.name == "callback"
    assert case.task.lane == "网格员"

    snap = _satisfied_and_archive(case)
    assert snap.completed
    assert snap.path == ("start", "record_reply", "gw_on_spot", "dispatch", "handling", "handling_start", "gw_route",
                         HANDLE_TASK[dispatch_to], "handling_end", "throw_handled", "gw_handle", "callback",
                         "gw_callback", "review_archive", "gw_review", "end")
    other = HANDLE_TASK["department" if dispatch_to == "member" else "member"]
    assert other not in snap.path
    assert snap.data["handle_action"] == "done"


def test_department_referral_lands_in_department_lane(start_case):
    case = start_case()
    task = _to_handle(case, "department")
    assert task.name == "handle_department"
    assert task.lane == "职能部门"
    assert task.form_key == "handle"


# -- 4. return (退单) ---------------------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("member", "department"), ("department", "member"),
                                               ("member", "member")])
def test_return_goes_back_to_dispatch_then_redispatch(start_case, first, second):
    case = start_case()
    first_handle = _to_handle(case, first)

    snap = case.complete(HANDLE_TASK[first], {"handle_action": "return"})
    task = case.task
    assert (task.name, task.lane, task.form_key) == ("dispatch", "网格长", "dispatch")
    assert snap.path[-4:] == (HANDLE_TASK[first], "handling_end", "throw_handled", "gw_handle")
    assert snap.path.count("dispatch") == 1

    snap = case.complete("dispatch", {"dispatch_to": second})
    task = case.task
    assert task.name == HANDLE_TASK[second]
    assert task.lane == HANDLE_LANE[second]
    assert task.id != first_handle.id
    assert snap.path.count("dispatch") == 2

    case.complete(HANDLE_TASK[second], {"handle_action": "done"})
    snap = _satisfied_and_archive(case)
    assert snap.completed
    assert snap.path.count("gw_handle") == 2
    assert snap.data["dispatch_to"] == second


# -- 5. extension -------------------------------------------------------------------------------


@pytest.mark.parametrize("approved", [True, False])
@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_extension_comes_back_to_same_handle_task(start_case, dispatch_to, approved):
    case = start_case()
    first_handle = _to_handle(case, dispatch_to)

    snap = case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "extend"})
    task = case.task
    assert (task.name, task.lane, task.form_key, task.title) == (
        "review_extension", "网格长", "review_extension", "审批延期")
    assert task.data["handle_action"] == "extend"

    snap = case.complete("review_extension", {"extension_approved": approved})
    task = case.task
    assert task.name == HANDLE_TASK[dispatch_to]
    assert task.lane == HANDLE_LANE[dispatch_to]
    assert task.form_key == "handle"
    assert task.id != first_handle.id
    assert task.data["extension_approved"] is approved
    assert snap.path[-7:] == (HANDLE_TASK[dispatch_to], "handling_end", "throw_handled", "gw_handle",
                              "review_extension", "handling_start", "gw_route")
    assert snap.path.count("dispatch") == 1  # no re-dispatch

    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    snap = _satisfied_and_archive(case)
    assert snap.completed
    assert snap.path.count(HANDLE_TASK[dispatch_to]) == 2


# -- 6. dissatisfied -> reopen -----------------------------------------------------------------


@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_dissatisfied_reopens_same_handle_task_and_counts(start_case, dispatch_to):
    case = start_case()
    _to_handle(case, dispatch_to)
    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})

    snap = case.complete("callback", {"satisfaction": "dissatisfied"})
    task = case.task
    assert task.name == HANDLE_TASK[dispatch_to]
    assert task.lane == HANDLE_LANE[dispatch_to]
    assert task.form_key == "handle"
    assert snap.data["reopen_count"] == 1
    assert task.data["reopen_count"] == 1
    assert snap.path[-6:] == ("callback", "gw_callback", "reopen", "gw_reopen", "handling_start", "gw_route")

    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    snap = case.complete("callback", {"satisfaction": "dissatisfied"})
    assert case.task.name == HANDLE_TASK[dispatch_to]
    assert snap.data["reopen_count"] == 2

    case.complete(HANDLE_TASK[dispatch_to], {"handle_action": "done"})
    snap = _satisfied_and_archive(case)
    assert snap.completed
    assert snap.data["reopen_count"] == 2
    assert snap.data["callback_attempts"] == 0
    assert snap.path.count("reopen") == 2
    assert snap.path.count("callback") == 3
    assert snap.path.count("dispatch") == 1


def test_dissatisfied_after_on_the_spot_answer_goes_to_dispatch(start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": True})
    snap = case.complete("callback", {"satisfaction": "dissatisfied"})
    assert snap.data["reopen_count"] == 1
    assert [(t.name, t.lane) for t in snap.ready] == [("dispatch", "网格长")]
    assert snap.path[-3:] == ("gw_callback", "reopen", "gw_reopen")


# -- 7. unreachable retries --------------------------------------------------------------------


def test_unreachable_retries_until_max_attempts_then_archive(start_case):
    case = start_case(max_callback_attempts=3)
    _to_handle(case, "member")
    case.complete("handle_member", {"handle_action": "done"})

    seen_ids = {case.task.id}
    for attempt in (1, 2):
        snap = case.complete("callback", {"satisfaction": "unreachable"})
        task = case.task
        assert (task.name, task.lane, task.form_key) == ("callback", "网格员", "callback")
        assert task.id not in seen_ids
        seen_ids.add(task.id)
        assert snap.data["callback_attempts"] == attempt
        assert snap.path[-4:] == ("callback", "gw_callback", "count_attempt", "gw_retry")

    snap = case.complete("callback", {"satisfaction": "unreachable"})
    task = case.task
    assert (task.name, task.lane, task.form_key) == ("review_archive", "网格长", "review_archive")
    assert snap.data["callback_attempts"] == 3
    assert snap.path.count("count_attempt") == 3

    snap = case.complete("review_archive", ARCHIVE)
    assert snap.completed
    assert snap.data["callback_attempts"] == 3
    assert snap.data["reopen_count"] == 0
    assert snap.path[-3:] == ("review_archive", "gw_review", "end")


def test_unreachable_then_reached_goes_to_archive(start_case):
    case = start_case(max_callback_attempts=3)
    case.complete("record_reply", {"answered_on_spot": True})
    snap = case.complete("callback", {"satisfaction": "unreachable"})
    assert case.task.name == "callback"
    assert snap.data["callback_attempts"] == 1
    snap = _satisfied_and_archive(case)
    assert snap.completed
    assert snap.data["callback_attempts"] == 1
    assert snap.path.count("callback") == 2


def test_single_attempt_allowed_archives_on_first_unreachable(start_case):
    case = start_case(max_callback_attempts=1)
    case.complete("record_reply", {"answered_on_spot": True})
    snap = case.complete("callback", {"satisfaction": "unreachable"})
    assert case.task.name == "review_archive"
    assert snap.data["callback_attempts"] == 1


# -- gateway failures --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [{"handle_action": "bogus"}, {}])
def test_unmatched_handle_action_raises_and_leaves_state_usable(engine, definition, start_case, data):
    case = start_case()
    handle = _to_handle(case, "member")
    state = case.snap.state
    with pytest.raises(WorkflowError) as info:
        engine.complete_task(definition, state, handle.id, data)
    assert not isinstance(info.value, TaskNotReady)
    assert "gw_handle" in str(info.value)
    # The caller keeps the old state; the same task can still be completed properly.
    snap = engine.complete_task(definition, state, handle.id, {"handle_action": "done"})
    assert [t.name for t in snap.ready] == ["callback"]


def test_unknown_satisfaction_raises(engine, definition, start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": True})
    with pytest.raises(WorkflowError):
        engine.complete_task(definition, case.snap.state, case.task.id, {"satisfaction": "maybe"})
