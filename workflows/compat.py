"""Every SpiffWorkflow internal the engine patches or reads, in one place.

SpiffWorkflow's public API does not cover a few things GridLoop needs (timers "as of" a moment,
states without the spec, the due time of a timer, the element an error happened at). Each
workaround below names the internal it relies on; ``tests/workflows/test_compat.py`` pins each
one, so an upgrade that changes them fails there, saying what changed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.metadata import version as installed_version
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _spiff_timer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

#: The SpiffWorkflow releases these workarounds were written against (pyproject pins >=3.2,<3.3).
SUPPORTED = ((3, 2), (3, 3))


def check_version(found: str | None = None) -> None:
    """Raise RuntimeError unless SpiffWorkflow (``found``, default: installed) is a supported release."""
    found = found or installed_version("SpiffWorkflow")
    match = re.match(r"(\d+)\.(\d+)", found)
    low, high = SUPPORTED
    if match is None or not low <= (int(match[1]), int(match[2])) < high:
        raise RuntimeError(f"SpiffWorkflow {found} is installed; workflows/compat.py was written for "
                           f">={low[0]}.{low[1]},<{high[0]}.{high[1]}: re-check every workaround there "
                           "(tests/workflows/test_compat.py) before widening the range")


# -- the clock timers read ---------------------------------------------------------------------

#: The moment the engine treats as "now" while it runs a step (None: the wall clock).
_NOW: ContextVar[dt.datetime | None] = ContextVar("gridloop_engine_now", default=None)


class EngineClock(dt.datetime):
    """Spiff's timers ask ``datetime.now``; answer with the engine's clock while it runs a step.

    This lets the tracker fire timers "as of" a moment (the scheduler's tick, the demo clock) instead
    of whatever the wall clock says when the step happens to run.
    """

    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]  # a plain datetime
        """Return the engine's current moment, or the wall clock outside a step."""
        now = _NOW.get()
        if now is None:
            return dt.datetime.now(tz)
        return now.astimezone(tz) if tz is not None else now.astimezone().replace(tzinfo=None)


def install_engine_clock() -> None:
    """Make Spiff's timer module read the time from EngineClock.

    Relies on SpiffWorkflow's timer event definitions calling ``datetime.now`` through the
    ``datetime`` name of their own module (``SpiffWorkflow.bpmn.specs.event_definitions.timer``),
    which offers no clock of its own to pass in.
    """
    _spiff_timer.datetime = EngineClock


@contextmanager
def engine_now(moment: dt.datetime) -> Iterator[None]:
    """Run the enclosed code with EngineClock answering ``moment``."""
    token = _NOW.set(moment)
    try:
        yield
    finally:
        _NOW.reset(token)


# -- states without the spec -------------------------------------------------------------------


class _SpecByHashConverter(BpmnWorkflowConverter):
    """Serialize a workflow with its spec's content hash instead of the whole spec.

    Spiff's own converter writes the full spec into every state and rebuilds it on every load; the
    spec of a definition version never changes, so GridLoop parses it once and looks it up by hash.
    Relies on the steps of ``BpmnWorkflowConverter.to_dict``/``from_dict``, repeated here minus the spec.
    """

    #: Set per serializer: content hash -> parsed spec, and -> the specs of its embedded sub-processes by id.
    specs: Mapping[str, Any] = {}
    subprocess_specs: Mapping[str, dict[str, Any]] = {}

    def to_dict(self, workflow: BpmnWorkflow) -> dict:
        """Convert the task tree and events, leaving out the spec and the sub-process specs."""
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict) -> BpmnWorkflow:
        """Rebuild a workflow onto the cached spec named by ``dct['spec']``."""
        spec_hash = dct.pop("spec")
        workflow = self.target_class(self.specs[spec_hash], self.subprocess_specs[spec_hash], deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class SpecCacheSerializer:
    """Turn workflows into dicts without their spec, and back onto specs parsed once per content hash.

    Relies on ``BpmnWorkflowSerializer.configure`` instantiating each converter class of the config
    as ``converter(target_class, registry)``, so the spec caches ride on a class made per serializer.
    """

    def __init__(self, specs: Mapping[str, Any], subprocess_specs: Mapping[str, dict[str, Any]]) -> None:
        """Serialize onto ``specs`` and ``subprocess_specs`` (content hash -> spec), which the engine fills."""
        converter = type("SpecByHash", (_SpecByHashConverter,),
                         {"specs": specs, "subprocess_specs": subprocess_specs})
        # The Spiff config, not the default one: it must match the SpiffBpmnParser that built the specs.
        registry = BpmnWorkflowSerializer.configure({**SPIFF_CONFIG, BpmnWorkflow: converter})
        self._serializer = BpmnWorkflowSerializer(registry)

    def to_dict(self, workflow: BpmnWorkflow) -> dict:
        """Return the workflow as a JSON-ready dict, stamped with the serializer version."""
        dct = self._serializer.to_dict(workflow)
        # serialize_json stamps it too: a later Spiff can tell which format to migrate from.
        dct[self._serializer.VERSION_KEY] = self._serializer.VERSION
        return dct

    def from_dict(self, dct: dict, spec_hash: str) -> BpmnWorkflow:
        """Rebuild a workflow from ``to_dict``'s output onto the spec cached under ``spec_hash``."""
        return self._serializer.from_dict({**dct, "spec": spec_hash})


# -- reading workflows and tasks ---------------------------------------------------------------


def every_task(workflow: BpmnWorkflow) -> Iterator[Any]:
    """Yield every task of the workflow and its sub-processes, in no particular order.

    Relies on ``workflow.tasks`` (a dict by id of the tasks of one workflow) and
    ``workflow.subprocesses`` (the embedded ones by id); reading them is much cheaper than walking
    the task tree with ``get_tasks``.
    """
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def subprocess_task_id(task: Any) -> UUID | None:
    """Return the id of the sub-process task whose embedded workflow holds ``task``, or None at the top.

    Relies on an embedded sub-process being its own workflow, whose root task has no parent and
    whose ``parent_task_id`` names the sub-process task in the workflow around it.
    """
    return getattr(task.workflow, "parent_task_id", None)


def timer_due(task: Any) -> dt.datetime | None:
    """Return when a timer task is (or was) due, as an aware moment, or None if not yet known.

    Relies on Spiff's private ``event_value`` in the task's internal data: the ISO moment a
    date or duration timer evaluated to, cached when the timer was first checked.
    """
    value = task._get_internal_data("event_value")
    if not isinstance(value, str):
        return None
    try:
        due = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo else due.replace(tzinfo=dt.UTC)


# -- errors ------------------------------------------------------------------------------------


def task_in_traceback(exc: BaseException) -> Any | None:
    """Return the innermost task with a BPMN id that Spiff was working on when ``exc`` was raised.

    Relies on Spiff's frames naming their task ``my_task`` (e.g. a timer's ``has_fired``): a value
    a timer cannot use raises a plain error that carries no task.
    """
    found = None
    tb = exc.__traceback__
    while tb is not None:
        task = tb.tb_frame.f_locals.get("my_task")
        if task is not None and getattr(task.task_spec, "bpmn_id", None):
            found = task
        tb = tb.tb_next
    return found


def error_cause(exc: BaseException) -> BaseException | None:
    """Return the error behind a Spiff exception, e.g. the evaluator's reason for refusing an expression.

    Relies on Spiff raising its own exception inside ``except`` without ``from``: the original
    error is then only the implicit ``__context__``.
    """
    return getattr(exc, "exception", None) or exc.__cause__ or exc.__context__
