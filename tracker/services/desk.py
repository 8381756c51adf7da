"""Mobile desk sessions (流动办公桌): planned by a grid's leader, opened by its staff on the day, requests
recorded into them through the one intake, closed with a summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..codes import Channel, Door
from ..errors import N_, ConflictError, InvalidInput
from ..models import Building, Case, CaseStatus, DeskEntry, DeskRoute, DeskSession, DeskStatus, Grid, Role, User, utcnow
from ..permissions import Permission, PermissionDenied, grid_ids, holds_role, require
from . import Services, assign
from .cases import open_case
from .commands import CloseDeskSession, PlanDeskSessions, RecordCase

#: Case statuses after handling ended: a request sent on counts as resolved once it reached one of them.
RESOLVED = (CaseStatus.CALLBACK, CaseStatus.ARCHIVE_REVIEW, CaseStatus.ARCHIVED)


def plan_sessions(svc: Services, actor: User, grid: Grid, command: PlanDeskSessions) -> list[DeskSession]:
    """Plan one session, or one a week on a fixed route: week k at the route's k-th place, in turn."""
    require(actor, Permission.GRID_MANAGE, grid)
    buildings = [svc.session.get(Building, i) for i in command.building_ids]
    if any(b is None or b.grid_id != grid.id for b in buildings):
        raise InvalidInput(N_("Choose building compounds of this grid."), field="building_ids")
    staff = [svc.session.get(User, i) for i in dict.fromkeys(command.staff_ids)]
    if any(u is None or not u.active or not (holds_role(u, Role.GRID_MEMBER, grid_id=grid.id)
                                             or holds_role(u, Role.GRID_LEADER, grid_id=grid.id)) for u in staff):
        raise InvalidInput(N_("Choose the desk's staff among this grid's members and leaders."), field="staff_ids")
    if command.first_day < assign.local_today(svc):
        raise InvalidInput(N_("The first session lies in the past; choose today or a later day."), field="first_day")
    route = None
    if command.weeks > 1:
        route = DeskRoute(grid_id=grid.id, weekday=command.first_day.isoweekday(), starts_at=command.starts_at,
                          ends_at=command.ends_at, building_ids=",".join(str(b.id) for b in buildings if b),
                          created_by_id=actor.id)
        svc.session.add(route)
        svc.session.flush()
    sessions = []
    for week in range(command.weeks):
        place = buildings[week % len(buildings)] if buildings else None
        row = DeskSession(grid_id=grid.id, route_id=route.id if route else None,
                          building_id=place.id if place else None,
                          address=command.address, held_on=command.first_day + dt.timedelta(weeks=week),
                          starts_at=command.starts_at, ends_at=command.ends_at, status=DeskStatus.PLANNED,
                          created_by_id=actor.id, staff=list(staff))
        svc.session.add(row)
        sessions.append(row)
    svc.session.flush()
    return sessions


def may_work(user: User, desk: DeskSession) -> bool:
    """Whether ``user`` works at the session: its staff, or a leader of its grid."""
    return user.active and (any(u.id == user.id for u in desk.staff)
                            or desk.grid_id in grid_ids(user, Role.GRID_LEADER))


def _require_work(user: User, desk: DeskSession) -> None:
    """Refuse anyone who does not work at the session."""
    if not may_work(user, desk):
        raise PermissionDenied(f"{user.username} does not work at desk session {desk.id}")


def open_session(svc: Services, actor: User, desk: DeskSession) -> DeskSession:
    """Open the session on its day (or later, if staff forgot): requests can be recorded into it."""
    _require_work(actor, desk)
    if desk.status != DeskStatus.PLANNED:
        raise ConflictError(N_("This session is already open or closed; reload the page."))
    if assign.local_today(svc) < desk.held_on:
        raise InvalidInput(N_("This session is planned for %(day)s; open it on that day."),
                           day=desk.held_on.isoformat())
    desk.status, desk.opened_at, desk.opened_by_id = DeskStatus.OPEN, utcnow(), actor.id
    svc.session.flush()
    return desk


def record_request(svc: Services, actor: User, desk: DeskSession, intake: RecordCase) -> Case:
    """Record a request taken at the open session: the one intake, channel mobile desk (流动办公桌)."""
    _require_work(actor, desk)
    if desk.status != DeskStatus.OPEN:
        raise ConflictError(N_("Requests are recorded into an open session; this one is not open."))
    if intake.channel != Channel.MOBILE_DESK:
        raise InvalidInput(N_("A desk session records requests with the channel mobile desk."), field="channel")
    case = open_case(svc, actor, intake, door=Door.WEB)
    svc.session.add(DeskEntry(session_id=desk.id, case_id=case.id, answered_on_spot=bool(intake.answered_on_spot)))
    svc.session.flush()
    return case


def close_session(svc: Services, actor: User, desk: DeskSession, command: CloseDeskSession) -> DeskSession:
    """Close the open session with a note; its summary counts what was taken."""
    _require_work(actor, desk)
    if desk.status != DeskStatus.OPEN:
        raise ConflictError(N_("Only an open session can be closed; reload the page."))
    desk.status, desk.closed_at, desk.closed_by_id = DeskStatus.CLOSED, utcnow(), actor.id
    desk.summary_note = command.note
    svc.session.flush()
    return desk


@dataclass(frozen=True)
class Summary:
    """What a session took: requests, answered on the spot, sent on, and of those sent on how many are resolved."""

    taken: int
    on_spot: int
    sent_on: int
    resolved: int

    @property
    def pending(self) -> int:
        """Requests sent on and not resolved yet."""
        return self.sent_on - self.resolved


def summarize(entries: list[DeskEntry]) -> Summary:
    """Count a session's requests (each entry's case loaded)."""
    sent = [e for e in entries if not e.answered_on_spot]
    return Summary(taken=len(entries), on_spot=len(entries) - len(sent), sent_on=len(sent),
                   resolved=sum(1 for e in sent if e.case.status in RESOLVED))


__all__ = ["RESOLVED", "Summary", "close_session", "may_work", "open_session", "plan_sessions", "record_request",
           "summarize"]
