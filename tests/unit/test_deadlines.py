"""Deadline arithmetic: the working-day calendar (holidays, make-up days, time zone) and the timer plan.

Dates are 2026's published schedule: National Day 1-7 Oct off, made up on Sun 20 Sep and Sat 10 Oct;
Spring Festival 15-23 Feb off, made up on Sat 14 Feb and Sat 28 Feb.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tracker import deadlines
from tracker.workdays import WorkCalendar, parse_days

BEIJING = ZoneInfo("Asia/Shanghai")
#: config.toml's [deadlines], written out so these tests do not move when the defaults do.
LIMITS = {"emergency_hours": 2, "utilities_hours": 24, "general_days": 7, "complex_days": 15, "sign_for_days": 1,
          "green_channel_factor": 0.5, "reminder_at": 0.75, "escalate_after_days": 2}
CALENDAR = WorkCalendar()


def local(*args: int) -> dt.datetime:
    """Return a Beijing wall-clock moment."""
    return dt.datetime(*args, tzinfo=BEIJING)


# -- the calendar -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "working"), [
    (dt.date(2026, 11, 4), True),    # a Wednesday
    (dt.date(2026, 11, 7), False),   # a Saturday
    (dt.date(2026, 11, 8), False),   # a Sunday
    (dt.date(2026, 10, 1), False),   # National Day
    (dt.date(2026, 10, 6), False),   # a weekday off, made up on a weekend
    (dt.date(2026, 9, 20), True),    # Sunday, a make-up working day
    (dt.date(2026, 10, 10), True),   # Saturday, a make-up working day
    (dt.date(2026, 2, 23), False),   # Monday after Spring Festival, still off
])
def test_working_days_follow_the_published_schedule(day, working):
    assert CALENDAR.is_working_day(day) is working


def test_configured_days_win_over_the_published_schedule():
    calendar = WorkCalendar(extra_holidays=[dt.date(2026, 11, 4)], extra_workdays=[dt.date(2026, 11, 7)])
    assert not calendar.is_working_day(dt.date(2026, 11, 4))
    assert calendar.is_working_day(dt.date(2026, 11, 7))
    # Mon 2 Nov + 2 working days: Tue 3, then (Wed 4 closed) Thu 5.
    assert calendar.add_working_days(local(2026, 11, 2, 10), 2) == local(2026, 11, 5, 10)


def test_a_day_both_closed_and_open_is_refused_naming_it():
    with pytest.raises(ValueError, match="2026-11-04 is listed both as a holiday and as a working day"):
        WorkCalendar(extra_holidays=[dt.date(2026, 11, 4)], extra_workdays=[dt.date(2026, 11, 4)])


def test_working_days_skip_a_week_of_holiday_and_count_a_make_up_saturday():
    start = local(2026, 9, 30, 10)
    assert CALENDAR.add_working_days(start, 1) == local(2026, 10, 8, 10)
    assert CALENDAR.add_working_days(start, 3) == local(2026, 10, 10, 10)  # Sat 10 Oct is worked
    assert CALENDAR.add_working_days(local(2026, 9, 18, 10), 1) == local(2026, 9, 20, 10)  # so is Sun 20 Sep
    assert CALENDAR.working_days_between(start, local(2026, 10, 10, 9)) == 3


def test_a_request_on_a_day_off_starts_counting_the_next_working_morning():
    saturday = local(2026, 11, 7, 15)
    assert CALENDAR.add_working_days(saturday, 0) == local(2026, 11, 9, 0)
    assert CALENDAR.add_working_days(saturday, 1) == local(2026, 11, 10, 0)  # when Monday ends


def test_days_are_counted_in_the_office_time_zone_and_returned_in_utc():
    # Friday 17:00 UTC is already Saturday 01:00 in Beijing: a day off.
    due = CALENDAR.add_working_days(dt.datetime(2026, 11, 6, 17, 0, tzinfo=dt.UTC), 1)
    assert due == local(2026, 11, 10, 0)
    assert due.tzinfo == dt.UTC


def test_negative_days_are_refused():
    with pytest.raises(ValueError):
        CALENDAR.add_working_days(local(2026, 11, 2, 10), -1)


def test_configured_dates_are_parsed_or_refused_naming_the_key():
    assert parse_days("calendar.extra_holidays", ["2027-02-08", dt.date(2027, 2, 9)]) == [
        dt.date(2027, 2, 8), dt.date(2027, 2, 9)]
    with pytest.raises(ValueError, match=r"calendar.extra_holidays: '2027-13-01' is not a date"):
        parse_days("calendar.extra_holidays", ["2027-13-01"])
    with pytest.raises(ValueError, match="calendar.extra_workdays must be a list"):
        parse_days("calendar.extra_workdays", "2027-02-08")


# -- handling limits ----------------------------------------------------------------------------------------

MONDAY_10 = local(2026, 11, 2, 10)


@pytest.mark.parametrize(("deadline_class", "green", "due"), [
    ("emergency", False, local(2026, 11, 2, 12)),
    ("emergency", True, local(2026, 11, 2, 11)),
    ("utilities", False, local(2026, 11, 3, 10)),
    ("utilities", True, local(2026, 11, 2, 22)),
    ("general", False, local(2026, 11, 11, 10)),   # 7 working days
    ("general", True, local(2026, 11, 6, 10)),     # ceil(3.5) = 4 working days
    ("complex", False, local(2026, 11, 23, 10)),   # 15 working days
    ("complex", True, local(2026, 11, 12, 10)),    # ceil(7.5) = 8 working days
])
def test_handling_limit_by_class_and_green_channel(deadline_class, green, due):
    assert deadlines.handling_due(LIMITS, CALENDAR, deadline_class, MONDAY_10, green) == due


def test_hour_limits_count_the_clock_through_holidays_and_day_limits_do_not():
    national_day = local(2026, 10, 1, 9)
    assert deadlines.handling_due(LIMITS, CALENDAR, "emergency", national_day, False) == local(2026, 10, 1, 11)
    assert deadlines.handling_due(LIMITS, CALENDAR, "general", national_day, False) == local(2026, 10, 16, 0)


def test_day_limits_cross_spring_festival_on_its_make_up_days():
    # Thu 12 Feb: Fri 13, Sat 14 (made up), then 24-27 Feb and Sat 28 (made up) is the 7th working day.
    assert deadlines.handling_due(LIMITS, CALENDAR, "general", local(2026, 2, 12, 10), False) == local(2026, 2, 28, 10)


def test_a_green_channel_day_limit_is_never_shorter_than_one_working_day():
    limits = {**LIMITS, "general_days": 1, "green_channel_factor": 0.1}
    assert deadlines.handling_due(limits, CALENDAR, "general", MONDAY_10, True) == local(2026, 11, 3, 10)


def test_an_unknown_class_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="unknown deadline class 'urgent'; use one of emergency, utilities"):
        deadlines.handling_due(LIMITS, CALENDAR, "urgent", MONDAY_10, False)


# -- the timer plan -------------------------------------------------------------------------------------------

def test_a_day_limit_plans_sign_for_reminder_and_escalation_on_working_days():
    due = deadlines.handling_due(LIMITS, CALENDAR, "general", MONDAY_10, False)
    plan = deadlines.plan(LIMITS, CALENDAR, MONDAY_10, due)
    assert plan.sign_for_at == local(2026, 11, 3, 10)
    assert plan.remind_at == local(2026, 11, 9, 10)     # floor(7 x 0.75) = 5 working days, not Sunday
    assert plan.escalate_at == local(2026, 11, 13, 10)  # 2 working days past the limit
    assert plan.as_workflow_data() == {
        "sign_for_at": "2026-11-03T02:00:00+00:00", "remind_at": "2026-11-09T02:00:00+00:00",
        "due_at": "2026-11-11T02:00:00+00:00", "escalate_at": "2026-11-13T02:00:00+00:00"}


def test_an_hour_limit_reminds_at_its_share_of_the_clock_and_signs_for_no_later_than_the_limit():
    plan = deadlines.plan(LIMITS, CALENDAR, MONDAY_10, local(2026, 11, 2, 12))
    assert plan.remind_at == local(2026, 11, 2, 11, 30)
    assert plan.sign_for_at == plan.due_at == local(2026, 11, 2, 12)
    assert plan.escalate_at == local(2026, 11, 4, 12)


def test_an_hour_limit_ending_on_a_day_off_escalates_from_the_next_working_morning():
    saturday = local(2026, 11, 7, 10)
    plan = deadlines.plan(LIMITS, CALENDAR, saturday, local(2026, 11, 7, 12))
    assert plan.escalate_at == local(2026, 11, 11, 0)  # Mon 00:00 + 2 working days


def test_an_extension_moves_the_limit_by_working_days_and_replaces_the_reminder():
    plan = deadlines.extend(LIMITS, CALENDAR, MONDAY_10, local(2026, 11, 11, 10), 3)
    assert plan.due_at == local(2026, 11, 16, 10)        # Thu 12, Fri 13, Mon 16
    assert plan.remind_at == local(2026, 11, 11, 10)     # floor(10 x 0.75) = 7 working days
    assert plan.escalate_at == local(2026, 11, 18, 10)
    assert plan.sign_for_at == local(2026, 11, 3, 10)


# -- settings ---------------------------------------------------------------------------------------------------

def test_the_default_limits_pass_the_check():
    deadlines.check(LIMITS)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("emergency_hours", 0, "deadlines.emergency_hours must be more than 0 hours"),
    ("general_days", 0.5, "deadlines.general_days must be at least 1 working day"),
    ("sign_for_days", 0, "deadlines.sign_for_days must be at least 1 working day"),
    ("escalate_after_days", -1, "deadlines.escalate_after_days must be 0 or more"),
    ("green_channel_factor", 1.5, "deadlines.green_channel_factor must be more than 0 and at most 1"),
    ("green_channel_factor", 0, "deadlines.green_channel_factor must be more than 0 and at most 1"),
    ("reminder_at", 1, "deadlines.reminder_at is the share of the limit"),
])
def test_an_out_of_range_setting_is_refused_naming_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        deadlines.check({**LIMITS, key: value})
