"""Wire the web layer: login, CSRF, i18n, blueprints, the commit boundary and error pages."""

from __future__ import annotations

import datetime as dt
import functools
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from flask import Flask, Response, abort, current_app, g, make_response, render_template, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_babel import Babel, gettext
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from workflows import Engine
from workflows.diagram import STYLE_CSP_SOURCE

from . import clock, labels, ratelimit
from .config import ROOT
from .db import get_session
from .models import Role
from .permissions import Permission, can, grid_ids
from .services import accounts, delivery
from .services.definitions import check_statuses
from .services.facts import install as keep_case_facts
from .views import (
    admin,
    api,
    attachments,
    audit,
    auth,
    bundle,
    cases,
    dashboard,
    demo,
    desk,
    due_window,
    exports,
    health,
    inbox,
    leader,
    maps,
    mediation,
    notifications,
    offline,
    open311,
    preferences,
    printing,
    public,
    replies,
    residents,
    tasks,
    visits,
)
from .workdays import WorkCalendar

LOCALES = ("zh_CN", "en")


class _CompiledTemplates(BytecodeCache):
    """Compiled templates kept in memory for every app of the process; a changed source compiles anew (Jinja
    checks each entry against its source's checksum). One app compiles each template once anyway; a test
    run makes an app per test, and compiling the same pages again was a fifth of its time."""

    def __init__(self) -> None:
        """Start empty."""
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill ``bucket`` from memory, if held."""
        if (code := self.code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep ``bucket``'s compiled code."""
        self.code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATES = _CompiledTemplates()


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, except that a page fetched ahead for offline use (static/offline.js sends
    ``X-GridLoop-Prefetch: 1``) never sets or clears it: a prefetch answered just after a logout or a login would
    put the session it started with back over the new one (and the login form's CSRF token would no longer
    match)."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        """Save the session, unless the request was a prefetch."""
        if request.headers.get("X-GridLoop-Prefetch") == "1":
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    """Register extensions, blueprints and hooks."""
    app.jinja_env.bytecode_cache = _TEMPLATES
    app.session_interface = _SessionCookies()
    _init_engine(app)
    keep_case_facts()  # the numbers' facts follow every audit event (services.facts)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # JSON answers keep Chinese readable (UTF-8)
    csrf = CSRFProtect(app)
    Babel(app, locale_selector=_select_locale)
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = auth.LOGIN_MESSAGE
    login.localize_callback = gettext  # flashed in the person's language, not Flask-Login's English
    login.user_loader(lambda session_id: accounts.user_for_session(get_session(), session_id))
    for module in (api, auth, audit, bundle, cases, dashboard, demo, exports, health, inbox, leader, notifications,
                   open311, tasks, visits):
        app.register_blueprint(module.bp)
    for module in (attachments, mediation, printing):  # photos, mediations (矛盾调解), printable pages
        app.register_blueprint(module.bp)
    app.register_blueprint(admin.bp)  # administration screens and spreadsheet onboarding
    app.register_blueprint(residents.bp)  # the resident's cases, the intake's look-up, duplicates (重复件)
    for module in (offline, preferences):  # the installable app; e-mail and webhook messages
        app.register_blueprint(module.bp)
    delivery.init_app(app)
    for module in (public, maps, desk):  # the grid notice (no login), the grid map, mobile desk sessions
        app.register_blueprint(module.bp)
    app.register_blueprint(replies.bp)  # reply templates (常用语) kept by grid leaders
    # Programs authenticate with a bearer token or api_key, never the session cookie: no CSRF to forge.
    csrf.exempt(api.bp)
    csrf.exempt(open311.bp)
    ratelimit.init_app(app)
    app.before_request(_before_request)
    # After-request functions run last-registered first: the headers go on whatever _commit answers.
    app.after_request(_security_headers)
    app.after_request(_commit)
    for code in (400, 401, 403, 404, 405, 409, 413, 429):
        app.register_error_handler(code, _error_page)
    app.register_error_handler(CSRFError, _form_expired)
    app.register_error_handler(StaleDataError, _lost_race)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.context_processor(_template_globals)
    # Browsers ask for /favicon.ico on every site whatever the page links: answer with GridLoop's own, not a 404.
    icon = Path(app.static_folder or "static", "favicon.ico").read_bytes()  # 4 KB, read once
    app.add_url_rule("/favicon.ico", "favicon", lambda: Response(icon, mimetype="image/vnd.microsoft.icon"))
    app.add_template_filter(_local_time, "local_time")
    app.add_template_filter(_iso_local, "iso_local")


def _init_engine(app: Flask) -> None:
    """Load every BPMN file; a broken file is logged and skipped so the rest still serves."""
    config = app.config["GRIDLOOP"]
    engine = Engine(config["lanes"], clock=clock.now)
    app.extensions["gridloop.calendar"] = WorkCalendar.from_config(config)
    definitions, errors = engine.load_directory(ROOT / config["app"]["bpmn_dir"])
    definitions, refused = check_statuses(engine, definitions, config["app"]["case_process"])
    errors += refused
    for error in errors:
        app.logger.error("BPMN definition rejected: %s", error)
    app.extensions["gridloop.engine"] = engine
    app.extensions["gridloop.definitions"] = {d.process_id: d for d in definitions}
    app.extensions["gridloop.bpmn_errors"] = errors


@functools.cache
def _locale(code: str) -> Locale:
    """Parse a locale once per process (Babel's parse scans its locale list: ~2 ms a request)."""
    return Locale.parse(code)


def _select_locale() -> Locale:
    """Pick the language: a program's Accept-Language, a person's choice, else zh_CN."""
    if request and request.blueprint in ("api", "open311"):
        # Programs carry no session: the request says which language its messages should be in.
        chosen = request.accept_languages.best_match(LOCALES + ("zh", "zh-CN", "en-US"))
        chosen = {"zh": "zh_CN", "zh-CN": "zh_CN", "en-US": "en"}.get(chosen or "", chosen)
        return _locale(chosen if chosen in LOCALES else current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = session.get("lang")
    return _locale(chosen if chosen in LOCALES else current_app.config["BABEL_DEFAULT_LOCALE"])


def _commit(response):
    """Commit the request's work once, only when the request succeeded."""
    db = g.get("db_session")
    if db is None:
        return response
    if response.status_code >= 400:
        _rollback_quietly()
        return response
    try:
        db.commit()
    except (StaleDataError, IntegrityError) as exc:
        db.rollback()
        current_app.logger.warning("commit failed: %s", exc)
        return make_response(*_error_page(409))
    except OperationalError as exc:
        current_app.logger.warning("commit failed, database unavailable: %s", exc)
        _rollback_quietly()
        return _unavailable_page()
    return response


#: Every page's Content Security Policy: nothing but GridLoop's own files, no inline script, no framing;
#: the one inline style allowed is the process diagram's (by its hash).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' " + STYLE_CSP_SOURCE + "; img-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _security_headers(response):
    """Add the headers every answer carries: no framing, no sniffing, no caching of personal data."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        # Pages, exports and bundles hold residents' data: no copy stays in a shared browser or proxy.
        headers["Cache-Control"] = "no-store"
    hsts = current_app.config["GRIDLOOP"]["app"].get("hsts_seconds", 0)
    if hsts and request.is_secure:
        headers.setdefault("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains")
    return response


def _rollback_quietly() -> None:
    """Roll back the request's session; a dead connection is discarded, not re-raised."""
    try:
        get_session().rollback()
    except SQLAlchemyError as exc:
        current_app.logger.warning("rollback failed: %s", exc)


def _lost_race(_error):
    """A concurrent change won at flush time: roll back and say so."""
    _rollback_quietly()
    return _error_page(409)


def _database_unavailable(error):
    """The database went away mid-request (restart, failover): nothing was saved; try again.

    Rendered without the site layout, which would need the database to load the current user.
    """
    current_app.logger.warning("database unavailable: %s", error)
    _rollback_quietly()
    return _unavailable_page()


def _unavailable_page():
    """Render the 503 page without context processors: Flask-Login's would load the user from the DB."""
    return make_response(current_app.jinja_env.get_template("unavailable.html").render(), 503)


def _error_page(error):
    """Render an HTTP error in the site layout; under /api/ as problem details."""
    if request.path.startswith("/api/") and isinstance(error, HTTPException):
        return api.problem_for(error)
    code = getattr(error, "code", error)
    # A reason the view gave (abort(403, reason)) is shown; werkzeug's English default never is.
    description = getattr(error, "description", "")
    reason = description if description and description != getattr(type(error), "description", None) else ""
    if code == 429:  # Flask-Limiter's description is the limit in English ("2 per 1 minute"), not a reason
        reason = ""
    return render_template("error.html", code=code, description=description, reason=reason), code


def _form_expired(error: CSRFError):
    """A form whose CSRF token does not match the session: say why in the person's language (Flask-WTF's
    reason is English and technical), and how to go on."""
    reason = gettext("This form has expired: you logged in or out in another window, or it stayed open too long. "
                     "Nothing was saved. Open the page again and submit it once more.")
    return render_template("error.html", code=400, description=reason, reason=reason), 400


def _local_time(value: dt.datetime | None) -> str:
    """Format a UTC datetime in the configured zone, e.g. 2026-11-23 09:30."""
    if value is None:
        return ""
    return value.astimezone(_zone()).strftime("%Y-%m-%d %H:%M")


def _iso_local(value: str | None) -> str:
    """Format an ISO datetime string (as stored in notification params) in the configured zone."""
    if not value:
        return ""
    try:
        return _local_time(dt.datetime.fromisoformat(value))
    except ValueError:
        return value


def _zone() -> ZoneInfo:
    """Return the display time zone from configuration."""
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def _template_globals() -> dict:
    """Expose labels, permission checks and the language switch to templates."""
    return {
        "labels": labels, "category_label": labels.category_label, "label": labels.label,
        "actor_label": labels.actor_label,
        "can": lambda action, obj: can(current_user, action, obj), "Permission": Permission,
        "current_locale": session.get("lang") if session.get("lang") in LOCALES
        else current_app.config["BABEL_DEFAULT_LOCALE"], "locales": LOCALES,
        "next_url": request.full_path if request else "/",
        "deadline_state": _deadline_state, "unread_notices": _unread_notices,
        "leads_grids": lambda: current_user.is_authenticated and (
            current_user.is_admin or bool(grid_ids(current_user, Role.GRID_LEADER))),
        "has_inbox": lambda: current_user.is_authenticated and inbox.has_inbox(current_user),
        "records_cases": lambda: current_user.is_authenticated and not current_user.is_program
        and bool(grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)),
        "audits": lambda: current_user.is_authenticated and (
            current_user.is_admin or any(m.role == Role.AUDITOR for m in current_user.memberships)),
        "demo_clock": current_app.config["GRIDLOOP"].get("demo", {}).get("clock_hook", False)
        and current_user.is_authenticated and current_user.is_admin,
    }


def _deadline_state(due_at: dt.datetime | None) -> str:
    """Return "overdue", "due_soon" or "" for a deadline, on the app's clock."""
    return due_window().state(due_at)


def _unread_notices() -> int:
    """Return the signed-in user's unread notification count (one indexed count)."""
    if not current_user.is_authenticated:
        return 0
    from .services.notices import unread_count
    return unread_count(get_session(), current_user)


def _end_old_sessions() -> None:
    """End a signed-in session older than [app] session_max_days, however often it was used."""
    if "_user_id" not in session:
        return
    max_age = current_app.config["GRIDLOOP"]["app"].get("session_max_days", 7) * 86400
    login_at = session.get("login_at")
    if not isinstance(login_at, (int, float)) or not 0 <= time.time() - login_at <= max_age:
        session.clear()


def _refuse_nul() -> None:
    """Refuse form fields holding a NUL character: no database stores one (PostgreSQL fails on it)."""
    if request.method == "POST" and request.blueprint != "open311" \
            and any("\x00" in value for value in request.form.values()):
        abort(400, description="A field contains a NUL character (\\x00); remove it and send again.")


def _before_request() -> WerkzeugResponse | None:
    """Start the in-process scheduler on the first request, and follow the demo clock."""
    _end_old_sessions()
    _refuse_nul()
    config = current_app.config["GRIDLOOP"]
    if config.get("demo", {}).get("clock_hook"):
        demo.load_offset()
    if config["scheduler"].get("in_web", True) and not current_app.testing:
        from . import jobs
        jobs.start_in_web(current_app._get_current_object())  # type: ignore[attr-defined]
    # After an administrator's reset, every page leads to choosing a new password (once old sessions are ended).
    return auth.forced_password_change()
