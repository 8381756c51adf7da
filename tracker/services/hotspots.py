"""Hotspots (未诉先办): the same building compound and category asked about again and again.

The scheduler looks at the requests of the last ``[hotspots] days``; where one building and category
got ``requests`` or more, it records a hotspot holding those cases and tells the grid's leaders once.
Later requests about the same place inside the window join it. A leader may open one proactive case
(channel 主动发现) for the hotspot; it names the cases it answers on its audit chain.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from ..codes import Channel
from ..errors import N_, ConflictError
from ..models import Building, Case, Hotspot, User, utcnow
from ..permissions import Permission, require
from ..queries import hotspots as found
from ..queries.stats import not_duplicate
from . import Services, notices
from .audit import record_event
from .cases import open_case
from .commands import RecordCase


def _settings(svc: Services) -> tuple[int, int]:
    """Return (requests, days) of ``[hotspots]``."""
    section = svc.config.get("hotspots", {})
    return section.get("requests", 3), section.get("days", 7)


def scan(svc: Services, now: dt.datetime) -> list[Hotspot]:
    """Record the hotspots of the window ending ``now`` and tell the leaders of new ones; return the new ones."""
    requests, days = _settings(svc)
    since = now - dt.timedelta(days=days)
    places = svc.session.execute(
        select(Case.building_id, Case.category).where(Case.created_at >= since, Case.created_at <= now,
                                                     Case.channel != Channel.PROACTIVE, not_duplicate())
        .group_by(Case.building_id, Case.category).having(func.count() >= requests)).all()
    new = []
    for building_id, category in places:
        cases = [c for c in found.recent_cases(svc.session, building_id, category, since)
                 if c.channel != Channel.PROACTIVE and c.created_at <= now]
        hotspot = found.open_hotspot(svc.session, building_id, category, since)
        if hotspot is None:
            building = svc.session.get(Building, building_id)
            assert building is not None
            hotspot = Hotspot(grid_id=building.grid_id, building_id=building_id, category=category,
                              first_at=cases[0].created_at, last_at=cases[-1].created_at, detected_at=utcnow())
            hotspot.cases = list(cases)
            svc.session.add(hotspot)
            svc.session.flush()
            _tell(svc, hotspot, building, len(cases), days)
            new.append(hotspot)
        else:
            known = {c.id for c in hotspot.cases}
            hotspot.cases.extend(c for c in cases if c.id not in known)
            hotspot.last_at = max(hotspot.last_at, cases[-1].created_at)
    svc.session.flush()
    return new


def _tell(svc: Services, hotspot: Hotspot, building: Building, count: int, days: int) -> None:
    """Tell the grid's leaders of a new hotspot (the message names the count, category, place and days)."""
    pair = svc.config["categories"].get(hotspot.category)
    category = pair[0] if pair else hotspot.category
    notices.notify(svc.session, notices.leaders_of(svc.session, hotspot.grid_id), "hotspot",
                   count=count, category=category, place=building.name, days=days, hotspot_id=hotspot.id)


def open_proactive_case(svc: Services, actor: User, hotspot: Hotspot, intake: RecordCase) -> Case:
    """Open the one proactive case (主动发现) of a hotspot, linking its cases on the new case's chain."""
    if hotspot.proactive_case_id is not None:
        raise ConflictError(N_("A proactive case was already opened for this hotspot; reload the page."))
    require(actor, Permission.GRID_MANAGE, hotspot.building.grid)
    intake = intake.model_copy(update={"channel": Channel.PROACTIVE, "building_id": hotspot.building_id,
                                       "category": hotspot.category})
    case = open_case(svc, actor, intake)
    hotspot.proactive_case_id = case.id
    links: dict[str, tuple[Any, Any]] = {"hotspot_cases": (None, "、".join(c.number for c in hotspot.cases))}
    record_event(svc.session, case, actor, "case.hotspot_linked", links)
    svc.session.flush()
    return case


__all__ = ["open_proactive_case", "scan"]
