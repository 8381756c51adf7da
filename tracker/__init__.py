"""GridLoop: the Flask app that runs every resident request through its closed loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Flask

from .config import ROOT, check_secret_key, load_config


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the app; ``overrides`` replace config.toml settings (tests)."""
    config = load_config(overrides=overrides)
    check_secret_key(config)
    session_hours = config["app"].get("session_lifetime_hours", 12)
    app = Flask(__name__, instance_path=str(ROOT / "instance"), template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"))
    app.config.update(
        SECRET_KEY=config["app"]["secret_key"],
        DATABASE_URL=config["app"]["database_url"],
        GRIDLOOP=config,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config["app"].get("session_cookie_secure", False),
        # A signed-in session lives this long after its last request (the cookie's signed timestamp is
        # checked on every request); a form's CSRF token as long as the session that holds it.
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=session_hours),
        WTF_CSRF_TIME_LIMIT=int(session_hours * 3600),
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        BABEL_DEFAULT_LOCALE=config["app"]["default_locale"],
        BABEL_DEFAULT_TIMEZONE=config["app"].get("timezone", "Asia/Shanghai"),
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "tracker" / "translations"),
    )
    if proxies := config["app"].get("trusted_proxies", 0):
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # as Flask's deployment docs do
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    from . import db, web
    db.init_app(app)
    web.init_app(app)
    from . import cli
    cli.init_app(app)
    return app
