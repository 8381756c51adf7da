"""Defects found walking the desk as a new user (issue 14, item 6): each test failed on the code before."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import update

from tests.conftest import intake, latest_case
from tracker.models import AuditEvent, Case

ZONE = ZoneInfo("Asia/Shanghai")


# -- date filters mean the local days the screens show --------------------------------------------

def _recorded_at(db, local: dt.datetime) -> Case:
    """Record a case and move its creation (and its events) to the local moment ``local``."""
    case = latest_case(db)
    at = local.replace(tzinfo=ZONE).astimezone(dt.UTC)
    db.execute(update(Case).where(Case.id == case.id).values(created_at=at))
    db.execute(update(AuditEvent).where(AuditEvent.case_id == case.id).values(at=at))
    return case


def test_date_filters_are_local_days(login, db):
    member = login("member_a")
    member.submit("/cases/new", intake(db, description="清晨的诉求"))
    # 07:30 in Beijing on 20 November is 23:30 UTC on the 19th: the screens show the 20th.
    early = _recorded_at(db, dt.datetime(2026, 11, 20, 7, 30))
    member.submit("/cases/new", intake(db, description="深夜的诉求"))
    # 23:30 in Beijing on 20 November is 15:30 UTC on the 20th.
    late = _recorded_at(db, dt.datetime(2026, 11, 20, 23, 30))
    day = "date_from=2026-11-20&date_to=2026-11-20"

    listed = member.get(f"/cases/?{day}").get_data(as_text=True)
    assert early.number in listed and late.number in listed
    assert early.number not in member.get("/cases/?date_to=2026-11-19").get_data(as_text=True)
    assert late.number not in member.get("/cases/?date_from=2026-11-21").get_data(as_text=True)

    exported = member.get(f"/cases/export.csv?{day}").get_data(as_text=True)
    assert early.number in exported and late.number in exported
    assert early.number not in member.get("/cases/export.csv?date_to=2026-11-19").get_data(as_text=True)

    auditor = login("auditor")
    found = auditor.get(f"/audit?{day}").get_data(as_text=True)
    assert early.number in found and late.number in found
    assert early.number not in auditor.get("/audit?date_to=2026-11-19").get_data(as_text=True)
    assert late.number not in auditor.get("/audit?date_from=2026-11-21").get_data(as_text=True)
