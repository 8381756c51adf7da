"""Embedded sub-processes run through the engine like the rest of a process (item 15 of the security issue).

They used to load and then fail at start ("The subprocess 'sub' was not found"): the engine built
workflows without the sub-processes' specs.
"""

from __future__ import annotations

import datetime as dt

import pytest

from workflows import DefinitionInvalid, Engine

FILE = "embedded.bpmn"
DUE = "2030-01-01T08:00:00+00:00"

#: start -> sub [ inner (user task, boundary timer at ``due_at``) -> count (n = n + 1) ] -> after -> end
SOURCE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="collab"><bpmn:participant id="p" processRef="embedded" /></bpmn:collaboration>
  <bpmn:process id="embedded" name="Embedded" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="lane_member" name="网格员">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>sub</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>after</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="sub" />
    <bpmn:subProcess id="sub" name="Inner work">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:startEvent id="sub_start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
      <bpmn:sequenceFlow id="s1" sourceRef="sub_start" targetRef="inner" />
      <bpmn:userTask id="inner" name="Inner task"><bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing>
      </bpmn:userTask>
      <bpmn:boundaryEvent id="inner_late" name="Late" attachedToRef="inner">
        <bpmn:outgoing>s4</bpmn:outgoing>
        <bpmn:timerEventDefinition id="td"><bpmn:timeDate xsi:type="bpmn:tFormalExpression">due_at</bpmn:timeDate>
        </bpmn:timerEventDefinition>
      </bpmn:boundaryEvent>
      <bpmn:sequenceFlow id="s2" sourceRef="inner" targetRef="count" />
      <bpmn:scriptTask id="count" name="Count"><bpmn:incoming>s2</bpmn:incoming><bpmn:outgoing>s3</bpmn:outgoing>
        <bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>
      <bpmn:sequenceFlow id="s3" sourceRef="count" targetRef="sub_end" />
      <bpmn:endEvent id="sub_end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="s4" sourceRef="inner_late" targetRef="sub_late_end" />
      <bpmn:endEvent id="sub_late_end"><bpmn:incoming>s4</bpmn:incoming></bpmn:endEvent>
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="f2" sourceRef="sub" targetRef="after" />
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def definition(engine):
    """The embedded-sub-process definition, loaded by the conftest's engine."""
    return engine.load_source(FILE, SOURCE)


def test_user_task_inside_a_sub_process_is_ready_in_the_sub_process_lane(engine, definition):
    snap = engine.start(definition, {"n": 0, "due_at": DUE})
    assert [(t.name, t.lane, t.title) for t in snap.ready] == [("inner", "网格员", "Inner task")]
    assert snap.next_timer == dt.datetime.fromisoformat(DUE)
    assert snap.path[:2] == ("start", "sub_start")


def test_completing_the_sub_process_runs_its_script_and_continues_outside(engine, definition):
    snap = engine.start(definition, {"n": 0, "due_at": DUE})
    snap = engine.complete_task(definition, snap.state, snap.ready[0].id, {"note": "done inside"})
    assert [t.name for t in snap.ready] == ["after"]
    assert snap.ready[0].data["n"] == 1
    assert snap.ready[0].data["note"] == "done inside"
    assert snap.next_timer is None
    snap = engine.complete_task(definition, snap.state, snap.ready[0].id, {})
    assert snap.completed
    assert dict(snap.data)["n"] == 1


def test_a_timer_inside_a_sub_process_fires_from_stored_state(engine, definition):
    snap = engine.start(definition, {"n": 0, "due_at": DUE})
    early = engine.fire_timers(definition, snap.state, dt.datetime(2029, 12, 31, tzinfo=dt.UTC))
    assert [t.name for t in early.ready] == ["inner"] and early.fired == ()
    late = engine.fire_timers(definition, snap.state, dt.datetime(2030, 1, 2, tzinfo=dt.UTC))
    assert [f.name for f in late.fired] == ["inner_late"]
    assert [t.name for t in late.ready] == ["after"]
    assert late.ready[0].data["n"] == 0  # the script after the inner task never ran


def test_trail_of_a_task_inside_a_sub_process(engine, definition):
    snap = engine.start(definition, {"n": 0, "due_at": DUE})
    trail = engine.trail(definition, snap.state, [snap.ready[0].id])
    assert trail.elements == {"start", "sub", "sub_start", "inner"}
    # Flows inside and outside the sub-process; none across its border.
    assert trail.flows == {("start", "sub"), ("sub_start", "inner")}


def test_user_task_inside_a_sub_process_needs_a_mapped_lane():
    engine = Engine({"网格长": "grid_leader"})
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source(FILE, SOURCE)
    assert {e.element_id for e in info.value.errors} == {"inner", "after"}
    assert all("'网格员' is not mapped to a role" in e.problem for e in info.value.errors)


@pytest.mark.parametrize(("old", "new", "element_id", "problem"), [
    ('<bpmn:userTask id="inner" name="Inner task">', '<bpmn:manualTask id="inner" name="Inner task">', "inner",
     "manual tasks cannot be completed in GridLoop"),
    ("<bpmn:script>n = n + 1</bpmn:script>", "<bpmn:script>n = ().__class__</bpmn:script>", "count",
     "unsafe script: attribute access '.__class__' is not allowed"),
    ('<bpmn:subProcess id="sub" name="Inner work">', '<bpmn:adHocSubProcess id="sub" name="Inner work">', "sub",
     "ad-hoc sub-processes are not supported"),
])
def test_what_is_refused_in_a_process_is_refused_in_a_sub_process(engine, old, new, element_id, problem):
    source = SOURCE.replace(old, new)
    if "manualTask" in new:
        source = source.replace("</bpmn:userTask>\n      <bpmn:boundaryEvent", "</bpmn:manualTask>\n      <bpmn:boundaryEvent")
    if "adHoc" in new:
        source = source.replace("</bpmn:subProcess>", "</bpmn:adHocSubProcess>")
    assert source != SOURCE
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source(FILE, source)
    (error,) = info.value.errors
    assert error.element_id == element_id
    assert error.problem.startswith(problem)
