"""Make many dispatched cases fast, through the real services (the benchmark and process tests)."""

from __future__ import annotations

import datetime as dt

import time_machine
from flask import Flask
from sqlalchemy import select

from tracker.db import get_session
from tracker.models import Building, TaskStatus, User
from tracker.services import for_app
from tracker.services.cases import complete_task, open_case
from tracker.services.commands import Dispatch, RecordCase


def dispatched_cases(app: Flask, n: int, at: dt.datetime, member: str, leader: str) -> list[int]:
    """Record ``n`` cases as ``member`` and dispatch them to that member as ``leader``, at moment ``at``."""
    with app.app_context():
        db = get_session()
        svc = for_app(app, db)
        handler = db.scalar(select(User).where(User.username == member))
        dispatcher = db.scalar(select(User).where(User.username == leader))
        building = db.scalar(select(Building.id).where(Building.grid_id == handler.memberships[0].grid_id)
                             .order_by(Building.id).limit(1))
        ids = []
        with time_machine.travel(at, tick=False):
            for i in range(n):
                case = open_case(svc, handler, RecordCase(
                    resident_name=f"居民{i}", resident_phone="+8613812345678", building_id=building,
                    category="property_repair", description="楼道灯不亮", channel="phone", answered_on_spot=False))
                task = next(t for t in case.tasks if t.status == TaskStatus.OPEN)
                complete_task(svc, dispatcher, task.id, case.version, Dispatch(
                    dispatch_to="member", handler_id=handler.id, deadline_class="general"))
                ids.append(case.id)
                if i % 200 == 199:
                    db.commit()
        db.commit()
    return ids
