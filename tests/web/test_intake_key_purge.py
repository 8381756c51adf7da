"""One-time intake keys are kept `[duplicates] intake_key_days`, then purged by the scheduler in batches."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from tests.conftest import configured_app, user_id
from tests.web.test_api import make_token, new_case
from tracker import jobs
from tracker.config import ConfigError, load_config
from tracker.models import Case, IntakeKey
from tracker.services import duplicates

START = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


def _post(client, secret: str, body: dict, key: str):
    return client.post("/api/v1/cases", json=body, headers={"Authorization": f"Bearer {secret}",
                                                            "Idempotency-Key": key})


def _keys(db) -> list[str]:
    return sorted(db.scalars(select(IntakeKey.key)))


def _cases(db) -> int:
    return db.scalar(select(func.count()).select_from(Case))


def test_the_purge_removes_only_keys_older_than_the_limit(app, db):
    client = app.test_client()
    with time_machine.travel(START, tick=False):
        secret = make_token(app, "member_a")[1]
        old = _post(client, secret, new_case(db), "old-key")
        assert old.status_code == 201
    with time_machine.travel(START + dt.timedelta(days=20), tick=False):
        fresh = _post(client, secret, new_case(db, description="路灯坏了"), "fresh-key")
        assert fresh.status_code == 201
    with time_machine.travel(START + dt.timedelta(days=30), tick=False):
        assert jobs.purge_intake_keys(app) == 0  # exactly 30 days old: not older than the limit yet
    with time_machine.travel(START + dt.timedelta(days=30, seconds=1), tick=False):
        assert jobs.purge_intake_keys(app) == 1
        assert _keys(db) == ["fresh-key"]
        assert jobs.purge_intake_keys(app) == 0  # a second run (another scheduler, a restart) finds nothing
        # The fresh key still guards its case.
        again = _post(client, secret, new_case(db, description="路灯坏了"), "fresh-key")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json()["id"] == fresh.get_json()["id"]
        assert again.get_json() == fresh.get_json()
        assert _cases(db) == 2
        # A purged key is forgotten: the request sent again is a new one and records a new case.
        late = _post(client, secret, new_case(db), "old-key")
        assert late.status_code == 201 and late.get_json()["id"] != old.get_json()["id"]
        possible = client.get(f"/api/v1/cases/{late.get_json()['id']}/possible-duplicates",
                              headers={"Authorization": f"Bearer {secret}"}).get_json()["items"]
        assert old.get_json()["number"] in [c["number"] for c in possible]
        assert _cases(db) == 3 and _keys(db) == ["fresh-key", "old-key"]


def test_the_purge_runs_in_batches_and_keeps_to_the_configured_days(database_url, db, monkeypatch):
    member = user_id(db, "member_a")
    now = dt.datetime.now(dt.UTC)
    db.add_all([IntakeKey(user_id=member, key=f"old-{n}", request_hash="0" * 64, created_at=now - dt.timedelta(days=8))
                for n in range(5)])
    db.add_all([IntakeKey(user_id=member, key=f"young-{n}", request_hash="0" * 64,
                          created_at=now - dt.timedelta(days=6)) for n in range(2)])
    db.commit()
    batches: list[int] = []
    purge = duplicates.purge_keys

    def counted(session, before, batch_size):
        batches.append(done := purge(session, before, batch_size))
        return done

    monkeypatch.setattr(duplicates, "purge_keys", counted)
    with configured_app(database_url, duplicates={"intake_key_days": 7}) as short:
        assert jobs.purge_intake_keys(short, batch_size=2) == 5
    assert batches == [2, 2, 1]  # each batch its own transaction, until one comes back short
    assert _keys(db) == ["young-0", "young-1"]


def test_the_setting_is_checked_and_defaults_to_30_days():
    assert load_config()["duplicates"]["intake_key_days"] == 30
    assert duplicates.key_days({}) == 30 and duplicates.key_days({"duplicates": {"intake_key_days": 9}}) == 9
    with pytest.raises(ConfigError, match="duplicates.intake_key_days"):
        load_config(overrides={"duplicates": {"intake_key_days": 0}})
    with pytest.raises(ConfigError, match="duplicates.intake_key_days"):
        load_config(overrides={"duplicates": {"intake_key_days": "a month"}})


def test_the_scheduler_purges_daily_and_on_start(app):
    scheduler = jobs.configure(BackgroundScheduler(timezone=dt.UTC), app)  # configured, never started
    job = scheduler.get_job("intake-keys")
    assert job.args == (jobs.purge_intake_keys, app) and isinstance(job.trigger, CronTrigger)
    assert job.next_run_time is not None and job.next_run_time <= dt.datetime.now(dt.UTC)
