"""Open cases, complete and claim tasks: every change to a case goes through here."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from workflows import ReadyTask, Snapshot, TaskNotReady, WorkflowError

from .. import deadlines
from ..codes import DOOR_CHANNELS, ArchiveDecision, DeadlineClass, DispatchTo, Disposition, Door, HandleAction, Urgency
from ..errors import N_, ConflictError, InvalidInput
from ..models import ApiToken, Building, Case, CaseStatus, Department, Role, Task, TaskStatus, User, utcnow
from ..permissions import Permission, PermissionDenied, can, grid_ids, holds_role, in_lane, require
from . import Services, assign, notices, timers
from .audit import AUDITED, audited_fields, record_event
from .commands import (
    Callback,
    Dispatch,
    Handle,
    Recall,
    RecordCase,
    RecordReply,
    ReviewArchive,
    ReviewExtension,
    Supervise,
    TaskCommand,
)
from .definitions import as_definition, current_definition
from .locks import check_fresh, flush, get_task, hold_new, lock_task

#: The signal a process catches when its case is signed for (签收); older versions catch none.
SIGNED_FOR = "signed_for"
#: The signal a process catches when a leader recalls (撤回) a referred case; older versions catch none.
RECALLED = "recalled"

#: Case status while a given user task waits, for cases still running on a definition deployed before
#: user tasks named their status in the BPMN (case_closed_loop as of commit 3c4cf86): its tasks name
#: none. Every definition loaded since names one on each user task (definitions.check_statuses).
LEGACY_STATUS_BY_TASK = {
    "record_reply": CaseStatus.RECORDING,
    "dispatch": CaseStatus.DISPATCHING,
    "handle_member": CaseStatus.HANDLING,
    "handle_department": CaseStatus.HANDLING,
    "review_extension": CaseStatus.EXTENSION_REVIEW,
    "callback": CaseStatus.CALLBACK,
    "review_archive": CaseStatus.ARCHIVE_REVIEW,
}


#: Called as ``hook(svc, case)`` after a task of the case was completed (services.duplicates registers one:
#: a main case just handled sends its result on to its duplicates).
AFTER_COMPLETE: list[Callable[[Services, Case], None]] = []


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Return field -> (old, new) for fields that changed."""
    return {k: (before.get(k), after[k]) for k in after if before.get(k) != after[k]}


def open_case(svc: Services, actor: User, intake: RecordCase, door: Door = Door.WEB) -> Case:
    """Record a new case in the building's grid and start its closed loop.

    ``door`` is the adapter that built the intake (web page, JSON API, Open311): recorded by the
    system, never read from the input.
    """
    building = svc.session.get(Building, intake.building_id, options=[joinedload(Building.grid)])
    if building is None:
        raise InvalidInput(N_("Building not found; choose one from the list."), field="building_id")
    if door == Door.PUBLIC:
        # The public resident form records as its own system account (services.public), in any grid; no
        # one else may use that door, and that account no other.
        if actor.username != svc.config.get("public", {}).get("recorder", "public_form"):
            raise PermissionDenied(f"{actor.username} may not record through the public door")
    elif actor.username == svc.config.get("public", {}).get("recorder", "public_form"):
        raise PermissionDenied(f"{actor.username} records only through the public door")
    else:
        if not can(actor, Permission.CASE_CREATE, building.grid) \
                and grid_ids(actor, Role.GRID_MEMBER, Role.GRID_LEADER):
            # Grid staff who picked a building of another grid: say which to pick (others are simply refused).
            raise InvalidInput(N_("Choose one of the buildings of your grids."), field="building_id")
        require(actor, Permission.CASE_CREATE, building.grid)
    if intake.category not in svc.config["categories"]:
        raise InvalidInput(N_("Unknown category %(code)s; choose one from the list."), field="category",
                           code=intake.category)
    if DOOR_CHANNELS.get(intake.channel, door) != door:
        raise InvalidInput(N_("The channel %(code)s is recorded by the system for requests that really came in "
                              "through it; choose how the resident reached you (phone, walk-in, …)."),
                           field="channel", code=intake.channel)
    row = current_definition(svc.session, dict(svc.definitions), svc.config["app"]["case_process"])
    now = utcnow()
    case = Case(number=f"tmp-{now.timestamp()}-{actor.id}", grid_id=building.grid_id, building_id=building.id,
                resident_name=intake.resident_name, resident_phone=intake.resident_phone,
                address_detail=intake.address_detail, resident_email=intake.resident_email,
                latitude=intake.latitude, longitude=intake.longitude, media_url=intake.media_url,
                category=intake.category,
                description=intake.description, channel=intake.channel, urgency=intake.urgency,
                green_channel=intake.green_channel, intake=door, status=CaseStatus.RECORDING,
                created_by_id=actor.id,
                created_at=now, definition_id=row.id, workflow_state=b"", version=1)
    case.created_by, case.building, case.grid = actor, building, building.grid  # held: the answer names them
    svc.session.add(case)
    svc.session.flush()
    hold_new(svc.session, case)
    local_day = now.astimezone(ZoneInfo(svc.config["app"].get("timezone", "Asia/Shanghai")))
    case.number = f"{local_day:%Y%m%d}-{case.id:06d}"
    start_data = {"reopen_count": 0, "callback_attempts": 0, "dispatch_to": "",
                  "max_callback_attempts": svc.config["loop"]["max_callback_attempts"]}
    snapshot = svc.engine.start(as_definition(row), start_data)
    _apply(svc, case, actor, snapshot, completed_task=None)
    record_event(svc.session, case, actor, "case.opened",
                 {k: (None, v) for k, v in audited_fields(case).items() if v not in (None, "", 0)})
    if intake.answered_on_spot is not None:
        task = next(t for t in case.tasks if t.status == TaskStatus.OPEN and t.form_key == "record_reply")
        settled = RecordReply(disposition=Disposition.ON_SPOT if intake.answered_on_spot else Disposition.DISPATCH,
                              reply=intake.reply)
        complete_task(svc, actor, task.id, case.version, settled, recording=True)
    else:
        flush(svc.session)  # left for the grid: the case and its first task are written as they stand
    return case


def publish_open311_cases(session, program: User) -> list[Case]:
    """Mark the cases ``program`` filed through Open311 before doors were recorded as Open311's (public).

    Only cases with the channel "Open311 app", recorded by this account, still private; each change is
    an event on the case's chain. Run it for the accounts Open311 apps really used, never for staff.
    """
    if session.scalar(select(ApiToken.id).where(ApiToken.user_id == program.id).limit(1)) is None:
        raise InvalidInput(N_("%(name)s never had an API token: Open311 apps file with one, so none of its cases "
                              "came in through Open311."), name=program.username)
    cases = session.scalars(select(Case).where(Case.created_by_id == program.id, Case.channel == "open311",
                                               Case.intake == Door.WEB).order_by(Case.id)).all()
    for case in cases:
        case.intake = Door.OPEN311
        record_event(session, case, None, "case.intake_corrected", {"intake": (Door.WEB, Door.OPEN311)})
    session.flush()
    return list(cases)


def complete_task(svc: Services, actor: User, task_id: str, expected_version: int,
                  command: TaskCommand, *, recording: bool = False) -> Case:
    """Complete a user task with its command, advance the loop and record who did it.

    ``recording``: the intake itself settles the record-and-reply step, which the recorder (a member
    or a leader of the grid, already checked by ``open_case``) may do whatever the step's lane.
    """
    task = lock_task(svc, task_id)
    # Everything below reads what the lock loaded; one flush at the end writes it all (no autoflush
    # halfway: a stale version surfaces there, as a conflict).
    with svc.session.no_autoflush:
        case = task.case
        require(actor, Permission.TASK_READ, task)
        check_fresh(case, task, expected_version)
        if not (recording and task.form_key == "record_reply" and case.created_by_id == actor.id):
            require(actor, Permission.TASK_COMPLETE, task)
        kind = TASKS[task.form_key]
        if not isinstance(command, kind.command):
            raise InvalidInput(N_("This task (%(form)s) takes other data."), form=task.form_key)
        before = audited_fields(case)
        data = command.workflow_data()
        workflow_data = kind.apply(svc, case, actor, command)
        try:
            snapshot = svc.engine.complete_task(as_definition(case.definition), case.workflow_state,
                                                task.id, workflow_data)
        except TaskNotReady:
            raise ConflictError(N_("This task was already completed by someone else; reload the case.")) from None
        except WorkflowError as exc:
            raise InvalidInput(N_("The process could not continue: %(problem)s"), problem=str(exc)) from None
        if snapshot.completed and workflow_data.get("archive_decision") == ArchiveDecision.REWORK:
            # A case on a process version from before rework existed would be archived instead.
            raise InvalidInput(N_("This case runs on an older version of the process, which cannot send it back "
                                  "for rework; archive it, or record a new case."), field="archive_decision")
        task.status = TaskStatus.DONE
        task.completed_at = utcnow()
        task.completed_by_id = actor.id
        case.version += 1
        _apply(svc, case, actor, snapshot, completed_task=task)
        record_event(svc.session, case, actor, f"task.{task.form_key}", {
            **{f"form.{k}": (None, v) for k, v in data.items() if v not in (None, "") and k not in AUDITED},
            **_diff(before, audited_fields(case)),
            **_cover_changes(svc, case),
        }, task_name=task.name)
    flush(svc.session)
    for hook in AFTER_COMPLETE:
        hook(svc, case)
    return case


def claim_task(svc: Services, actor: User, task_id: str, expected_version: int) -> Task:
    """Take a pool task into the actor's own inbox."""
    task = lock_task(svc, task_id)
    require(actor, Permission.TASK_READ, task)
    check_fresh(task.case, task, expected_version)
    if not in_lane(actor, task) or actor.is_program:  # a program takes no task: it is no person
        raise PermissionDenied(f"{actor.username} does not work in the lane of task {task.name}")
    if task.assignee_id is not None and task.assignee_id != actor.id:
        raise ConflictError(N_("This task was already claimed by %(who)s; reload the page."),
                            who=task.assignee.display_name)
    require(actor, Permission.TASK_CLAIM, task)
    task.assignee_id = actor.id
    case = task.case
    case.updated_at = utcnow()
    case.version += 1
    changes: dict[str, tuple[Any, Any]] = {"assignee": (None, actor.display_name)}
    # Taking a handling task from the pool is signing for it (签收).
    if task.form_key == "handle" and _sign(case):
        changes["signed_at"] = (None, case.signed_at)
        _tell_signed(svc, case, actor)
    record_event(svc.session, case, actor, "task.claimed", changes, task_name=task.name)
    flush(svc.session)
    return task


def sign_for(svc: Services, actor: User, task_id: str, expected_version: int) -> Case:
    """Sign for (签收) a handling task: the handler confirms the case reached them."""
    task = lock_task(svc, task_id)
    case = task.case
    require(actor, Permission.TASK_READ, task)
    check_fresh(case, task, expected_version)
    require(actor, Permission.TASK_COMPLETE, task)
    if task.form_key != "handle":
        raise InvalidInput(N_("Only a handling task is signed for."))
    if not _sign(case):
        raise ConflictError(N_("This case was already signed for; reload the case."))
    _tell_signed(svc, case, actor)
    case.updated_at = case.signed_at
    case.version += 1
    if task.assignee_id is None:
        task.assignee_id = actor.id
    record_event(svc.session, case, actor, "task.signed", {"signed_at": (None, case.signed_at)},
                 task_name=task.name)
    flush(svc.session)
    return case


def _sign(case: Case) -> bool:
    """Mark the case signed for (签收) now; return False if it already was in this handling period."""
    if case.signed_at is not None:
        return False
    case.signed_at = utcnow()
    return True


def _tell_signed(svc: Services, case: Case, actor: User) -> None:
    """Tell the process the case was signed for: it catches that on its handling (older versions do not)."""
    snapshot = svc.engine.send_signal(as_definition(case.definition), case.workflow_state, SIGNED_FOR)
    if snapshot is not None:
        _apply(svc, case, actor, snapshot, completed_task=None)


def fire_timers(svc: Services, case: Case, now: dt.datetime) -> int:
    """Fire the case's due workflow timers as of ``now`` (the scheduler holds the case's lock)."""
    snapshot = svc.engine.fire_timers(as_definition(case.definition), case.workflow_state, now)
    _apply(svc, case, None, snapshot, completed_task=None)
    return len(snapshot.fired)


def _apply(svc: Services, case: Case, actor: User | None, snapshot: Snapshot, completed_task: Task | None) -> None:
    """Store the new workflow state, project ready tasks onto task rows, and keep the timer row."""
    case.workflow_state = snapshot.state
    case.updated_at = utcnow()
    _follow_reopen(svc, case, snapshot)
    case.reopen_count = int(snapshot.data.get("reopen_count", case.reopen_count) or 0)
    case.callback_attempts = int(snapshot.data.get("callback_attempts", case.callback_attempts) or 0)
    open_tasks = {t.id: t for t in case.tasks if t.status == TaskStatus.OPEN}
    ready_ids = {r.id for r in snapshot.ready}
    for task_id, task in open_tasks.items():
        if task_id not in ready_ids and task is not completed_task:
            task.status = TaskStatus.DONE
            task.completed_at = utcnow()
    for ready in snapshot.ready:
        if ready.id not in open_tasks:
            case.tasks.append(_project(svc, case, actor, ready))
    if snapshot.completed:
        case.status = CaseStatus.ARCHIVED
        case.archived_at = utcnow()
    elif (status := _status(snapshot)) is not None:
        case.status = status
    timers.sync(svc.session, snapshot.next_timer, case=case)
    if snapshot.fired:
        notices.on_fired(svc, case, snapshot.fired)


def _status(snapshot: Snapshot) -> CaseStatus | None:
    """Return the status the process gives the case while its ready tasks wait (None: it stays as it is).

    Each user task names its status in the BPMN; tasks waiting side by side (handling and its
    supervision) name the same one.
    """
    for ready in snapshot.ready:
        status = ready.status or LEGACY_STATUS_BY_TASK.get(ready.name)
        if status is not None:
            return CaseStatus(status)
    return None


def _follow_reopen(svc: Services, case: Case, snapshot: Snapshot) -> None:
    """Start a new handling period on the case when the process reopened it (重办) into handling.

    The process alone decides whether a callback reopens the case, and where to; the callback handed
    in the moments of the period a reopen would start (``_callback``), which its timers now run on.
    """
    reopened = int(snapshot.data.get("reopen_count", 0) or 0) > case.reopen_count
    if not reopened or _status(snapshot) != CaseStatus.HANDLING:
        return
    names = ("sign_for_at", "remind_at", "due_at", "escalate_at")
    moments = {name: dt.datetime.fromisoformat(snapshot.data[name]) for name in names}
    case.signed_at = None
    _set_plan(svc, case, deadlines.DeadlinePlan(start=utcnow(), **moments))


def _project(svc: Services, case: Case, actor: User | None, ready: ReadyTask) -> Task:
    """Create the task row for a ready user task, with its lane role, scope and assignee."""
    role = Role(svc.config["lanes"][ready.lane])
    assignee_id = None
    due = None
    if ready.form_key == "handle":
        due = case.due_at
        if role == Role.GRID_MEMBER:
            assignee_id = case.handler_id
    elif ready.form_key == "record_reply" and actor is not None and not actor.is_program \
            and holds_role(actor, Role.GRID_MEMBER, grid_id=case.grid_id):
        assignee_id = actor.id
    elif ready.form_key == "callback" and case.channel not in DOOR_CHANNELS \
            and not (recorder := _recorder(svc, case)).is_program \
            and holds_role(recorder, Role.GRID_MEMBER, grid_id=case.grid_id):
        # The member who recorded the request follows it up with the resident (a program's account
        # cannot phone anyone: its cases' callbacks wait in the grid's pool).
        assignee_id = case.created_by_id
        if assignee_id == case.handler_id and svc.config["loop"].get("callback_by_other_member", True):
            # Whoever handled the case does not ask the resident whether they are satisfied with it.
            assignee_id = _other_member(svc, case) or assignee_id
    task = Task(id=ready.id, name=ready.name, title=ready.title, form_key=ready.form_key, lane=ready.lane,
                role=role, grid_id=case.grid_id,
                department_id=case.department_id if role == Role.DEPARTMENT_HANDLER else None,
                assignee_id=assignee_id, status=TaskStatus.OPEN, due_at=due, created_at=utcnow())
    if assignee_id is not None and role == Role.GRID_MEMBER and (actor is None or assignee_id != actor.id):
        # Stand-in cover (代班): new work for an absent member goes to their stand-in.
        covering = assign.stand_in(svc.session, assignee_id, case.grid_id, assign.local_today(svc))
        if covering != assignee_id:
            task.assignee_id = covering
            task.covered_for = assignee_id  # not stored: the audit event names the stand-in
    return task


def _other_member(svc: Services, case: Case) -> int | None:
    """Return the member of the case's grid, other than its handler, with the fewest open tasks (None: none)."""
    from ..queries.places import members_of
    from ..queries.work import open_counts
    others = [u.id for u in members_of(svc.session, case.grid_id) if u.id != case.handler_id and u.active]
    if not others:
        return None
    counts = open_counts(svc.session, others, utcnow())
    return min(others, key=lambda uid: (counts.get(uid, (0, 0))[0], uid))


def _recorder(svc: Services, case: Case) -> User:
    """Return who recorded the case, roles loaded, in the query that asks who stands in for them today."""
    return assign.member_and_taker(svc.session, case.created_by_id, case.grid_id, assign.local_today(svc))[0]


def _cover_changes(svc: Services, case: Case) -> dict[str, tuple[Any, Any]]:
    """Return the audit change naming the stand-in for tasks just opened under a cover."""
    for task in case.tasks:
        if covered_for := getattr(task, "covered_for", None):
            del task.covered_for  # said once, by the event that opened the task
            names = dict(svc.session.execute(select(User.id, User.display_name)
                                             .where(User.id.in_((covered_for, task.assignee_id)))).all())
            return {"stand_in": (names.get(covered_for), names.get(task.assignee_id))}
    return {}


# -- what each task's command does to the case, returning the data the workflow needs --------------

def _record_reply(svc: Services, case: Case, actor: User, command: RecordReply) -> dict:
    """Store the reply; the process branches on whether it settled the request."""
    case.reply = command.reply
    return {"answered_on_spot": command.disposition == Disposition.ON_SPOT}


def _dispatch(svc: Services, case: Case, actor: User, command: Dispatch) -> dict:
    """Send the case to a member of its grid or refer it to a department, with a deadline."""
    if command.dispatch_to == DispatchTo.MEMBER:
        # Who stands in for the handler comes with them: projecting the handling task asks next.
        handler, taker = assign.member_and_taker(svc.session, command.handler_id or 0, case.grid_id,
                                                 assign.local_today(svc))
        if handler is None or handler.is_program or not holds_role(handler, Role.GRID_MEMBER, grid_id=case.grid_id):
            raise InvalidInput(N_("Choose a grid member of this case's grid."), field="handler_id")
        case.handler_id, case.department_id = handler.id, None
        case.handler, case.department = handler, None  # the case may have them loaded (locks.lock_task)
    else:
        department = svc.session.get(Department, command.department_id or 0)
        if department is None:
            raise InvalidInput(N_("Choose the department to refer it to."), field="department_id")
        case.department_id, case.handler_id = department.id, None
        case.department, case.handler = department, None
    period = _new_period(svc, case, command.deadline_class)
    notices.new_task(svc.session, case, actor, [taker] if command.dispatch_to == DispatchTo.MEMBER else None)
    case.dispatch_to = command.dispatch_to
    case.deadline_class = command.deadline_class
    case.extension_days = 0
    return {"dispatch_to": str(command.dispatch_to), **period}


def _new_period(svc: Services, case: Case, deadline_class: str) -> dict[str, str]:
    """Start a handling period now (dispatch): its limit, its timers, not yet signed for."""
    case.signed_at = None
    return _set_plan(svc, case, _period_plan(svc, case, deadline_class))


def _period_plan(svc: Services, case: Case, deadline_class: str) -> deadlines.DeadlinePlan:
    """Return the moments of a handling period of ``deadline_class`` starting now."""
    now = utcnow()
    due = deadlines.handling_due(svc.config["deadlines"], svc.calendar, deadline_class, now, bool(case.green_channel))
    return deadlines.plan(svc.config["deadlines"], svc.calendar, now, due)


def _set_plan(svc: Services, case: Case, plan: deadlines.DeadlinePlan) -> dict[str, str]:
    """Put a handling period's moments on the case and return them as workflow data for the timers."""
    case.dispatched_at, case.sign_for_at, case.remind_at = plan.start, plan.sign_for_at, plan.remind_at
    case.due_at, case.escalate_at = plan.due_at, plan.escalate_at
    return plan.as_workflow_data()


def _handle(svc: Services, case: Case, actor: User, command: Handle) -> dict:
    """Record the handling result, a return with its reason, or an extension request."""
    _sign(case)
    if command.handle_action == HandleAction.DONE:
        case.result = command.text
    elif command.handle_action == HandleAction.EXTEND:
        case.extension_days = command.extension_days or 0
    return {"handle_action": str(command.handle_action)}


def _review_extension(svc: Services, case: Case, actor: User, command: ReviewExtension) -> dict:
    """Approve (move the deadline) or refuse the requested extension."""
    approved = command.workflow_data()["extension_approved"]
    moved: dict[str, str] = {}
    if approved and case.due_at is not None:
        # The limit moves by working days; the reminder and escalation move with it (timers re-arm).
        plan = deadlines.extend(svc.config["deadlines"], svc.calendar, case.dispatched_at or utcnow(),
                                case.due_at, case.extension_days)
        # The sign-for limit belongs to the dispatch and stays where it was.
        moved = _set_plan(svc, case, dataclasses.replace(plan, sign_for_at=case.sign_for_at or plan.sign_for_at))
    case.extension_days = 0
    return {"extension_approved": approved, **moved}


def _callback(svc: Services, case: Case, actor: User, command: Callback) -> dict:
    """Record the resident's answer; the process decides whether it reopens (重办), retries or archives."""
    case.outcome = command.satisfaction
    answer = {"satisfaction": str(command.satisfaction)}
    if not case.deadline_class:  # never dispatched: a reopen goes to dispatch, which sets the period
        return answer
    # Should the process reopen it to its handler, a period of the same class starts now (_follow_reopen).
    return {**answer, **_period_plan(svc, case, case.deadline_class).as_workflow_data()}


def _supervise(svc: Services, case: Case, actor: User, command: Supervise) -> dict:
    """Record the leader's or street office's supervision opinion and send it to the handler."""
    recipients = notices.handlers_of(svc.session, case)
    if holds_role(actor, Role.STREET_OFFICE, community_id=case.grid.community_id):
        recipients += notices.leaders_of(svc.session, case.grid_id)
    notices.notify(svc.session, [r for r in recipients if r != actor.id], "supervision_note", case=case,
                   number=case.number, note=command.note, by=actor.display_name)
    return {}


def _review_archive(svc: Services, case: Case, actor: User, command: ReviewArchive) -> dict:
    """Archive the reviewed record (read-only afterwards), or send it back for rework (退回重办).

    Rework goes to the same handler with a new handling period of the case's class (the process decides
    the path: back to handling, or to dispatch for a case answered on the spot); the handler is told why.
    """
    if command.archive_decision != ArchiveDecision.REWORK:
        return {"archive_decision": str(ArchiveDecision.ARCHIVE)}
    data: dict[str, Any] = {"archive_decision": str(ArchiveDecision.REWORK)}
    recipients = notices.handlers_of(svc.session, case) if case.deadline_class else []
    notices.notify(svc.session, [r for r in recipients if r != actor.id], "rework", case=case,
                   number=case.number, by=actor.display_name, reason=command.comment)
    if case.deadline_class:
        data.update(_new_period(svc, case, case.deadline_class))
    return data


def extended_due(svc: Services, case: Case) -> dt.datetime | None:
    """Return the limit the case would have if its requested extension is approved (None: nothing asked)."""
    if case.due_at is None or not case.extension_days:
        return None
    return svc.calendar.add_working_days(case.due_at, case.extension_days)


def propose_deadline_class(config: Mapping[str, Any], case: Case) -> DeadlineClass:
    """Return the time limit the dispatch form proposes: by urgency, else by category (``[dispatch]``)."""
    if case.urgency == Urgency.EMERGENCY:
        return DeadlineClass.EMERGENCY
    by_category = config.get("dispatch", {}).get("deadline_classes", {})
    proposed = DeadlineClass(by_category.get(case.category, DeadlineClass.GENERAL))
    if case.urgency == Urgency.URGENT and proposed in (DeadlineClass.GENERAL, DeadlineClass.COMPLEX):
        return DeadlineClass.UTILITIES  # urgent: within 24 hours rather than days
    return proposed


def suggested_department_code(config: Mapping[str, Any], category: str) -> str | None:
    """Return the code of the department ``[dispatch] departments`` maps the category to, if any."""
    return config.get("dispatch", {}).get("departments", {}).get(category)


def recall_case(svc: Services, actor: User, task_id: str, command: Recall) -> Case:
    """Recall (撤回) a case from the department handling it, before it finishes: it waits for dispatch again.

    A leader of the case's grid may; the department's handlers are told, with the reason.
    """
    task = lock_task(svc, task_id)
    with svc.session.no_autoflush:
        case = task.case
        require(actor, Permission.TASK_READ, task)
        check_fresh(case, task, command.version)
        require(actor, Permission.GRID_MANAGE, case.grid)
        if task.form_key != "handle" or case.dispatch_to != DispatchTo.DEPARTMENT:
            raise InvalidInput(N_("Only a case referred to a department is recalled; reassign a member's task."))
        before = audited_fields(case)
        recipients = notices.handlers_of(svc.session, case)
        snapshot = svc.engine.send_signal(as_definition(case.definition), case.workflow_state, RECALLED)
        if snapshot is None:
            raise InvalidInput(N_("This case cannot be recalled now: it is no longer being handled, or it runs on "
                                  "an older version of the process."))
        case.version += 1
        _apply(svc, case, actor, snapshot, completed_task=None)
        notices.notify(svc.session, [r for r in recipients if r != actor.id], "recalled", case=case,
                       number=case.number, by=actor.display_name, reason=command.reason)
        record_event(svc.session, case, actor, "case.recalled",
                     {"reason": (None, command.reason), **_diff(before, audited_fields(case))}, task_name=task.name)
    flush(svc.session)
    return case


@dataclass(frozen=True)
class TaskKind:
    """A kind of user task (a BPMN form key): the command completing it takes, and what it does to the case.

    A new kind of user task is one entry here plus its page template (templates/tasks/<form key>.html);
    its web form is built from the command (forms.task_form).
    """

    command: type[TaskCommand]
    apply: Callable[[Services, Case, User, Any], dict]


#: Every user task the processes may hold, by form key.
TASKS: dict[str, TaskKind] = {
    "record_reply": TaskKind(RecordReply, _record_reply),
    "dispatch": TaskKind(Dispatch, _dispatch),
    "handle": TaskKind(Handle, _handle),
    "review_extension": TaskKind(ReviewExtension, _review_extension),
    "callback": TaskKind(Callback, _callback),
    "review_archive": TaskKind(ReviewArchive, _review_archive),
    "supervise": TaskKind(Supervise, _supervise),
}

__all__ = ["TASKS", "Door", "TaskKind", "claim_task", "complete_task", "fire_timers", "get_task", "open_case",
           "propose_deadline_class", "recall_case", "sign_for", "suggested_department_code"]
