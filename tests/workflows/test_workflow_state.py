"""Stored state round-trips, stale task ids, and definition versioning."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.workflows.conftest import FAR_DEADLINES
from workflows import Engine, TaskNotReady, WorkflowError, content_hash, decode_state

PROCESS_FILE = "case_closed_loop.bpmn"
START_DATA = {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3}


# -- 8. state round-trip -----------------------------------------------------------------------


def test_state_is_compressed_json_without_the_spec(start_case):
    case = start_case()
    steps = [({"answered_on_spot": False}, "dispatch"), ({"dispatch_to": "member"}, "handle_member")]
    for data, expected in steps:
        assert isinstance(case.snap.state, bytes)
        state = decode_state(case.snap.state)
        text = json.dumps(state, ensure_ascii=False)
        assert len(case.snap.state) * 3 < len(text.encode())
        assert "spec" not in state
        assert "subprocess_specs" not in state
        assert "tasks" in state
        # Nothing of the BPMN source travels with the case.
        assert "conditionExpression" not in text
        assert 'dispatch_to == \\"department\\"' not in text
        case.complete(case.task.name, data)
        assert case.task.name == expected


def test_state_keeps_unicode_data_readable(start_case):
    case = start_case(summary="楼道灯坏了")
    assert "楼道灯坏了" in json.dumps(decode_state(case.snap.state), ensure_ascii=False)
    snap = case.complete("record_reply", {"answered_on_spot": True})
    assert snap.data["summary"] == "楼道灯坏了"


def test_complete_from_stored_state_string(engine, definition):
    snap = engine.start(definition, START_DATA)
    stored_state, stored_id = bytes(snap.state), snap.ready[0].id
    del snap
    snap = engine.complete_task(definition, stored_state, stored_id, {"answered_on_spot": False})
    assert [t.name for t in snap.ready] == ["dispatch"]
    assert snap.path == ("start", "record_reply", "gw_on_spot")


def test_fresh_engine_continues_stored_state(engine, definition):
    """A restarted process (new Engine, nothing cached) continues from state + definition."""
    snap = engine.start(definition, START_DATA)
    snap = engine.complete_task(definition, snap.state, snap.ready[0].id, {"answered_on_spot": False})

    restarted = Engine(engine.lane_roles)
    snap = restarted.complete_task(definition, snap.state, snap.ready[0].id, {"dispatch_to": "department", **FAR_DEADLINES})
    assert [(t.name, t.lane) for t in snap.ready] == [("handle_department", "职能部门")]
    snap = restarted.complete_task(definition, snap.state, snap.ready[0].id, {"handle_action": "done"})
    snap = restarted.complete_task(definition, snap.state, snap.ready[0].id, {"satisfaction": "basic"})
    snap = restarted.complete_task(definition, snap.state, snap.ready[0].id, {"archive_decision": "archive"})
    assert snap.completed
    assert snap.path[0] == "start" and snap.path[-1] == "end"


def test_snapshot_describes_without_changing(engine, definition, start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    described = engine.snapshot(definition, case.snap.state)
    assert [t.id for t in described.ready] == [t.id for t in case.snap.ready]
    assert described.path == case.snap.path
    assert described.completed is False
    assert decode_state(described.state)["tasks"] == decode_state(case.snap.state)["tasks"]


def test_completed_task_id_reused_is_not_ready(engine, definition, start_case):
    case = start_case()
    record_id = case.task.id
    case.complete("record_reply", {"answered_on_spot": False})
    with pytest.raises(TaskNotReady):
        engine.complete_task(definition, case.snap.state, record_id, {"answered_on_spot": True})
    # Still waiting at dispatch: the refused attempt changed nothing.
    assert engine.snapshot(definition, case.snap.state).ready[0].name == "dispatch"


def test_task_completed_twice_from_newer_state_is_not_ready(engine, definition, start_case):
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": True})
    callback_id = case.task.id
    case.complete("callback", {"satisfaction": "satisfied"})
    with pytest.raises(TaskNotReady):
        engine.complete_task(definition, case.snap.state, callback_id, {"satisfaction": "dissatisfied"})


@pytest.mark.parametrize("task_id", ["garbage", "", "12345", str(uuid.uuid4()),
                                     "00000000-0000-0000-0000-000000000000"])
def test_garbage_task_id_is_not_ready(engine, definition, start_case, task_id):
    case = start_case()
    with pytest.raises(TaskNotReady) as info:
        engine.complete_task(definition, case.snap.state, task_id, {"answered_on_spot": True})
    assert isinstance(info.value, WorkflowError)


def test_non_user_task_id_is_not_ready(engine, definition, start_case):
    """The id of a completed engine task (not a user task) is refused too."""
    case = start_case()
    state = decode_state(case.snap.state)
    record_id = case.task.id
    other_ids = [tid for tid in state["tasks"] if tid != record_id]
    assert other_ids
    for tid in other_ids:
        with pytest.raises(TaskNotReady):
            engine.complete_task(definition, case.snap.state, tid, {})


# -- 9. versioning -----------------------------------------------------------------------------


def _version_b(source: str) -> str:
    modified = (source.replace('name="登记答复"', 'name="登记并答复"')
                .replace('name="派单/转办"', 'name="派单 v2"'))
    assert modified != source
    return modified


def test_content_hash_identifies_the_source(engine, definition, bpmn_source):
    assert definition.content_hash == content_hash(bpmn_source)
    assert definition.source == bpmn_source
    assert definition.file_name == PROCESS_FILE
    assert definition.process_id == "case_closed_loop"
    assert definition.name == "诉求闭环 Case closed loop"
    again = engine.load_source(PROCESS_FILE, bpmn_source)
    assert again.content_hash == definition.content_hash
    b = engine.load_source(PROCESS_FILE, _version_b(bpmn_source))
    assert b.content_hash != definition.content_hash
    assert (b.process_id, b.file_name) == (definition.process_id, definition.file_name)


def test_workflow_started_on_a_continues_on_a_after_b_loaded(engine, definition, bpmn_source):
    a = definition
    snap_a = engine.start(a, START_DATA)
    assert snap_a.ready[0].title == "登记答复"

    b = engine.load_source(PROCESS_FILE, _version_b(bpmn_source))

    # The running case keeps A's labels.
    assert engine.snapshot(a, snap_a.state).ready[0].title == "登记答复"
    snap_a = engine.complete_task(a, snap_a.state, snap_a.ready[0].id, {"answered_on_spot": False})
    assert (snap_a.ready[0].name, snap_a.ready[0].title) == ("dispatch", "派单/转办")

    # A new case on B gets B's labels.
    snap_b = engine.start(b, START_DATA)
    assert snap_b.ready[0].title == "登记并答复"
    snap_b = engine.complete_task(b, snap_b.state, snap_b.ready[0].id, {"answered_on_spot": False})
    assert snap_b.ready[0].title == "派单 v2"

    # A finishes on A, even on an engine that only ever saw B.
    other = Engine(engine.lane_roles)
    other.load_source(PROCESS_FILE, _version_b(bpmn_source))
    snap_a = other.complete_task(a, snap_a.state, snap_a.ready[0].id, {"dispatch_to": "member", **FAR_DEADLINES})
    assert snap_a.ready[0].name == "handle_member"
    assert engine.snapshot(a, snap_a.state).ready[0].title == "网格员办理"


def test_unreadable_stored_state_is_a_clear_error(engine, definition):
    with pytest.raises(WorkflowError, match="stored workflow state is unreadable"):
        engine.snapshot(definition, b"not zlib at all")
