"""Administration: people and roles, places, departments, categories, the calendar, and the admin trail.

Every change an administrator makes is an event on the admin trail, hash-chained by the rules of
``tracker.chain`` (case id 0, the changed object in the task name's place); the trail's head is kept
in the setting ``admin_trail_head`` so a cut-off last event is caught too. Categories and calendar
days live in the database, config.toml being their seed; ``refresh`` brings a process up to date.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ..chain import GENESIS, Report, check, event_hash, jsonable, utc_text
from ..errors import N_, DomainError, InvalidInput, NotFound
from ..models import (
    AdminEvent,
    Building,
    CalendarDay,
    Case,
    CaseStatus,
    Category,
    Community,
    Department,
    Grid,
    Household,
    Membership,
    Role,
    Setting,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from ..permissions import PermissionDenied, holds_role
from ..workdays import WorkCalendar
from . import accounts
from .audit import record_event
from .commands import (
    GrantRole,
    OpenCases,
    SaveBuilding,
    SaveCalendarDay,
    SaveCategory,
    SaveCommunity,
    SaveDepartment,
    SaveGrid,
    SavePerson,
)

#: The setting holding the admin trail's head: "<count> <hash of the last event>".
TRAIL_HEAD = "admin_trail_head"
#: The trail's id in ``tracker.chain``'s hash (a case's id is never 0).
TRAIL_ID = 0


def require_admin(actor: User | None) -> None:
    """Refuse anyone but an active administrator (None: the command line, run by whoever holds the server)."""
    if actor is not None and not (actor.is_authenticated and actor.active and actor.is_admin):
        raise PermissionDenied(f"{getattr(actor, 'username', '?')} is not an administrator")


# -- the admin trail -------------------------------------------------------------------------------

def record(session: Session, actor: User | None, action: str, target: str,
           changes: Mapping[str, tuple[Any, Any]]) -> AdminEvent:
    """Append one event to the admin trail (the caller's transaction commits it)."""
    head = session.get(Setting, TRAIL_HEAD, with_for_update=True)
    count, prev_hash = (int(head.value.split()[0]), head.value.split()[1]) if head else (0, GENESIS)
    seq, at = count + 1, utcnow().replace(microsecond=0)
    text = json.dumps({k: [jsonable(o), jsonable(n)] for k, (o, n) in changes.items()},
                      ensure_ascii=False, sort_keys=True)
    actor_id, actor_name = (actor.id, actor.display_name) if actor else (None, "system")
    event = AdminEvent(seq=seq, at=at, actor_id=actor_id, actor_name=actor_name, action=action, target=target,
                       changes=text, prev_hash=prev_hash,
                       hash=event_hash(TRAIL_ID, seq, utc_text(at), actor_id, actor_name, action, target, text,
                                       prev_hash))
    session.add(event)
    if head is None:
        session.add(Setting(key=TRAIL_HEAD, value=f"{seq} {event.hash}"))
    else:
        head.value = f"{seq} {event.hash}"
    return event


def as_record(event: AdminEvent) -> dict[str, Any]:
    """Return an admin event as the mapping ``tracker.chain.check`` reads."""
    return {"case_id": TRAIL_ID, "seq": event.seq, "at": utc_text(event.at), "actor_id": event.actor_id,
            "actor_name": event.actor_name, "action": event.action, "task_name": event.target,
            "changes": event.changes, "prev_hash": event.prev_hash, "hash": event.hash}


def verify_trail(session: Session) -> Report:
    """Check the whole admin trail; the report names the first broken event."""
    events = session.scalars(select(AdminEvent).order_by(AdminEvent.seq)).all()
    head = session.get(Setting, TRAIL_HEAD)
    count = int(head.value.split()[0]) if head else 0
    report = check(TRAIL_ID, [as_record(e) for e in events], recorded_count=count)
    if report.ok and head is not None and head.value.split()[1] != report.head:
        return Report(TRAIL_ID, len(events), False, len(events),
                      "the trail's recorded head is not the hash of its last event", report.head)
    return report


def trail(session: Session, limit: int = 200) -> Sequence[AdminEvent]:
    """Return the newest admin events first."""
    return session.scalars(select(AdminEvent).order_by(AdminEvent.seq.desc()).limit(limit)).all()


def _diff(obj: object, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set ``values`` on ``obj``; return field -> (old, new) for those that changed."""
    changes = {}
    for name, new in values.items():
        old = getattr(obj, name)
        if old != new:
            changes[name] = (old, new)
            setattr(obj, name, new)
    return changes


# -- categories and calendar: the database over config.toml's seed -----------------------------------

@dataclass(frozen=True)
class CategoryInfo:
    """A category as the app uses it."""

    code: str
    name_zh: str
    name_en: str
    department_id: int | None
    deadline_class: str | None
    active: bool
    # Whether a row exists (False: only config.toml's seed).
    stored: bool


def categories(session: Session, seed: Mapping[str, Sequence[str]],
               dispatch: Mapping[str, Any] | None = None) -> list[CategoryInfo]:
    """Return every category: config.toml's seed (names in [categories], proposals in [dispatch]) overridden
    and extended by the database's rows."""
    rows = {row.code: row for row in session.scalars(select(Category))}
    dispatch = dispatch or {}
    by_code = dict(session.execute(select(Department.code, Department.id)).all()) \
        if dispatch.get("departments") else {}
    found = [CategoryInfo(code, pair[0], pair[1], by_code.get(dispatch.get("departments", {}).get(code, "")),
                          dispatch.get("deadline_classes", {}).get(code), True, False)
             for code, pair in seed.items() if code not in rows]
    found += [CategoryInfo(r.code, r.name_zh, r.name_en, r.department_id,
                           r.deadline_class.value if r.deadline_class else None, r.active, True)
              for r in rows.values()]
    return found


def calendar_days(session: Session) -> Sequence[CalendarDay]:
    """Return the database's extra holidays and working days, by date."""
    return session.scalars(select(CalendarDay).order_by(CalendarDay.day)).all()


def build_calendar(config: Mapping[str, Mapping[str, Any]], days: Sequence[CalendarDay]) -> WorkCalendar:
    """Return the calendar of config.toml's extra days with the database's days over them."""
    section = config.get("calendar", {})
    working = {d.day for d in days if d.working}
    closed = {d.day for d in days if not d.working}
    holidays = (set(section.get("extra_holidays", ())) - working) | closed
    workdays = (set(section.get("extra_workdays", ())) - closed) | working
    return WorkCalendar(config["app"].get("timezone", "Asia/Shanghai"), holidays, workdays)


def invalidate(app: Flask) -> None:
    """Make the next request read categories and calendar days again (after a change)."""
    app.extensions["gridloop.reference_loaded"] = 0.0


#: How often a process reads categories and calendar days again: other processes' changes reach it within this.
REFRESH_SECONDS = 5.0


def refresh(app: Flask, session: Session, *, force: bool = False) -> None:
    """Read the categories and calendar days if this process never did or changed them (``invalidate``), or
    when ``force``d (every REFRESH_SECONDS, off the requests: views.admin keeps a thread doing it).

    ``config["categories"]`` (code -> [Chinese, English]) is replaced by the offered categories, so every
    reader of it sees them; ``gridloop.category_labels`` names every category, offered or not.
    """
    if app.extensions.get("gridloop.reference_loaded") and not force:
        return
    config = app.config["GRIDLOOP"]
    seed = app.extensions.setdefault("gridloop.category_seed", dict(config.get("categories", {})))
    dispatch = app.extensions.setdefault("gridloop.dispatch_seed", dict(config.get("dispatch", {})))
    found = categories(session, seed, dispatch)
    codes = dict(session.execute(select(Department.id, Department.code)).all())
    days = calendar_days(session)
    app.extensions["gridloop.category_labels"] = {c.code: [c.name_zh, c.name_en] for c in found}
    app.extensions["gridloop.category_defaults"] = {c.code: (c.department_id, c.deadline_class) for c in found}
    config["categories"] = {c.code: [c.name_zh, c.name_en] for c in found if c.active}
    # The dispatch form's proposals ([dispatch] in config.toml) follow the categories' defaults.
    config["dispatch"] = {**dispatch,
                          "deadline_classes": {c.code: c.deadline_class for c in found if c.deadline_class},
                          "departments": {c.code: codes[c.department_id] for c in found if c.department_id in codes}}
    app.extensions["gridloop.calendar"] = build_calendar(config, days)
    app.extensions["gridloop.reference_loaded"] = time.monotonic()


def save_category(session: Session, actor: User, command: SaveCategory, *, new: bool = False,
                  seed: Mapping[str, Any] | None = None) -> Category:
    """Create (``new``: refusing a code in use, in the database or config.toml's ``seed``) or change a category;
    a seed category gets its row on its first change."""
    require_admin(actor)
    if new and (command.code in (seed or {}) or session.get(Category, command.code) is not None):
        raise InvalidInput(N_("A category with this code exists already: change it from the list."), field="code")
    if command.department_id is not None and session.get(Department, command.department_id) is None:
        raise InvalidInput(N_("Choose a department from the list."), field="department_id")
    row = session.get(Category, command.code)
    values = command.model_dump(exclude={"code"})
    if row is None:
        row = Category(code=command.code, **values)
        session.add(row)
        changes = {k: (None, v) for k, v in values.items()}
    else:
        changes = _diff(row, values)
    if changes:
        record(session, actor, "category.saved", f"category:{command.code}", changes)
    session.flush()
    return row


def save_calendar_day(session: Session, actor: User, command: SaveCalendarDay) -> CalendarDay:
    """Mark a day as an extra holiday or working day (replacing what the day was marked before)."""
    require_admin(actor)
    row = session.get(CalendarDay, command.day)
    if row is None:
        row = CalendarDay(day=command.day, working=command.working, note=command.note)
        session.add(row)
        changes = {"working": (None, command.working), "note": (None, command.note)}
    else:
        changes = _diff(row, {"working": command.working, "note": command.note})
    if changes:
        record(session, actor, "calendar.day_saved", f"day:{command.day.isoformat()}", changes)
    session.flush()
    return row


def remove_calendar_day(session: Session, actor: User, day: Any) -> None:
    """Remove a day's mark: the published schedule (and config.toml) decide it again."""
    require_admin(actor)
    row = session.get(CalendarDay, day)
    if row is None:
        raise NotFound(N_("That day is not marked."))
    record(session, actor, "calendar.day_removed", f"day:{day.isoformat()}", {"working": (row.working, None)})
    session.delete(row)
    session.flush()


# -- places and departments -----------------------------------------------------------------------

def _save(session: Session, actor: User, model: Any, row_id: int | None, values: Mapping[str, Any], *,
          clash: int | None, refusal: InvalidInput,
          changing: Callable[[Any, dict[str, tuple[Any, Any]]], None] | None = None) -> Any:
    """Create (``row_id`` None) or change a row of ``model`` to ``values``; refuse with ``refusal`` when another
    row holds the same key (``clash``: its id, or None). What changed goes on the admin trail as "<table>.saved";
    ``changing(row, changes)`` acts on a change before it is recorded (and may add to what is recorded)."""
    if clash is not None and clash != row_id:
        raise refusal
    if row_id is None:
        row = model(**values)
        session.add(row)
        session.flush()
        changes = {k: (None, v) for k, v in values.items() if v not in (None, "")}
    else:
        row = _get(session, model, row_id)
        changes = _diff(row, values)
        if changing is not None:
            changing(row, changes)
    if changes:
        kind = model.__tablename__
        record(session, actor, f"{kind}.saved", f"{kind}:{row.id}", changes)
    session.flush()
    return row


def save_community(session: Session, actor: User, command: SaveCommunity, community_id: int | None = None
                   ) -> Community:
    """Create or rename a community (names are unique)."""
    require_admin(actor)
    clash = session.scalar(select(Community.id).where(Community.name == command.name))
    return _save(session, actor, Community, community_id, command.model_dump(), clash=clash,
                 refusal=InvalidInput(N_("A community of this name exists already."), field="name"))


def save_grid(session: Session, actor: User, command: SaveGrid, grid_id: int | None = None) -> Grid:
    """Create or edit a grid (its code is unique within its community)."""
    require_admin(actor)
    _get(session, Community, command.community_id, N_("Choose the community."), "community_id")
    clash = session.scalar(select(Grid.id).where(Grid.community_id == command.community_id,
                                                 Grid.code == command.code))
    return _save(session, actor, Grid, grid_id, command.model_dump(), clash=clash,
                 refusal=InvalidInput(N_("This community has a grid with this code already."), field="code"))


def save_department(session: Session, actor: User, command: SaveDepartment, department_id: int | None = None
                    ) -> Department:
    """Create or edit a department (codes are unique)."""
    require_admin(actor)
    clash = session.scalar(select(Department.id).where(Department.code == command.code))
    return _save(session, actor, Department, department_id, command.model_dump(), clash=clash,
                 refusal=InvalidInput(N_("A department with this code exists already."), field="code"))


def open_cases_of(session: Session, building_id: int) -> int:
    """Return how many cases of the building are not archived."""
    return session.scalar(select(func.count()).select_from(Case).where(
        Case.building_id == building_id, Case.status != CaseStatus.ARCHIVED)) or 0


def save_building(session: Session, actor: User, command: SaveBuilding, building_id: int | None = None
                  ) -> Building:
    """Create or edit a building; moving it to another grid moves its households, and its open cases
    when the command says so (each on its own chain), or leaves them with the old grid."""
    require_admin(actor)
    grid = _get(session, Grid, command.grid_id, N_("Choose the grid."), "grid_id")
    clash = session.scalar(select(Building.id).where(Building.grid_id == grid.id, Building.name == command.name))
    if building_id is not None:
        building = _get(session, Building, building_id)
        if building.grid_id != grid.id and command.open_cases is None and open_cases_of(session, building.id):
            raise InvalidInput(N_("The building has open cases: choose whether they stay with grid %(grid)s or "
                                  "move with the building."), field="open_cases", grid=building.grid.code)

    def moving(building: Building, changes: dict[str, tuple[Any, Any]]) -> None:
        if "grid_id" in changes:
            building.grid = grid
            _move_households(session, building.id, grid.id)
            if command.open_cases == OpenCases.MOVE:
                moved = _move_open_cases(session, actor, building.id, changes["grid_id"][0], grid.id)
                changes["open_cases_moved"] = (None, moved)

    return _save(session, actor, Building, building_id, command.model_dump(exclude={"open_cases"}), clash=clash,
                 refusal=InvalidInput(N_("Grid %(grid)s has a building of this name already."), field="name",
                                      grid=grid.code), changing=moving)


def _move_households(session: Session, building_id: int, grid_id: int) -> None:
    """Households belong to their building's grid."""
    for household in session.scalars(select(Household).where(Household.building_id == building_id)):
        household.grid_id = grid_id


def _move_open_cases(session: Session, actor: User, building_id: int, old_grid: int, new_grid: int) -> int:
    """Move the building's open cases to ``new_grid``: the case, its open grid tasks (back to the new grid's
    pool when their holder has no role there), each change on the case's chain. Return how many moved."""
    cases = session.scalars(select(Case).where(Case.building_id == building_id, Case.status != CaseStatus.ARCHIVED,
                                               Case.grid_id == old_grid).options(selectinload(Case.tasks))
                            .order_by(Case.id).with_for_update(of=Case)).all()
    for case in cases:
        changes: dict[str, tuple[Any, Any]] = {"grid_id": (old_grid, new_grid)}
        case.grid_id = new_grid
        for task in case.tasks:
            if task.status != TaskStatus.OPEN or task.grid_id != old_grid:
                continue
            task.grid_id = new_grid
            holder = task.assignee
            if holder is not None and task.role in (Role.GRID_MEMBER, Role.GRID_LEADER) \
                    and not holds_role(holder, task.role, grid_id=new_grid):
                task.assignee_id, task.assignee = None, None
                changes["assignee"] = (holder.display_name, None)
                if case.handler_id == holder.id:
                    changes["handler_id"] = (case.handler_id, None)
                    case.handler_id, case.handler = None, None
        case.version += 1
        case.updated_at = utcnow()
        record_event(session, case, actor, "case.moved", changes)
    session.flush()
    session.expire_all()
    return len(cases)


# -- people -----------------------------------------------------------------------------------------

def temporary_password() -> str:
    """Return a random password for a reset or a new account (changed at the first login)."""
    return secrets.token_urlsafe(9)


def save_person(session: Session, actor: User | None, command: SavePerson, user_id: int | None = None,
                password: str | None = None) -> tuple[User, str | None]:
    """Create a person (with ``password``, or a temporary one to change at the first login) or edit one.

    Return the user and the temporary password, if one was made (shown once, never stored plainly).
    """
    require_admin(actor)
    clash = session.scalar(select(User.id).where(User.username == command.username))
    if clash is not None and clash != user_id:
        raise InvalidInput(N_("The username %(name)s is taken."), field="username", name=command.username)
    if command.phone:
        same = session.scalar(select(User.username).where(User.phone == command.phone, User.id != (user_id or 0)))
        if same:
            raise InvalidInput(N_("%(name)s has this phone number already."), field="phone", name=same)
    values = command.model_dump()
    temporary = None
    if user_id is None:
        user = User(**values, password_hash="", memberships=[])
        temporary = None if password else temporary_password()
        accounts.set_password(session, user, password or temporary or "")
        user.must_change_password = temporary is not None
        session.add(user)
        session.flush()
        changes = {k: (None, v) for k, v in values.items() if v not in ("", False)}
    else:
        user = _get(session, User, user_id)
        if actor is not None and user.id == actor.id and not command.is_admin:
            raise InvalidInput(N_("You cannot take your own administrator right away."), field="is_admin")
        changes = _diff(user, values)
    if changes:
        record(session, actor, "user.saved", f"user:{user.id}", changes)
    session.flush()
    return user, temporary


def reset_password(session: Session, actor: User, user_id: int) -> str:
    """Give the person a temporary password they must change at their next login; return it (shown once).

    Their sessions end and their API tokens are revoked (``accounts.set_password``).
    """
    require_admin(actor)
    user = _get(session, User, user_id)
    password = temporary_password()
    accounts.set_password(session, user, password)
    user.must_change_password = True
    record(session, actor, "user.password_reset", f"user:{user.id}", {"must_change_password": (False, True)})
    session.flush()
    return password


def change_own_password(session: Session, user: User, current: str, new: str) -> None:
    """Change one's own password, proving the current one; the forced change after a reset ends."""
    if accounts.authenticate(session, user.username, current) is None:
        raise InvalidInput(N_("The current password is wrong."), field="current_password")
    if current == new:
        raise InvalidInput(N_("Choose a new password, not the current one."), field="new_password")
    try:
        accounts.set_password(session, user, new)
    except DomainError as exc:
        exc.field = "new_password"
        raise
    user.must_change_password = False
    session.flush()


def grant_role(session: Session, actor: User | None, user_id: int, command: GrantRole) -> Membership:
    """Give a person a role in a scope (a grid, a department, a community; an auditor may have the district)."""
    require_admin(actor)
    user = _get(session, User, user_id)
    scope: dict[str, int | None] = {"grid_id": None, "department_id": None, "community_id": None}
    if command.role in (Role.GRID_MEMBER, Role.GRID_LEADER):
        scope["grid_id"] = _get(session, Grid, command.grid_id, N_("Choose the grid of this role."), "grid_id").id
    elif command.role == Role.DEPARTMENT_HANDLER:
        scope["department_id"] = _get(session, Department, command.department_id,
                                      N_("Choose the department of this role."), "department_id").id
    elif command.community_id is not None:
        scope["community_id"] = _get(session, Community, command.community_id,
                                     N_("Choose the community of this role."), "community_id").id
    for held in user.memberships:
        if held.role == command.role and all(getattr(held, k) == v for k, v in scope.items()):
            raise InvalidInput(N_("%(name)s holds this role there already."), field="role", name=user.display_name)
    membership = Membership(role=command.role, **scope)
    user.memberships.append(membership)
    record(session, actor, "user.role_granted", f"user:{user.id}",
           {"role": (None, command.role.value), **{k: (None, v) for k, v in scope.items() if v is not None}})
    session.flush()
    return membership


def revoke_role(session: Session, actor: User, user_id: int, membership_id: int) -> None:
    """Take a role away; the person's sessions end (``accounts`` does it at the flush)."""
    require_admin(actor)
    user = _get(session, User, user_id)
    membership = next((m for m in user.memberships if m.id == membership_id), None)
    if membership is None:
        raise NotFound(N_("That role was not found."))
    if membership.role == Role.GRID_MEMBER and membership.grid_id is not None and _held_tasks(
            session, user.id, Role.GRID_MEMBER, membership.grid_id):
        raise HandoverNeeded([(_get(session, Grid, membership.grid_id), _held_tasks(
            session, user.id, Role.GRID_MEMBER, membership.grid_id))])
    record(session, actor, "user.role_revoked", f"user:{user.id}",
           {"role": (membership.role.value, None),
            **{k: (getattr(membership, k), None) for k in ("grid_id", "department_id", "community_id")
               if getattr(membership, k) is not None}})
    user.memberships.remove(membership)
    session.flush()


class HandoverNeeded(DomainError):
    """The person still holds grid members' tasks: they go through the handover first."""

    def __init__(self, grids: list[tuple[Grid, int]]):
        super().__init__(N_("%(count)s open tasks are still with this person: hand them over first."),
                         count=sum(n for _g, n in grids))
        self.grids = grids


def _held_tasks(session: Session, user_id: int, role: Role, grid_id: int) -> int:
    """Return how many open tasks of a role in a grid the person holds."""
    return session.scalar(select(func.count()).select_from(Task).where(
        Task.status == TaskStatus.OPEN, Task.assignee_id == user_id, Task.role == role,
        Task.grid_id == grid_id)) or 0


def set_active(session: Session, actor: User, user_id: int, active: bool) -> int:
    """Enable or disable a person. Before disabling, their grid members' tasks must have been handed over
    (HandoverNeeded names the grids); any other task they hold goes back to its pool, on its case's chain.
    Return how many tasks went back to a pool."""
    require_admin(actor)
    user = _get(session, User, user_id)
    if user.id == actor.id and not active:
        raise InvalidInput(N_("You cannot disable your own account."))
    released = 0
    if not active:
        grids = session.execute(select(Task.grid_id, func.count()).where(
            Task.status == TaskStatus.OPEN, Task.assignee_id == user.id, Task.role == Role.GRID_MEMBER)
            .group_by(Task.grid_id)).all()
        if grids:
            raise HandoverNeeded([(_get(session, Grid, grid_id), n) for grid_id, n in grids])
        released = _release_all(session, actor, user)
    if user.active != active:
        record(session, actor, "user.enabled" if active else "user.disabled", f"user:{user.id}",
               {"active": (user.active, active), **({"tasks_released": (None, released)} if released else {})})
        accounts.set_active(user, active)
    session.flush()
    return released


def _release_all(session: Session, actor: User, user: User) -> int:
    """Put every open task the person holds back in its pool (leader, department, street office lanes)."""
    case_ids = session.scalars(select(Task.case_id).where(Task.status == TaskStatus.OPEN,
                                                          Task.assignee_id == user.id).distinct()).all()
    if not case_ids:
        return 0
    cases = session.scalars(select(Case).where(Case.id.in_(case_ids)).options(selectinload(Case.tasks))
                            .order_by(Case.id).with_for_update(of=Case)).all()
    count = 0
    for case in cases:
        for task in case.tasks:
            if task.status != TaskStatus.OPEN or task.assignee_id != user.id:
                continue
            changes: dict[str, tuple[Any, Any]] = {"assignee": (user.display_name, None),
                                                   "reason": (None, "account disabled")}
            if case.handler_id == user.id and task.form_key == "handle":
                changes["handler_id"] = (case.handler_id, None)
                case.handler_id, case.handler = None, None
            task.assignee_id, task.assignee = None, None
            case.version += 1
            case.updated_at = utcnow()
            record_event(session, case, actor, "task.released", changes, task_name=task.name)
            count += 1
    return count


# -- lists for the screens ---------------------------------------------------------------------------

def people(session: Session) -> Sequence[User]:
    """Return every person with their roles, by username."""
    return session.scalars(select(User).order_by(User.username)).all()


def communities(session: Session) -> Sequence[Community]:
    """Return every community with its grids, by name."""
    return session.scalars(select(Community).options(selectinload(Community.grids)).order_by(Community.name)).all()


def grids(session: Session) -> Sequence[Grid]:
    """Return every grid with its community, by community and code."""
    return session.scalars(select(Grid).join(Grid.community).order_by(Community.name, Grid.code)).all()


def buildings(session: Session) -> Sequence[Building]:
    """Return every building with its grid, by grid and name."""
    return session.scalars(select(Building).join(Building.grid).order_by(Grid.code, Building.name)).all()


def departments(session: Session) -> Sequence[Department]:
    """Return every department, by code."""
    return session.scalars(select(Department).order_by(Department.code)).all()


def get(session: Session, model: type, object_id: int) -> Any:
    """Return one row for an admin screen, or raise NotFound."""
    return _get(session, model, object_id)


def _get(session: Session, model: type, object_id: int | None, message: str = N_("Not found."),
         field: str | None = None) -> Any:
    """Return the row or raise (InvalidInput on a field when one is named, else NotFound)."""
    row = session.get(model, object_id) if object_id else None
    if row is None:
        if field:
            raise InvalidInput(message, field=field)
        raise NotFound(message)
    return row


__all__ = ["CategoryInfo", "HandoverNeeded", "build_calendar", "categories", "change_own_password", "grant_role",
           "invalidate", "record", "refresh", "require_admin", "reset_password", "revoke_role", "save_building",
           "save_calendar_day", "save_category", "save_community", "save_department", "save_grid",
           "save_person", "set_active", "verify_trail"]
