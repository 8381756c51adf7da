"""The process owns its states: statuses on its user tasks, signing for (签收) caught on handling,
one handling sub-process carrying the one set of timers."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.workflows.conftest import FAR_DEADLINES, PROCESS_FILE, START_DATA, Case
from workflows import DefinitionInvalid

#: The case_closed_loop deployed before statuses and signing for were in the BPMN (commit 3c4cf86).
PREVIOUS = Path(__file__).resolve().parents[1] / "web" / "fixtures" / "case_closed_loop_3c4cf86.bpmn"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
STATUSES = {"record_reply": "recording", "dispatch": "dispatching", "handle_member": "handling",
            "handle_department": "handling", "review_extension": "extension_review", "callback": "callback",
            "review_archive": "archive_review", "supervise": "handling", "escalate": "handling"}
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


def _handling(start_case, dispatch_to: str = "member") -> Case:
    """A case dispatched to ``dispatch_to``, waiting in handling."""
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    case.complete("dispatch", {"dispatch_to": dispatch_to})
    return case


def test_every_user_task_names_its_status(engine, definition):
    assert engine.task_statuses(definition) == STATUSES


def test_each_ready_task_carries_its_status_round_the_loop(engine, definition, start_case):
    engine.clock = lambda: T0
    case = start_case()
    seen = [(case.task.name, case.task.status)]
    case.complete("record_reply", {"answered_on_spot": False})
    seen.append((case.task.name, case.task.status))
    deadlines = {k: (T0 + dt.timedelta(days=days)).isoformat()
                 for k, days in [("sign_for_at", 1), ("remind_at", 2), ("due_at", 3), ("escalate_at", 4)]}
    case.complete("dispatch", {"dispatch_to": "department", **deadlines})
    seen.append((case.task.name, case.task.status))
    late = engine.fire_timers(definition, case.snap.state, T0 + dt.timedelta(days=5))
    assert {(t.name, t.status) for t in late.ready} == {("handle_department", "handling"), ("supervise", "handling"),
                                                         ("escalate", "handling")}
    case.snap = engine.complete_task(definition, late.state, late.ready[0].id, {"handle_action": "extend"})
    seen.append((case.task.name, case.task.status))
    case.complete("review_extension", {"extension_approved": False})
    case.complete("handle_department", {"handle_action": "done"})
    seen.append((case.task.name, case.task.status))
    case.complete("callback", {"satisfaction": "satisfied"})
    seen.append((case.task.name, case.task.status))
    assert seen == [("record_reply", "recording"), ("dispatch", "dispatching"), ("handle_department", "handling"),
                    ("review_extension", "extension_review"), ("callback", "callback"),
                    ("review_archive", "archive_review")]


def test_the_previous_version_names_no_status_and_still_loads(engine):
    old = engine.load_source(PROCESS_FILE, PREVIOUS.read_text(encoding="utf-8"))
    assert set(engine.task_statuses(old).values()) == {None}
    case = Case(engine, old, START_DATA)
    assert (case.task.name, case.task.status) == ("record_reply", None)


@pytest.mark.parametrize(("old", "new"), [
    ('<spiffworkflow:property name="status" value="callback" />', ""),
    ('<spiffworkflow:property name="status" value="callback" />', '<spiffworkflow:property name="status" value=" " />'),
])
def test_a_user_task_naming_no_status_where_the_others_do_is_refused(engine, bpmn_source, old, new):
    assert bpmn_source.count(old) == 1
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source(PROCESS_FILE, bpmn_source.replace(old, new))
    (error,) = info.value.errors
    assert (error.file_name, error.element_id) == (PROCESS_FILE, "callback")
    assert error.problem.startswith("user task names no status while other user tasks of the process do")


# -- signing for (签收) ------------------------------------------------------------------------


@pytest.mark.parametrize("dispatch_to", ["member", "department"])
def test_signing_for_is_caught_on_handling_and_handling_goes_on(engine, definition, start_case, dispatch_to):
    case = _handling(start_case, dispatch_to)
    waiting = case.task
    snap = engine.send_signal(definition, case.snap.state, "signed_for")
    assert [(t.id, t.status) for t in snap.ready] == [(waiting.id, "handling")]
    assert snap.path[-2:] == ("s_signed", "end_signed")
    assert snap.next_timer == case.snap.next_timer  # the timers run on
    # Signed once per handling period: the event is not waited for any more.
    assert engine.send_signal(definition, snap.state, "signed_for") is None


def test_signing_for_outside_handling_or_on_the_previous_version_changes_nothing(engine, definition, start_case):
    case = start_case()
    assert engine.send_signal(definition, case.snap.state, "signed_for") is None
    old = engine.load_source(PROCESS_FILE, PREVIOUS.read_text(encoding="utf-8"))
    old_case = Case(engine, old, START_DATA)
    old_case.complete("record_reply", {"answered_on_spot": False})
    old_case.complete("dispatch", {"dispatch_to": "member"})
    assert engine.send_signal(old, old_case.snap.state, "signed_for") is None


def test_each_handling_period_is_signed_for_anew(engine, definition, start_case):
    case = _handling(start_case)
    case.snap = engine.send_signal(definition, case.snap.state, "signed_for")
    case.complete("handle_member", {"handle_action": "done"})
    case.complete("callback", {"satisfaction": "dissatisfied", **FAR_DEADLINES})
    assert case.task.name == "handle_member"
    snap = engine.send_signal(definition, case.snap.state, "signed_for")
    assert snap is not None and snap.path.count("end_signed") == 2


def test_the_sign_for_timer_fires_whether_or_not_the_case_was_signed_for(engine, definition, start_case):
    # Whom to tell is the tracker's call (nobody, once signed): the timer is part of the handling period.
    engine.clock = lambda: T0
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    case.complete("dispatch", {"dispatch_to": "member", "sign_for_at": (T0 + dt.timedelta(hours=1)).isoformat()})
    signed = engine.send_signal(definition, case.snap.state, "signed_for")
    fired = engine.fire_timers(definition, signed.state, T0 + dt.timedelta(hours=2))
    assert [(f.name, f.notice) for f in fired.fired] == [("t_sign_for", "sign_for")]


# -- one handling sub-process, one set of timers ------------------------------------------------


def test_both_handlers_work_inside_one_sub_process_that_carries_every_timer(definition):
    process = ET.fromstring(definition.source.encode()).find(f"{BPMN}process")
    (handling,) = process.findall(f"{BPMN}subProcess")
    assert handling.get("id") == "handling"
    assert {t.get("id") for t in handling.iter(f"{BPMN}userTask")} == {"handle_member", "handle_department"}
    boundary = {e.get("id"): e.get("attachedToRef") for e in process.iter(f"{BPMN}boundaryEvent")}
    timers = {e.get("id") for e in process.iter(f"{BPMN}boundaryEvent") if e.find(f"{BPMN}timerEventDefinition")}
    assert timers == {"t_sign_for", "t_remind", "t_supervise", "t_escalate"}
    assert {boundary[t] for t in timers} == {"handling"}
    assert boundary["s_signed"] == "handling"
