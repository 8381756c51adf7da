"""Turn a deadline class into a due time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

DEADLINE_CLASSES = ("emergency", "utilities", "general", "complex")


def handling_limit(deadlines: Mapping[str, Any], deadline_class: str, green_channel: bool) -> dt.timedelta:
    """Return how long a case of this class may take; green-channel cases get a shorter limit."""
    if deadline_class not in DEADLINE_CLASSES:
        raise ValueError(f"unknown deadline class {deadline_class!r}; use one of {', '.join(DEADLINE_CLASSES)}")
    if deadline_class in ("emergency", "utilities"):
        limit = dt.timedelta(hours=deadlines[f"{deadline_class}_hours"])
    else:
        limit = dt.timedelta(days=deadlines[f"{deadline_class}_days"])
    if green_channel:
        limit *= deadlines["green_channel_factor"]
    return limit


def due_at(deadlines: Mapping[str, Any], deadline_class: str, start: dt.datetime, green_channel: bool) -> dt.datetime:
    """Return the due time of a case dispatched at ``start``."""
    return start + handling_limit(deadlines, deadline_class, green_channel)
