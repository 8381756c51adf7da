"""Make many dispatched cases fast, through the real services (the benchmark's own factory, shared); check the
numbers' day totals."""

from __future__ import annotations

from bench.cases import dispatched_cases


def stored_day_totals(session) -> dict:
    """Return the day totals as kept (days of grids with any case), (day, grid) -> counters."""
    from sqlalchemy import select

    from tracker.models import DAY_COUNTERS, stats_day
    rows = session.execute(select(stats_day).where(stats_day.c.recorded > 0)).mappings()
    return {(r["day"], r["grid_id"]): tuple(r[n] for n in DAY_COUNTERS) for r in rows}


def assert_day_totals_current(app) -> None:
    """Check the day totals kept with each write are those counted again from every case."""
    from tracker.db import get_session
    from tracker.services.facts import count_all_days
    with app.app_context():
        session = get_session()
        kept = stored_day_totals(session)
        count_all_days(session.connection(), app.extensions["gridloop.calendar"].zone)
        counted = stored_day_totals(session)
        session.rollback()
    assert kept == counted, {k: (kept.get(k), counted.get(k)) for k in kept.keys() | counted.keys()
                             if kept.get(k) != counted.get(k)}


__all__ = ["assert_day_totals_current", "dispatched_cases", "stored_day_totals"]
