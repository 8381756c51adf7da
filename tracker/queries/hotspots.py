"""Hotspots (未诉先办) a person may see: the same building and category asked about again and again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..models import Case, Grid, Hotspot, User, hotspot_case
from .cases import visible_grids
from .stats import not_duplicate


def window_start(now: dt.datetime, config: Mapping[str, Mapping[str, Any]]) -> dt.datetime:
    """Return the start of the hotspot window (``[hotspots] days`` before ``now``)."""
    return now - dt.timedelta(days=config.get("hotspots", {}).get("days", 7))


def current(session: Session, user: User, now: dt.datetime, config: Mapping[str, Mapping[str, Any]],
            grid_ids: Sequence[int] | None = None) -> Sequence[Hotspot]:
    """Return the hotspots with a request inside the window, in grids ``user`` may see, newest first."""
    grids = visible_grids(user).with_only_columns(Grid.id).order_by(None)
    query = (select(Hotspot).where(Hotspot.last_at >= window_start(now, config), Hotspot.grid_id.in_(grids))
             .options(selectinload(Hotspot.cases)).order_by(Hotspot.last_at.desc()).limit(50))
    if grid_ids is not None:
        query = query.where(Hotspot.grid_id.in_(list(grid_ids)))
    return session.scalars(query).all()


def recent_cases(session: Session, building_id: int, category: str, since: dt.datetime) -> Sequence[Case]:
    """Return the cases about ``building_id`` and ``category`` recorded since ``since``, duplicates left out."""
    return session.scalars(select(Case).where(Case.building_id == building_id, Case.category == category,
                                              Case.created_at >= since, not_duplicate())
                           .order_by(Case.created_at)).all()


def open_hotspot(session: Session, building_id: int, category: str, since: dt.datetime) -> Hotspot | None:
    """Return the hotspot of the place still inside the window, if any (a new request joins it)."""
    return session.scalars(select(Hotspot).where(Hotspot.building_id == building_id, Hotspot.category == category,
                                                 Hotspot.last_at >= since).order_by(Hotspot.id.desc())
                           .limit(1)).first()


def hotspot_of(session: Session, case_id: int) -> int | None:
    """Return the id of a hotspot holding the case, if any."""
    return session.scalar(select(hotspot_case.c.hotspot_id).where(hotspot_case.c.case_id == case_id).limit(1))


__all__ = ["current", "hotspot_of", "open_hotspot", "recent_cases", "window_start"]
