"""The working-day calendar: Chinese public holidays and make-up working days (调休).

Holidays and make-up days come from the ``holidays`` package (China's schedule as published by the
State Council, kept up to date by that project); ``[calendar]`` in config.toml adds or removes days,
e.g. when next year's schedule is announced before the package is upgraded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import holidays


class WorkCalendar:
    """Answer "is this a working day" and count working days, in the office's time zone."""

    def __init__(self, timezone: str = "Asia/Shanghai", extra_holidays: Iterable[dt.date] = (),
                 extra_workdays: Iterable[dt.date] = (), country: str = "CN"):
        """Build a calendar; extra days win over the published schedule."""
        self.zone = ZoneInfo(timezone)
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        overlap = self.extra_holidays & self.extra_workdays
        if overlap:
            raise ValueError(f"{min(overlap)} is listed both as a holiday and as a working day")
        self._published = holidays.country_holidays(country)

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]]) -> WorkCalendar:
        """Build the calendar from validated configuration."""
        section = config.get("calendar", {})
        return cls(config["app"].get("timezone", "Asia/Shanghai"),
                   section.get("extra_holidays", ()), section.get("extra_workdays", ()))

    def is_working_day(self, day: dt.date) -> bool:
        """Return whether ``day`` is a working day (weekends count unless they are make-up days)."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        return self._published.is_working_day(day)

    def next_working_day(self, day: dt.date) -> dt.date:
        """Return the first working day strictly after ``day``."""
        day += dt.timedelta(days=1)
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_working_days(self, start: dt.datetime, days: int) -> dt.datetime:
        """Return the moment ``days`` working days after ``start``, as an aware UTC datetime.

        The deadline falls on the ``days``-th working day after the start day, at the same local
        time. A request received on a holiday or weekend starts counting at 00:00 of the next
        working day, so "1 working day" from a Saturday ends when Monday ends.
        """
        if days < 0:
            raise ValueError("days must not be negative")
        local = start.astimezone(self.zone)
        day, clock = local.date(), local.timetz().replace(tzinfo=None)
        if not self.is_working_day(day):
            day = self.next_working_day(day)
            clock = dt.time(0, 0)
        for _ in range(days):
            day = self.next_working_day(day)
        return dt.datetime.combine(day, clock, self.zone).astimezone(dt.UTC)

    def working_days_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Return how many whole working days lie after ``start``'s day up to and including ``end``'s day."""
        first, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        count, day = 0, first
        while day < last:
            day += dt.timedelta(days=1)
            count += self.is_working_day(day)
        return count


def parse_days(key: str, values: Any) -> list[dt.date]:
    """Parse a config list of YYYY-MM-DD dates, failing with a message that names the key."""
    if not isinstance(values, list):
        raise ValueError(f"{key} must be a list of dates like [\"2027-02-08\"], got {values!r}")
    days = []
    for value in values:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            days.append(value)
            continue
        try:
            days.append(dt.date.fromisoformat(str(value)))
        except ValueError:
            raise ValueError(f"{key}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. \"2027-02-08\"") from None
    return days
