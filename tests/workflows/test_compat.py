"""Pin the SpiffWorkflow behaviour each workaround in ``workflows/compat.py`` relies on.

These drive SpiffWorkflow directly, not through the Engine: after an upgrade, the test that fails
names the workaround and what changed in SpiffWorkflow.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from tests.workflows.test_workflow_subprocess import SOURCE as EMBEDDED
from workflows import compat

T0 = dt.datetime(2040, 3, 1, 8, 0, tzinfo=dt.UTC)  # far from the wall clock, so the two cannot be confused

#: start -> wait (a timer event, its definition filled in per test) -> end
TIMED = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="timed" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="td"><bpmn:{kind}>{expression}</bpmn:{kind}></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def _workflow(source: str, process_id: str) -> BpmnWorkflow:
    """Parse ``source`` with the parser the engine uses and start a workflow of ``process_id``."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(source.encode("utf-8"), filename=f"{process_id}.bpmn")
    return BpmnWorkflow(parser.get_spec(process_id), parser.get_subprocess_specs(process_id))


def _timed(kind: str = "timeDuration", expression: str = '"PT1H"') -> BpmnWorkflow:
    """Return a workflow waiting at timer ``wait``, started (and its timer first checked) at T0."""
    workflow = _workflow(TIMED.format(kind=kind, expression=expression), "timed")
    with compat.engine_now(T0):
        workflow.do_engine_steps()
    return workflow


def _task(workflow: BpmnWorkflow, bpmn_id: str) -> Any:
    """Return the one task of element ``bpmn_id``."""
    (task,) = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == bpmn_id]
    return task


def _embedded() -> BpmnWorkflow:
    """Return the embedded-sub-process workflow, waiting at its inner user task."""
    workflow = _workflow(EMBEDDED, "embedded")
    with compat.engine_now(T0):
        workflow.get_next_task(state=TaskState.READY).data.update(due_at="2040-06-01T00:00:00+00:00", n=0)
        workflow.do_engine_steps()
    return workflow


@pytest.fixture(autouse=True)
def _engine_clock() -> None:
    """Patch the timer module as an Engine does."""
    compat.install_engine_clock()


# -- the version -------------------------------------------------------------------------------


def test_installed_spiffworkflow_is_the_release_compat_was_written_for():
    compat.check_version()


@pytest.mark.parametrize("found", ["3.1.9", "3.3.0", "4.0", "dev"])
def test_another_release_is_refused_naming_the_range(found):
    with pytest.raises(RuntimeError, match=rf"SpiffWorkflow {found} is installed; .* >=3\.2,<3\.3"):
        compat.check_version(found)


@pytest.mark.parametrize("found", ["3.2", "3.2.0", "3.2.7rc1"])
def test_any_3_2_release_is_accepted(found):
    compat.check_version(found)


# -- install_engine_clock / engine_now ----------------------------------------------------------


def test_timers_read_now_through_their_module_so_the_engine_clock_drives_them():
    workflow = _timed()
    wait = _task(workflow, "wait")
    for moment, fired in [(T0 + dt.timedelta(minutes=59), False), (T0 + dt.timedelta(minutes=61), True)]:
        with compat.engine_now(moment):
            workflow.refresh_timers()
            workflow.do_engine_steps()
        assert (wait.state == TaskState.COMPLETED) is fired, (
            "SpiffWorkflow's timers no longer call datetime.now through the `datetime` name of "
            "SpiffWorkflow.bpmn.specs.event_definitions.timer: install_engine_clock has no effect, "
            f"and timers fire by the wall clock (at {moment}, expected fired={fired}, state {wait.state_name})")


# -- timer_due -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expression", "due"), [
    ("timeDuration", '"PT1H"', T0 + dt.timedelta(hours=1)),
    ("timeDate", '"2040-05-04T09:30:00+00:00"', dt.datetime(2040, 5, 4, 9, 30, tzinfo=dt.UTC)),
])
def test_a_timers_due_moment_is_its_private_event_value(kind, expression, due):
    workflow = _timed(kind, expression)
    (pending,) = workflow.waiting_events()
    assert compat.timer_due(_task(workflow, "wait")) == due, (
        "SpiffWorkflow no longer caches a timer's due moment as an ISO string under the task's internal "
        f"data 'event_value' (it holds {_task(workflow, 'wait').internal_data!r}): timer_due must change")
    assert dt.datetime.fromisoformat(pending.value) == due, "waiting_events() no longer reports the same moment"


# -- every_task / subprocess_task_id -------------------------------------------------------------


def test_every_task_holds_the_tasks_of_the_workflow_and_its_sub_processes():
    workflow = _embedded()
    assert sorted(str(t.id) for t in compat.every_task(workflow)) == sorted(str(t.id) for t in workflow.get_tasks()), (
        "SpiffWorkflow no longer keeps every task in `workflow.tasks` (by id) plus `workflow.subprocesses[*].tasks`: "
        "every_task misses or invents tasks, so a step could stop early or report a timer twice")
    assert "inner" in {t.task_spec.bpmn_id for t in compat.every_task(workflow)}


def test_the_root_of_a_sub_process_names_the_sub_process_task_around_it():
    workflow = _embedded()
    root = _task(workflow, "inner")
    while root.parent is not None:
        root = root.parent
    outer = compat.subprocess_task_id(root)
    assert outer is not None and workflow.get_task_from_id(outer).task_spec.bpmn_id == "sub", (
        "SpiffWorkflow no longer runs an embedded sub-process as its own workflow whose root has no parent and "
        "whose `parent_task_id` is the sub-process task: a trail would stop at the sub-process border")
    assert compat.subprocess_task_id(workflow.task_tree) is None


# -- SpecCacheSerializer -------------------------------------------------------------------------


def _spiff_dict(workflow: BpmnWorkflow) -> dict:
    """Serialize with SpiffWorkflow's own converter for the Spiff parser, spec included."""
    return BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(SPIFF_CONFIG)).to_dict(workflow)


def test_the_serializer_writes_everything_spiff_writes_but_the_spec():
    workflow = _embedded()
    ours = compat.SpecCacheSerializer({}, {}).to_dict(workflow)
    version = ours.pop(BpmnWorkflowSerializer.VERSION_KEY)
    theirs = _spiff_dict(workflow)
    dropped = {key: theirs.pop(key, None) for key in ("spec", "subprocess_specs")}
    assert ours == theirs, (
        "SpiffWorkflow's BpmnWorkflowConverter.to_dict changed (keys now "
        f"{sorted(_spiff_dict(workflow))}): _SpecByHashConverter must write the same, less the spec")
    assert all(dropped.values()), "SpiffWorkflow no longer writes the spec into the state: is the cache still needed?"
    assert version == "1.5", f"the serializer version is now {version}: a stored state may need migrate()"


def test_a_state_restored_onto_the_cached_spec_is_the_workflow_spiff_would_restore():
    workflow = _embedded()
    serializer = compat.SpecCacheSerializer({"h": workflow.spec}, {"h": workflow.subprocess_specs})
    stored = json.loads(json.dumps(serializer.to_dict(workflow)))
    restored = serializer.from_dict(stored, "h")
    assert serializer.to_dict(restored) == serializer.to_dict(workflow), (
        "a workflow restored by _SpecByHashConverter.from_dict differs from the one stored: SpiffWorkflow's "
        "BpmnWorkflowConverter.from_dict (or configure's converter(target_class, registry) call) changed")
    assert _spiff_dict(restored) == _spiff_dict(workflow)
    assert restored.spec is workflow.spec, "the restored workflow is not on the cached spec"


# -- task_in_traceback / error_cause -------------------------------------------------------------


def test_a_bad_timer_value_raises_a_plain_error_with_its_task_in_the_frames():
    workflow = _workflow(TIMED.format(kind="timeDate", expression='"not a date"'), "timed")
    with pytest.raises(Exception) as info, compat.engine_now(T0):
        workflow.do_engine_steps()
    assert not isinstance(info.value, SpiffWorkflowException), (
        f"SpiffWorkflow now wraps a bad timer value in {type(info.value).__name__}: the engine's _bad_value "
        "path may no longer be reached")
    task = compat.task_in_traceback(info.value)
    assert task is not None and task.task_spec.bpmn_id == "wait", (
        "no frame of the traceback holds the timer task as `my_task` any more: task_in_traceback must change, "
        "or errors from bad timer values lose their element id")


class _Refusing(TaskDataEnvironment):
    """An environment refusing every expression, as GridLoop's evaluator refuses unsafe ones."""

    def evaluate(self, expression: str, context: dict, external_context: dict | None = None) -> Any:
        """Refuse."""
        raise ValueError("result too large")


def test_a_refused_expression_is_the_context_of_spiffs_error():
    workflow = _timed()
    task = _task(workflow, "wait")
    with pytest.raises(WorkflowTaskException) as info:
        PythonScriptEngine(environment=_Refusing()).evaluate(task, "x")
    cause = compat.error_cause(info.value)
    assert isinstance(cause, ValueError) and str(cause) == "result too large", (
        "SpiffWorkflow's error for a failed expression no longer carries the original error as its cause or "
        f"context (found {cause!r}): error_cause must change, or messages lose the evaluator's reason")
    assert info.value.task is task, "SpiffWorkflow's WorkflowTaskException.task no longer names the task"
