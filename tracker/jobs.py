"""Scheduled jobs (APScheduler): fire due timers; start each day's routine visits.

The jobs run inside the web process by default (``[scheduler] in_web``), or in their own process
with ``flask scheduler`` when the web app runs as several workers. Any number of scheduler
processes may run: each timer fires exactly once (see ``services.firing``), and a day's visits are
created once (one row per plan and day, enforced by a unique constraint).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy.exc import OperationalError

from . import clock
from .services import firing, for_app

log = logging.getLogger(__name__)
#: Seconds a tick yields the SQLite write lock between batches.
SQLITE_PAUSE = 0.12


@dataclass
class TickTotals:
    """What a whole tick did, summed over its batches."""

    taken: int = 0
    fired: int = 0
    batches: int = 0
    # Failed rows stay in the table and retry later (see services.firing).
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def tick(app: Flask, now: dt.datetime | None = None, batch_size: int | None = None) -> TickTotals:
    """Fire every timer due at ``now`` (default: the app's clock), one transaction per batch."""
    now = now or clock.now()
    batch_size = batch_size or app.config["GRIDLOOP"]["scheduler"].get("batch_size", 100)
    totals = TickTotals()
    started = time.perf_counter()
    busy: set[int] = set()
    sqlite = app.extensions["gridloop.db"].dialect.name == "sqlite"
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        while True:
            with maker() as session:
                result = firing.fire_due(for_app(app, session), now, batch_size, frozenset(busy))
                session.commit()
            totals.batches += 1
            totals.taken += result.taken
            totals.fired += result.fired
            totals.failed.extend(result.failed)
            busy.update(result.skipped)  # someone is acting on these cases: next tick
            if result.taken < batch_size:
                break
            if sqlite:
                # SQLite has one writer at a time and its waiters poll (up to every 100 ms): pause so
                # requests and other schedulers get their turn between batches instead of starving.
                time.sleep(SQLITE_PAUSE)
        # Mediation follow-ups (矛盾调解) keep their moment on their own row; each is sent once (locked, marked).
        from .services import mediation
        with maker() as session:
            totals.fired += mediation.fire_follow_ups(session, now, batch_size)
            session.commit()
    totals.seconds = time.perf_counter() - started
    if totals.taken:
        log.info("tick at %s: %d timers taken, %d fired, %d failed, %.3f s", now.isoformat(), totals.taken,
                 totals.fired, len(totals.failed), totals.seconds)
    return totals


def start_visits(app: Flask, day: dt.date | None = None) -> int:
    """Create the routine visits planned for ``day`` (default: today, local); return how many."""
    from .services import visits
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        with maker() as session:
            svc = for_app(app, session)
            if day is None:
                day = clock.now().astimezone(svc.calendar.zone).date()
            created = visits.start_day(svc, day)
            session.commit()
    return created


@dataclass
class DeliveryTotals:
    """What one delivery run did."""

    claimed: int = 0
    sent: int = 0
    # Attempts that failed (retried later, or given up after [delivery] max_attempts).
    failed: int = 0


def deliver(app: Flask, now: dt.datetime | None = None) -> DeliveryTotals:
    """Send the due messages of the outbox by e-mail and webhook (see ``services.delivery``)."""
    from .services import delivery
    settings = app.config["GRIDLOOP"].get("delivery", {})
    totals = DeliveryTotals()
    if not delivery.configured_channels(settings):
        return totals
    lease = dt.timedelta(seconds=settings.get("lease_seconds", 300))
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        with maker() as session:
            claimed = delivery.claim(session, now or clock.now(), settings.get("batch_size", 50), lease)
            session.commit()  # the claim holds no lock while we talk to the mail server
        totals.claimed = len(claimed)
        render = _message_renderer(app)
        for message in claimed:
            subject, text, link = render(message)
            error = delivery.send(message, subject, text, link, settings)
            with maker() as session:
                status = delivery.record(session, message, error, now or clock.now(), settings)
                session.commit()
            if error is None:
                totals.sent += 1
            else:
                totals.failed += 1
                log.warning("delivery %d (%s to user %d, attempt %d) failed, now %s: %s", message.id,
                            message.channel, message.user_id, message.attempt, status, error)
    if totals.claimed:
        log.info("delivery: %d messages taken, %d sent, %d failed", totals.claimed, totals.sent, totals.failed)
    return totals


def _message_renderer(app: Flask):
    """Return a function giving a message's subject, text and link, in the app's default language."""
    from types import SimpleNamespace

    from flask_babel import force_locale, gettext
    template = app.jinja_env.get_template("notifications/_message.html")
    base = (app.config["GRIDLOOP"]["app"].get("public_base_url") or "http://127.0.0.1:5000").rstrip("/")

    def render(message) -> tuple[str, str, str | None]:
        with force_locale(app.config["BABEL_DEFAULT_LOCALE"]):
            macro = template.module.message  # type: ignore[attr-defined]  # a macro of the template
            text = " ".join(str(macro(SimpleNamespace(kind=message.kind), message.params)).split())
            subject = f"{gettext('GridLoop')}: {text[:60]}"
        return subject, text, f"{base}/cases/{message.case_id}" if message.case_id else None
    return render


def produce_reports(app: Flask, day: dt.date | None = None) -> int:
    """Produce the weekly and monthly reports due on ``day`` (default: today, local); return how many."""
    from .queries.stats import Definitions
    from .services import reports
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        with maker() as session:
            svc = for_app(app, session)
            now = clock.now()
            day = day or now.astimezone(svc.calendar.zone).date()
            made = reports.produce_due(session, svc.calendar, day, now, Definitions.from_config(svc.config))
            session.commit()
    if made:
        log.info("%d reports produced for %s", made, day)
    return made


def find_hotspots(app: Flask, now: dt.datetime | None = None) -> int:
    """Record the hotspots of the window ending ``now`` and tell the leaders of new ones; return how many."""
    from .services import hotspots
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        with maker() as session:
            found = hotspots.scan(for_app(app, session), now or clock.now())
            session.commit()
    return len(found)


def purge_intake_keys(app: Flask, now: dt.datetime | None = None, batch_size: int | None = None) -> int:
    """Delete the one-time intake keys older than ``[duplicates] intake_key_days``; return how many.

    One transaction per batch (``[scheduler] batch_size`` rows), like the timers, so a large backlog
    never holds the intake_key table locked for long. A key younger than the limit is never touched.
    """
    from .services import duplicates
    config = app.config["GRIDLOOP"]
    before = (now or clock.now()) - dt.timedelta(days=duplicates.key_days(config))
    batch_size = batch_size or config["scheduler"].get("batch_size", 100)
    purged = 0
    with app.app_context():
        maker = app.extensions["gridloop.sessionmaker"]
        while True:
            with maker() as session:
                deleted = duplicates.purge_keys(session, before, batch_size)
                session.commit()
            purged += deleted
            if deleted < batch_size:
                break
    if purged:
        log.info("%d intake keys older than %s purged", purged, before.isoformat())
    return purged


def _safe(job, app: Flask) -> None:
    """Run a job; a database outage is logged and retried on the next run, never fatal."""
    try:
        job(app)
    except OperationalError as exc:
        log.warning("%s skipped, database unavailable: %s", job.__name__, str(exc).splitlines()[0])
    except Exception:  # a scheduler thread must survive any one bad run
        log.exception("%s failed", job.__name__)


def configure(scheduler: BaseScheduler, app: Flask) -> BaseScheduler:
    """Add GridLoop's jobs to an APScheduler scheduler."""
    settings = app.config["GRIDLOOP"]["scheduler"]
    zone = app.extensions["gridloop.calendar"].zone
    scheduler.add_job(_safe, IntervalTrigger(seconds=settings.get("interval_seconds", 30)), args=(tick, app),
                      id="timers", name="fire due timers", max_instances=1, coalesce=True,
                      next_run_time=dt.datetime.now(dt.UTC))
    scheduler.add_job(_safe, CronTrigger(hour=settings.get("visit_hour", 6), minute=0, timezone=zone),
                      args=(start_visits, app), id="visits", name="start the day's routine visits",
                      max_instances=1, coalesce=True, misfire_grace_time=6 * 3600)
    scheduler.add_job(_safe, IntervalTrigger(seconds=settings.get("interval_seconds", 30)), args=(deliver, app),
                      id="deliveries", name="send e-mail and webhook messages", max_instances=1, coalesce=True,
                      next_run_time=dt.datetime.now(dt.UTC))
    config = app.config["GRIDLOOP"]
    if config.get("reports", {}).get("enabled", True):
        # Daily; only the first working day of a week or month produces anything, once (a restart catches up).
        scheduler.add_job(_safe, CronTrigger(hour=config["reports"].get("hour", 7), minute=5, timezone=zone),
                          args=(produce_reports, app), id="reports", name="produce the weekly and monthly reports",
                          max_instances=1, coalesce=True, misfire_grace_time=12 * 3600)
    if config.get("hotspots", {}).get("enabled", True):
        scheduler.add_job(_safe, IntervalTrigger(minutes=10), args=(find_hotspots, app), id="hotspots",
                          name="find hotspots (未诉先办)", max_instances=1, coalesce=True)
    # Daily at night, and once on start (a process restarted daily would miss the night; the purge is idempotent).
    scheduler.add_job(_safe, CronTrigger(hour=3, minute=20, timezone=zone), args=(purge_intake_keys, app),
                      id="intake-keys", name="purge old one-time intake keys", max_instances=1, coalesce=True,
                      misfire_grace_time=12 * 3600, next_run_time=dt.datetime.now(dt.UTC))
    # Catch up on start: today's visits if the process was down at visit_hour (idempotent).
    scheduler.add_job(_safe, args=(start_visits, app), id="visits-catch-up", name="catch up today's visits",
                      next_run_time=dt.datetime.now(dt.UTC))
    return scheduler


_in_web: BackgroundScheduler | None = None
_in_web_lock = threading.Lock()


def start_in_web(app: Flask) -> None:
    """Start the background scheduler in this web process once (first request)."""
    global _in_web
    with _in_web_lock:
        if _in_web is None:
            _in_web = configure(BackgroundScheduler(timezone=dt.UTC), app)
            _in_web.start()
            log.info("scheduler started inside the web process")


def run_blocking(app: Flask) -> None:
    """Run the scheduler in the foreground until interrupted (``flask scheduler``)."""
    scheduler = configure(BlockingScheduler(timezone=dt.UTC), app)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
