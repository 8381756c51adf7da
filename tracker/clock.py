"""The app's clock: UTC now, optionally moved forward by the demo hook.

Everything in the tracker that asks "what time is it" (timestamps, deadlines, the scheduler, the
workflow engine's timers) asks ``now()``. In production the offset is always zero; with
``[demo] clock_hook`` on, an admin can move it forward from /demo/clock to watch reminders,
supervision and escalation happen without waiting days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """Return the current moment as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC) + _offset


def offset() -> dt.timedelta:
    """Return how far the clock has been moved forward."""
    return _offset


def set_offset(value: dt.timedelta) -> None:
    """Move the clock (demo and tests only)."""
    global _offset
    if value < dt.timedelta(0):
        raise ValueError("the demo clock only moves forward")
    _offset = value


@contextmanager
def shifted(delta: dt.timedelta) -> Iterator[None]:
    """Run the enclosed code as if it were ``delta`` from now (backdating demo and benchmark data)."""
    global _offset
    before = _offset
    _offset = before + delta
    try:
        yield
    finally:
        _offset = before
