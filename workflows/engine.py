"""The one door to SpiffWorkflow: load and validate definitions, start, complete, serialize.

Nothing outside this package imports SpiffWorkflow. Callers hand in a definition (BPMN source
plus content hash) and a serialized state, and get back plain frozen dataclasses.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.user_task import UserTask
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, WorkflowException
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.specs.event_definitions import SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import compat, evaluator

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"

#: XML elements whose text is evaluated by the script engine, with what kind of text it is.
_EVALUATED = {
    f"{{{BPMN_NS}}}conditionExpression": "expression",
    f"{{{BPMN_NS}}}condition": "expression",
    f"{{{SPIFF_NS}}}messagePayload": "expression",
    f"{{{BPMN_NS}}}timeDuration": "expression",
    f"{{{BPMN_NS}}}timeDate": "expression",
    f"{{{BPMN_NS}}}timeCycle": "expression",
    f"{{{BPMN_NS}}}loopCardinality": "expression",
    f"{{{BPMN_NS}}}completionCondition": "expression",
    f"{{{BPMN_NS}}}loopCondition": "expression",
    f"{{{BPMN_NS}}}messagePath": "expression",
    f"{{{BPMN_NS}}}formalExpression": "expression",
    f"{{{SPIFF_NS}}}expression": "expression",  # a message's process-variable correlation
    f"{{{SPIFF_NS}}}payloadExpression": "expression",  # a signal's, error's or escalation's payload
    f"{{{BPMN_NS}}}script": "script",
    f"{{{SPIFF_NS}}}preScript": "script",
    f"{{{SPIFF_NS}}}postScript": "script",
}
#: Any element typed as an expression is checked as one too, wherever it sits (Spiff may evaluate it).
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
#: Spiff evaluates the first child of a retrieval expression, whatever its tag.
_RETRIEVAL = f"{{{BPMN_NS}}}correlationPropertyRetrievalExpression"
_NO_MESSAGES = "GridLoop delivers no BPMN messages"
#: Task specs Spiff leaves READY for a person, by class name, that are not user tasks.
_NOT_A_USER_TASK = {"ManualTask": "manual tasks cannot be completed in GridLoop",
                    "NoneTask": "plain tasks (bpmn:task) cannot be completed in GridLoop"}
_MESSAGE_EVENT = f"{{{BPMN_NS}}}messageEventDefinition"
#: Elements whose behaviour would escape the restricted evaluator or that the tracker cannot run.
_FORBIDDEN_TAGS = {
    f"{{{BPMN_NS}}}serviceTask": "service tasks are not supported",
    f"{{{BPMN_NS}}}businessRuleTask": "business rule tasks are not supported",
    f"{{{BPMN_NS}}}callActivity": "call activities are not supported",
    f"{{{BPMN_NS}}}sendTask": f"send tasks are not supported: {_NO_MESSAGES}, so nothing would receive it",
    f"{{{BPMN_NS}}}receiveTask": f"receive tasks are not supported: {_NO_MESSAGES}, "
                                 "so the case would wait here forever",
    # Reported at the event that holds it: a catch would wait forever, a throw would reach no one.
    _MESSAGE_EVENT: f"message events are not supported: {_NO_MESSAGES}",
    f"{{{BPMN_NS}}}adHocSubProcess": "ad-hoc sub-processes are not supported: GridLoop cannot choose which of "
                                     "their tasks to start",
}


#: Automatic tasks one step may run. A real step runs a few dozen; Spiff's task tree deepens with
#: each one, and past about a thousand levels its iterators stop seeing tasks.
MAX_AUTOMATIC_TASKS = 500


class WorkflowError(Exception):
    """The workflow could not take the requested step (bad data, no matching gateway flow)."""


class TaskNotReady(WorkflowError):
    """The task is not (or no longer) ready: someone else completed it, or the id is wrong."""


@dataclass(frozen=True)
class DefinitionError:
    """One problem found while loading a BPMN file."""

    file_name: str
    element_id: str | None
    problem: str

    def __str__(self) -> str:
        """Render as 'file: element: problem'."""
        return f"{self.file_name}: {self.element_id or '-'}: {self.problem}"


class DefinitionInvalid(Exception):
    """A BPMN file failed validation; ``errors`` says where and why."""

    def __init__(self, errors: list[DefinitionError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class Definition:
    """One deployable version of a process: its BPMN source and content hash."""

    process_id: str
    name: str
    file_name: str
    content_hash: str
    source: str


@dataclass(frozen=True)
class ReadyTask:
    """A user task waiting for a person; ``status`` is its ``status`` property (None in processes naming none)."""

    id: str
    name: str
    title: str
    lane: str | None
    form_key: str
    data: Mapping[str, Any] = field(hash=False, compare=False)
    status: str | None = None


@dataclass(frozen=True)
class FiredTimer:
    """A timer event that fired during a step; ``notice`` is its ``notice`` property, if any."""

    name: str
    title: str
    notice: str | None
    due: dt.datetime | None


@dataclass(frozen=True)
class Snapshot:
    """The state of one workflow after a step: what to store and what is waiting."""

    # zlib-compressed JSON of the workflow without its spec (see decode_state).
    state: bytes
    ready: tuple[ReadyTask, ...]
    completed: bool
    data: Mapping[str, Any] = field(hash=False, compare=False)
    path: tuple[str, ...] = ()
    # Timers that fired during this step, and the earliest moment a waiting timer is due.
    fired: tuple[FiredTimer, ...] = ()
    next_timer: dt.datetime | None = None


@dataclass(frozen=True)
class Trail:
    """The BPMN elements and flows a workflow went through to reach some of its tasks."""

    elements: frozenset[str]
    # (source, target) element ids of consecutive elements on those paths.
    flows: frozenset[tuple[str, str]]


class _RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Evaluate expressions and scripts with GridLoop's restricted evaluator only."""

    def evaluate(self, expression, context, external_context=None):
        """Evaluate a condition or timer expression against task data."""
        names = {**(external_context or {}), **context}
        return evaluator.evaluate(expression, names)

    def execute(self, script, context, external_context=None):
        """Run an assignment-only script, updating task data in place."""
        evaluator.execute(script, context)
        return True

    def call_service(self, context, **kwargs):
        """Refuse service calls: processes may not reach outside the tracker."""
        raise WorkflowError("service calls are not supported")


def encode_state(dct: dict) -> bytes:
    """Compress a serialized workflow: JSON text shrinks about 6x, which matters at millions of cases."""
    return zlib.compress(json.dumps(dct, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 6)


def decode_state(state: bytes) -> dict:
    """Return the serialized workflow stored in ``state`` as a dict (for inspection and export)."""
    return json.loads(zlib.decompress(state))


def content_hash(source: str) -> str:
    """Return the SHA-256 of a definition's source, its version identity."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


class Engine:
    """Parse, validate, run and serialize BPMN processes."""

    def __init__(self, lane_roles: Mapping[str, str], clock: Callable[[], dt.datetime] | None = None):
        """Create an engine that accepts lanes named in ``lane_roles``.

        ``clock`` returns the current aware UTC moment; timers fire when it passes their due time.
        """
        self.lane_roles = dict(lane_roles)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        compat.install_engine_clock()
        self._script_engine = PythonScriptEngine(environment=_RestrictedEnvironment())
        self._specs: dict[str, Any] = {}
        self._subprocess_specs: dict[str, dict[str, Any]] = {}
        self._serializer = compat.SpecCacheSerializer(self._specs, self._subprocess_specs)

    # -- loading -----------------------------------------------------------------------------

    def load_directory(self, path: str | Path) -> tuple[list[Definition], list[DefinitionError]]:
        """Load every ``*.bpmn`` in ``path``; bad files are reported, not fatal."""
        definitions, errors = [], []
        for file in sorted(Path(path).glob("*.bpmn")):
            try:
                definitions.append(self.load_source(file.name, _read_text(file)))
            except DefinitionInvalid as exc:
                errors.extend(exc.errors)
        return definitions, errors

    def load_source(self, file_name: str, source: str) -> Definition:
        """Validate one BPMN file (file name = process id) and return its definition."""
        process_id = Path(file_name).stem
        root = self._parse_xml(file_name, source)
        errors = list(self._check_xml(file_name, root, process_id))
        if errors:
            raise DefinitionInvalid(errors)
        spec, subprocess_specs = self._parse_spec(file_name, root, process_id)
        errors = list(self._check_spec(file_name, [spec, *subprocess_specs.values()]))
        if errors:
            raise DefinitionInvalid(errors)
        definition = Definition(process_id, spec.description or process_id, file_name,
                                content_hash(source), source)
        self._subprocess_specs[definition.content_hash] = subprocess_specs
        self._specs[definition.content_hash] = spec
        return definition

    @staticmethod
    def _parse_xml(file_name: str, source: str) -> etree._Element:
        """Parse the XML with no DTD, entities or network, refusing any DOCTYPE; errors name the line.

        This tree is the one checked and the one SpiffWorkflow builds the spec from, so what was
        checked is what runs (an entity expanded by a second parser could hide an expression).
        """
        data = source.encode("utf-8")
        try:
            root = etree.fromstring(data, etree.XMLParser(**_SAFE_XML))
        except etree.XMLSyntaxError as exc:
            problem = _NO_DTD if _has_doctype(data) else f"malformed XML: {exc}"
            raise DefinitionInvalid([DefinitionError(file_name, None, problem)]) from None
        if _has_doctype(data, root):
            raise DefinitionInvalid([DefinitionError(file_name, None, _NO_DTD)])
        return root

    def _check_xml(self, file_name: str, root: etree._Element, process_id: str) -> Iterable[DefinitionError]:
        """Yield problems visible in the XML: missing process, unsafe text, forbidden tasks."""
        if not root.xpath("//bpmn:process[@id=$pid]", namespaces={"bpmn": BPMN_NS}, pid=process_id):
            yield DefinitionError(file_name, None,
                                  f"no <bpmn:process id=\"{process_id}\"> (the file name must be the process id)")
        for node in root.iter():
            if not isinstance(node.tag, str):
                continue
            if node.tag in _FORBIDDEN_TAGS:
                at = node.getparent() if node.tag == _MESSAGE_EVENT else node
                yield DefinitionError(file_name, _owner_id(at), _FORBIDDEN_TAGS[node.tag])
            kind = _EVALUATED.get(node.tag)
            if kind is None and (str(node.get(_XSI_TYPE, "")).endswith("FormalExpression")
                                 or getattr(node.getparent(), "tag", None) == _RETRIEVAL):
                kind = "expression"
            if kind and (node.text or "").strip():
                problem = self._check_text(kind, node.text)
                if problem:
                    yield DefinitionError(file_name, _owner_id(node), f"unsafe {kind}: {problem}")

    @staticmethod
    def _check_text(kind: str, text: str) -> str | None:
        """Return why an expression or script is refused, or None if it is safe."""
        try:
            if kind == "script":
                evaluator.parse_script(text)
            else:
                evaluator.check_expression(text)
        except evaluator.UnsafeExpression as exc:
            return f"{exc} in {text.strip()!r}"
        return None

    @staticmethod
    def _parse_spec(file_name: str, root: etree._Element, process_id: str) -> tuple[Any, dict[str, Any]]:
        """Build the Spiff spec and its embedded sub-processes' specs from the checked tree.

        Parser errors become DefinitionInvalid.
        """
        parser = SpiffBpmnParser()
        try:
            parser.add_bpmn_xml(root, filename=file_name)
            return parser.get_spec(process_id), parser.get_subprocess_specs(process_id)
        except ValidationException as exc:
            raise DefinitionInvalid([DefinitionError(file_name, exc.id or None, str(exc).splitlines()[0])]) from None
        except SpiffWorkflowException as exc:
            raise DefinitionInvalid([DefinitionError(file_name, None, str(exc))]) from None
        except Exception as exc:  # Spiff trips on shapes it does not expect; one file must not stop the app
            problem = f"SpiffWorkflow cannot parse it: {type(exc).__name__}: {exc}"
            raise DefinitionInvalid([DefinitionError(file_name, None, problem)]) from None

    def _check_spec(self, file_name: str, specs: Iterable[Any]) -> Iterable[DefinitionError]:
        """Yield tasks only a person could finish that are not user tasks, user tasks without a lane,
        lanes that map to no role and user tasks naming no status where others do, in the process and
        its embedded sub-processes."""
        task_specs = [t for spec in specs for t in spec.task_specs.values()]
        yield from _check_statuses(file_name, [t for t in task_specs if isinstance(t, UserTask)])
        for task_spec in task_specs:
            if task_spec.manual and not isinstance(task_spec, UserTask):
                # Spiff reports it READY, waiting for a person, but the tracker completes user tasks only.
                yield DefinitionError(file_name, task_spec.bpmn_id, _NOT_A_USER_TASK.get(
                    type(task_spec).__name__, f"{type(task_spec).__name__} cannot be completed in GridLoop")
                    + ": make it a bpmn:userTask in a lane, or remove it")
            if not isinstance(task_spec, UserTask):
                continue
            if not task_spec.lane:
                yield DefinitionError(file_name, task_spec.name, "user task is not in a lane")
            elif task_spec.lane not in self.lane_roles:
                known = ", ".join(sorted(self.lane_roles)) or "none"
                yield DefinitionError(file_name, task_spec.name,
                                      f"lane '{task_spec.lane}' is not mapped to a role in [lanes] (mapped: {known})")

    def task_statuses(self, definition: Definition) -> dict[str, str | None]:
        """Return the ``status`` property of each user task of a definition by element id (None: names none)."""
        specs = [self._spec(definition), *self._subprocess_specs[definition.content_hash].values()]
        return {t.bpmn_id: _property(t, "status") for spec in specs for t in spec.task_specs.values()
                if isinstance(t, UserTask)}

    # -- running -----------------------------------------------------------------------------

    def start(self, definition: Definition, data: Mapping[str, Any]) -> Snapshot:
        """Start a new workflow with ``data`` and run until people are needed."""
        with self._at(None):
            spec = self._spec(definition)
            workflow = BpmnWorkflow(spec, self._subprocess_specs[definition.content_hash],
                                    script_engine=self._script_engine)
            start = next(t for t in workflow.get_tasks(state=TaskState.READY))
            start.data.update(copy.deepcopy(dict(data)))
            before = _finished_timers(workflow)
            self._step(workflow)
            return self._snapshot(definition, workflow, before)

    def complete_task(self, definition: Definition, state: bytes, task_id: str,
                      data: Mapping[str, Any]) -> Snapshot:
        """Complete a ready user task with ``data`` and run until people are needed."""
        with self._at(None):
            workflow = self._restore(definition, state)
            task = self._ready_task(workflow, task_id)
            before = _finished_timers(workflow)
            task.data.update(copy.deepcopy(dict(data)))
            try:
                task.run()
            except SpiffWorkflowException as exc:
                raise WorkflowError(_message(exc)) from None
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                raise WorkflowError(_bad_value(exc)) from None
            self._step(workflow)
            return self._snapshot(definition, workflow, before)

    def fire_timers(self, definition: Definition, state: bytes, now: dt.datetime | None = None) -> Snapshot:
        """Fire every timer due at ``now`` (default: the engine's clock) and run on.

        Firing is a pure function of the stored state and the moment: the caller stores the
        returned state in the same transaction that consumes the timer, so it fires exactly once.
        """
        with self._at(now):
            workflow = self._restore(definition, state)
            before = _finished_timers(workflow)
            self._step(workflow)
            return self._snapshot(definition, workflow, before)

    def send_signal(self, definition: Definition, state: bytes, name: str) -> Snapshot | None:
        """Deliver the signal ``name`` from outside (something the tracker saw happen) and run on.

        Returns None, changing nothing, when nothing in the workflow waits for that signal now (say,
        a case on a version of the process that does not model it).
        """
        with self._at(None):
            workflow = self._restore(definition, state)
            before = _finished_timers(workflow)
            try:
                workflow.send_event(BpmnEvent(SignalEventDefinition(name)))
            except WorkflowException:  # "This process is not waiting for ..."
                return None
            self._step(workflow)
            return self._snapshot(definition, workflow, before)

    def snapshot(self, definition: Definition, state: bytes) -> Snapshot:
        """Describe a stored workflow without changing it."""
        with self._at(None):
            workflow = self._restore(definition, state)
            return self._snapshot(definition, workflow, _finished_timers(workflow))

    def trail(self, definition: Definition, state: bytes, task_ids: Iterable[str]) -> Trail:
        """Return the elements and flows on the paths from the start to each task; unknown ids are ignored.

        Paths follow the Spiff task tree, which keeps finished tasks, so a task reached again after
        a reopen has its own path; internal specs without a BPMN id (Start, boundary splits) are skipped.
        """
        workflow = self._restore(definition, state)
        elements: set[str] = set()
        flows: set[tuple[str, str]] = set()
        for task_id in task_ids:
            try:
                task = workflow.get_task_from_id(UUID(task_id))
            except (ValueError, TypeError, SpiffWorkflowException):
                continue
            after = None
            while task is not None:
                bpmn_id = getattr(task.task_spec, "bpmn_id", None)
                if bpmn_id:
                    elements.add(bpmn_id)
                    if after is not None:
                        flows.add((bpmn_id, after))
                    after = bpmn_id
                outer = compat.subprocess_task_id(task) if task.parent is None else None
                if outer is not None:
                    # The root of an embedded sub-process: go on from the sub-process element outside it.
                    task, after = workflow.get_task_from_id(outer), None
                else:
                    task = task.parent
        return Trail(frozenset(elements), frozenset(flows))

    # -- internals ---------------------------------------------------------------------------

    def _spec(self, definition: Definition) -> Any:
        """Return the parsed spec for a definition version, parsing it once."""
        spec = self._specs.get(definition.content_hash)
        if spec is None:
            self.load_source(definition.file_name, definition.source)
            spec = self._specs[definition.content_hash]
        return spec

    @contextmanager
    def _at(self, now: dt.datetime | None) -> Iterator[None]:
        """Run the enclosed step with Spiff's timers seeing ``now`` (default: the engine's clock)."""
        with compat.engine_now(now or self.clock()):
            yield

    def _step(self, workflow: BpmnWorkflow) -> None:
        """Run engine steps, and the branches of any timers that came due, until people are needed."""
        ran = 0

        def count(task: Any) -> None:
            """Stop a loop of automatic tasks (scripts, gateways) that never waits for a person or a timer."""
            nonlocal ran
            ran += 1
            if ran > MAX_AUTOMATIC_TASKS:
                raise WorkflowError(f"{task.task_spec.bpmn_id or task.task_spec.name}: more than {MAX_AUTOMATIC_TASKS} "
                                    "automatic steps without waiting for a person or a timer (a loop of scripts "
                                    "and gateways?)")

        try:
            workflow.do_engine_steps(will_complete_task=count)
            # do_engine_steps ends by refreshing timers: one that came due is READY but not run yet.
            for _ in range(20):
                if not any(t.state == TaskState.READY and not t.task_spec.manual for t in compat.every_task(workflow)):
                    break
                workflow.do_engine_steps(will_complete_task=count)
        except SpiffWorkflowException as exc:
            raise WorkflowError(_message(exc)) from None
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise WorkflowError(_bad_value(exc)) from None

    def _restore(self, definition: Definition, state: bytes) -> BpmnWorkflow:
        """Deserialize stored state onto the definition's spec."""
        try:
            dct = decode_state(state)
        except (zlib.error, ValueError, TypeError) as exc:
            raise WorkflowError(f"stored workflow state is unreadable: {exc}") from None
        self._spec(definition)  # parse this version once, if no case on it was loaded yet
        try:
            workflow = self._serializer.from_dict(dct, definition.content_hash)
        except (KeyError, ValueError, TypeError) as exc:
            raise WorkflowError(f"stored workflow state does not fit its definition: {exc}") from None
        workflow.script_engine = self._script_engine
        return workflow

    def _serialize(self, workflow: BpmnWorkflow) -> bytes:
        """Serialize the workflow without its spec (the spec lives with the definition)."""
        return encode_state(self._serializer.to_dict(workflow))

    @staticmethod
    def _ready_task(workflow: BpmnWorkflow, task_id: str) -> Any:
        """Find a READY user task by id or raise TaskNotReady."""
        try:
            task = workflow.get_task_from_id(UUID(task_id))
        except (ValueError, KeyError, SpiffWorkflowException):
            task = None
        if task is None or task.state != TaskState.READY or not isinstance(task.task_spec, UserTask):
            raise TaskNotReady(f"task {task_id} is not waiting for input")
        return task

    def _snapshot(self, definition: Definition, workflow: BpmnWorkflow, finished_before: set[UUID]) -> Snapshot:
        """Build the plain snapshot of a workflow."""
        tasks = workflow.get_tasks()  # one walk of the task tree for everything below
        ready = tuple(_ready(t) for t in tasks if t.state == TaskState.READY and t.task_spec.manual)
        completed = workflow.is_completed()
        if completed:
            data = dict(workflow.data)
        elif ready:
            data = dict(ready[0].data)
        else:
            data = {}
        path = tuple(t.task_spec.bpmn_id for t in tasks
                     if t.state == TaskState.COMPLETED and getattr(t.task_spec, "bpmn_id", None))
        fired, due_times = [], []
        for task in _timer_tasks(tasks):
            due = compat.timer_due(task)
            if task.state == TaskState.COMPLETED and task.id not in finished_before:
                spec = task.task_spec
                fired.append(FiredTimer(spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, _property(spec, "notice"), due))
            elif task.state == TaskState.WAITING and due is not None:
                due_times.append(due)
        return Snapshot(self._serialize(workflow), ready, completed, data, path, tuple(fired),
                        min(due_times, default=None))


def _ready(task: Any) -> ReadyTask:
    """Convert a Spiff task into a plain ReadyTask."""
    spec = task.task_spec
    form_key = _property(spec, "formKey")
    return ReadyTask(str(task.id), spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, spec.lane,
                     spec.bpmn_id if form_key is None else form_key, copy.deepcopy(task.data),
                     _property(spec, "status"))


def _property(spec: Any, name: str) -> str | None:
    """Return a task spec's spiffworkflow property ``name``, or None."""
    return (spec.extensions or {}).get("properties", {}).get(name)


def _check_statuses(file_name: str, user_tasks: list[Any]) -> Iterable[DefinitionError]:
    """Yield the user tasks naming no status in a process whose other user tasks name theirs.

    A process either leaves its tasks' statuses to the application (older case versions did) or
    names one on every user task: a task naming none would leave the case in its previous status.
    """
    if not any(_property(t, "status") is not None for t in user_tasks):
        return
    for task_spec in user_tasks:
        if not (_property(task_spec, "status") or "").strip():
            yield DefinitionError(file_name, task_spec.bpmn_id, "user task names no status while other user tasks "
                                  "of the process do: add <spiffworkflow:property name=\"status\" value=\"...\" />")


def _timer_tasks(tasks: Iterable[Any]) -> list[Any]:
    """Return the timer event tasks among ``tasks``, in any state."""
    return [t for t in tasks if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)]


def _finished_timers(workflow: BpmnWorkflow) -> set[UUID]:
    """Return the ids of timer tasks already finished (so a step reports only what it fired)."""
    return {t.id for t in _timer_tasks(compat.every_task(workflow)) if t.state & TaskState.FINISHED_MASK}


#: lxml settings for BPMN: no DTD loaded, no entity expanded, nothing fetched, default size limits.
_SAFE_XML = {"resolve_entities": False, "no_network": True, "load_dtd": False, "dtd_validation": False,
             "huge_tree": False}
_NO_DTD = ("DTDs and entity declarations are not allowed in BPMN files "
           "(remove the <!DOCTYPE ...> and any &entity; references)")


def _has_doctype(data: bytes, root: etree._Element | None = None) -> bool:
    """Tell whether a document declares a DOCTYPE (internal subset, external DTD or bare).

    Given no parsed root (the strict parse failed, e.g. on an undefined entity), a forgiving parse
    with the same safe settings looks for one.
    """
    if root is None:
        try:
            root = etree.fromstring(data, etree.XMLParser(recover=True, **_SAFE_XML))
        except etree.XMLSyntaxError:  # nothing recoverable (an empty file)
            return False
        if root is None:
            return False
    info = root.getroottree().docinfo
    return bool(info.doctype) or info.internalDTD is not None or info.externalDTD is not None


def _read_text(file: Path) -> str:
    """Read a BPMN file as UTF-8, refusing other encodings with a DefinitionInvalid."""
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionInvalid([DefinitionError(file.name, None, f"not UTF-8 text: {exc}")]) from None
    except OSError as exc:
        raise DefinitionInvalid([DefinitionError(file.name, None, f"cannot be read: {exc}")]) from None


def _owner_id(node: etree._Element) -> str | None:
    """Return the id of the nearest element that owns ``node``."""
    while node is not None:
        if node.get("id"):
            return node.get("id")
        node = node.getparent()
    return None


def _bad_value(exc: Exception) -> str:
    """Explain a value a step could not use (e.g. a timer moment that is not a date), naming the element."""
    text = f"{type(exc).__name__}: {exc}"
    task = compat.task_in_traceback(exc)  # the plain error carries no task; Spiff's frames know it
    if task is None:
        return text
    expression = getattr(getattr(task.task_spec, "event_definition", None), "expression", None)
    if expression:
        text = f"timer expression {expression!r} did not give an ISO date-time ({text})"
    return f"{task.task_spec.bpmn_id}: {text}"


def _message(exc: Exception) -> str:
    """Summarize an engine exception in one line, with the element it happened at."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    cause = compat.error_cause(exc)  # say, the evaluator's "result too large"
    if cause is not None and str(cause) not in text:
        text = f"{text.rstrip('. ')}: {type(cause).__name__}: {cause}"
    task = getattr(exc, "task", None)
    where = getattr(getattr(task, "task_spec", None), "bpmn_id", None)
    return f"{where}: {text}" if where else text
