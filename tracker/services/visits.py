"""Routine visits (三定走访), visit plans, households and the resident diary (民情日记)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from workflows import TaskNotReady, WorkflowError

from .. import media
from ..codes import AttachmentKind
from ..errors import N_, ConflictError, InvalidInput, NotFound
from ..models import Attachment, Building, Case, DiaryNote, Household, Role, User, Visit, VisitPlan, VisitStatus, utcnow
from ..permissions import Permission, holds_role, require
from . import Services, attachments, notices, timers
from .audit import record_event
from .cases import open_case
from .commands import AddNote, PlanVisits, RecordCase, RecordVisit, RegisterHousehold, build
from .definitions import as_definition, current_definition

PROCESS = "routine_visit"


def add_household(svc: Services, actor: User, command: RegisterHousehold) -> Household:
    """Register a household in a building of the actor's grid."""
    building = svc.session.get(Building, command.building_id)
    if building is None:
        raise InvalidInput(N_("Building not found; choose one from the list."), field="building_id")
    require(actor, Permission.HOUSEHOLD_MANAGE, building.grid)
    household = Household(grid_id=building.grid_id, building_id=building.id, address_detail=command.address_detail,
                          head_name=command.head_name, phone=command.phone, care_group=command.care_group,
                          note=command.note)
    svc.session.add(household)
    svc.session.flush()
    return household


def add_plan(svc: Services, actor: User, household: Household, plan: PlanVisits) -> VisitPlan:
    """Add a visit plan: which member visits the household on which weekdays at what time."""
    require(actor, Permission.HOUSEHOLD_MANAGE, household.grid)
    member = svc.session.get(User, plan.member_id)
    if member is None or member.is_program or not holds_role(member, Role.GRID_MEMBER, grid_id=household.grid_id):
        raise InvalidInput(N_("Choose a grid member of this household's grid."), field="member_id")
    row = VisitPlan(household_id=household.id, member_id=member.id,
                    weekdays=",".join(map(str, sorted(set(plan.weekdays)))),
                    time_of_day=plan.time_of_day, on_holiday=plan.on_holiday, active=True)
    svc.session.add(row)
    svc.session.flush()
    return row


def plan_days(plan: VisitPlan) -> list[int]:
    """Return the plan's ISO weekdays."""
    return [int(d) for d in plan.weekdays.split(",") if d]


def due_on(svc: Services, plan: VisitPlan, day: dt.date) -> bool:
    """Return whether the plan asks for a visit on ``day`` (its weekday; holidays per the plan)."""
    if day.isoweekday() not in plan_days(plan):
        return False
    if plan.on_holiday == "skip" and not svc.calendar.is_working_day(day):
        return False
    return True


def start_day(svc: Services, day: dt.date) -> int:
    """Start a visit for every active plan due on ``day``; existing ones are left alone. Return how many started."""
    session = svc.session
    plans = session.scalars(select(VisitPlan).where(VisitPlan.active.is_(True))).all()
    existing = set(session.scalars(select(Visit.plan_id).where(Visit.scheduled_for == day)))
    started = 0
    for plan in plans:
        if plan.id in existing or not due_on(svc, plan, day):
            continue
        try:
            with session.begin_nested():  # another scheduler may create the same visit at once
                _start(svc, plan, day)
            started += 1
        except IntegrityError:
            continue
    return started


def _start(svc: Services, plan: VisitPlan, day: dt.date) -> Visit:
    """Create one visit and start its process."""
    zone = svc.calendar.zone
    hour, minute = map(int, plan.time_of_day.split(":"))
    planned_at = dt.datetime.combine(day, dt.time(hour, minute), zone).astimezone(dt.UTC)
    missed_at = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), zone).astimezone(dt.UTC)
    row = current_definition(svc.session, dict(svc.definitions), PROCESS)
    household = plan.household
    visit = Visit(plan_id=plan.id, household_id=household.id, grid_id=household.grid_id, member_id=plan.member_id,
                  scheduled_for=day, planned_at=planned_at, status=VisitStatus.OPEN, definition_id=row.id,
                  workflow_state=b"", version=1)
    svc.session.add(visit)
    svc.session.flush()
    snapshot = svc.engine.start(as_definition(row), {"missed_at": missed_at.isoformat(),
                                                     "household_id": household.id})
    _apply(svc, visit, snapshot)
    return visit


def _apply(svc: Services, visit: Visit, snapshot) -> None:
    """Store the visit's workflow state, its open task, missed notices and its timer."""
    visit.workflow_state = snapshot.state
    ready = [r for r in snapshot.ready if r.form_key == "visit"]
    visit.task_id = ready[0].id if ready else None
    if snapshot.completed:
        visit.status = VisitStatus.DONE
    for fired in snapshot.fired:
        if fired.notice == "visit_missed" and visit.missed_at is None:
            visit.missed_at = fired.due or utcnow()
            notices.notify(svc.session, notices.leaders_of(svc.session, visit.grid_id), "visit_missed",
                           visit=visit, household=visit.household.head_name,
                           day=visit.scheduled_for.isoformat(), member=visit.member.display_name)
    timers.sync(svc.session, snapshot.next_timer, visit=visit)


def fire_timers(svc: Services, visit: Visit, now: dt.datetime) -> int:
    """Fire the visit's due timers as of ``now`` (the scheduler holds the visit's lock)."""
    snapshot = svc.engine.fire_timers(as_definition(visit.definition), visit.workflow_state, now)
    _apply(svc, visit, snapshot)
    return len(snapshot.fired)


def get_visit(svc: Services, visit_id: int) -> Visit:
    """Load a visit or raise NotFound."""
    visit = svc.session.get(Visit, visit_id)
    if visit is None:
        raise NotFound(N_("Visit %(id)s not found."), id=visit_id)
    return visit


def complete_visit(svc: Services, actor: User, visit_id: int, command: RecordVisit,
                   record_key: str | None = None, photos: Sequence[attachments.Checked] = (),
                   store: media.Store | None = None) -> Visit:
    """Record a visit: a dated diary note for the household, and optionally a new case it raised.

    ``record_key``: the record's one-time key (the form's, or an offline phone's). The same record sent
    again (a double tap, a phone replaying its outbox) finds the visit recorded under its key and
    changes nothing; another record of a recorded visit is a conflict. ``photos`` (checked by
    attachments.check_uploads) go into ``store`` as the visit's; a case the visit raises gets them too,
    their hashes on its chain.
    """
    expected_version, note = command.version, command.note
    session = svc.session
    visit = session.get(Visit, visit_id, with_for_update={"of": Visit}, populate_existing=True)
    if visit is None:
        raise NotFound(N_("Visit %(id)s not found."), id=visit_id)
    if record_key and visit.status != VisitStatus.OPEN and visit.record_key == record_key:
        return visit  # this very record, sent again: already done
    if visit.status != VisitStatus.OPEN:
        raise ConflictError(N_("This visit was already recorded; reload the page."))
    require(actor, Permission.VISIT_COMPLETE, visit)
    if visit.version != expected_version:
        raise ConflictError(N_("This visit was changed by someone else after you opened it; reload and try again."))
    raise_case = _raised_case(visit, command) if command.raise_case else None
    try:
        snapshot = svc.engine.complete_task(as_definition(visit.definition), visit.workflow_state, visit.task_id,
                                            {"note": note})
    except TaskNotReady:
        raise ConflictError(N_("This visit was already recorded; reload the page.")) from None
    except WorkflowError as exc:
        raise InvalidInput(N_("The process could not continue: %(problem)s"), problem=str(exc)) from None
    case: Case | None = None
    if raise_case is not None:
        case = open_case(svc, actor, raise_case)
        visit.case_id = case.id
    now = utcnow()
    visit.completed_at = now
    visit.record_key = record_key or None
    visit.version += 1
    _apply(svc, visit, snapshot)
    if photos:
        _attach_photos(svc, store or media.current_store(), actor, visit, case, photos)
    session.add(DiaryNote(household_id=visit.household_id, author_id=actor.id,
                          written_on=now.astimezone(svc.calendar.zone).date(), text=note, visit_id=visit.id,
                          case_id=case.id if case else None, created_at=now))
    session.flush()
    return visit


def _attach_photos(svc: Services, store: media.Store, actor: User, visit: Visit, case: Case | None,
                   photos: Sequence[attachments.Checked]) -> list[Attachment]:
    """Store a visit's photos (kind visit); with the case it raised, on that case and its chain too."""
    rows = []
    for photo, name in photos:
        row = Attachment(case_id=case.id if case else None, visit_id=visit.id, kind=AttachmentKind.VISIT,
                         sha256=store.put(photo.original), content_type=photo.content_type,
                         size=len(photo.original), width=photo.width, height=photo.height, file_name=name,
                         display_sha256=store.put(photo.display), thumb_sha256=store.put(photo.thumb),
                         created_by_id=actor.id)
        svc.session.add(row)
        rows.append(row)
    if case is not None:
        record_event(svc.session, case, actor, attachments.ACTION,
                     {"files": (None, [attachments.entry(row) for row in rows])})
    return rows


def _raised_case(visit: Visit, command: RecordVisit) -> RecordCase:
    """Return the intake of the case a visit raised: the household's details, the member's words."""
    household = visit.household
    return build(RecordCase, {"resident_name": household.head_name, "resident_phone": household.phone,
                              "building_id": household.building_id, "category": command.category,
                              "description": command.description, "channel": "visit",
                              "address_detail": household.address_detail}, context={"household_visit": True})


def add_note(svc: Services, actor: User, household: Household, command: AddNote) -> DiaryNote:
    """Add a dated diary note about a household outside a planned visit."""
    require(actor, Permission.HOUSEHOLD_NOTE, household)
    now = utcnow()
    note = DiaryNote(household_id=household.id, author_id=actor.id,
                     written_on=now.astimezone(svc.calendar.zone).date(), text=command.text, created_at=now)
    svc.session.add(note)
    svc.session.flush()
    return note


__all__ = ["add_household", "add_note", "add_plan", "complete_visit", "due_on", "fire_timers",
           "get_visit", "start_day"]
