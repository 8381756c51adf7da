"""Rate limits (Flask-Limiter): per API token on /api/v1 and /open311/v2, per address and name on login."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .services.tokens import digest


def _token_or_address() -> str:
    """Count an API caller by its token (each program its own budget), else by its address."""
    auth = request.headers.get("Authorization", "")
    key = request.args.get("api_key") or request.form.get("api_key") or ""
    if auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return f"token:{digest(key)[:16]}" if key else f"addr:{get_remote_address()}"


def _login_key() -> str:
    """Count login attempts per address and user name (guessing one account, or many from one place)."""
    return f"login:{get_remote_address()}:{(request.form.get('username') or '').strip().lower()[:64]}"


def init_app(app: Flask) -> Limiter:
    """Attach a limiter to the app and put the configured limits on the API and the login form."""
    settings = app.config["GRIDLOOP"]["api"]
    app.config.setdefault("RATELIMIT_ENABLED", settings["ratelimit_enabled"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings["ratelimit_storage"])
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(key_func=get_remote_address, app=app)
    app.extensions["gridloop.limiter"] = limiter  # the limit wrappers only hold it weakly
    from .views import api, open311
    for blueprint in (api.bp, open311.bp):
        limiter.limit(settings["rate_limit"], key_func=_token_or_address)(blueprint)
    # A decorated limit is checked inside the decorator's wrapper: the registered view must be that wrapper.
    app.view_functions["auth.login"] = limiter.limit(settings["login_rate_limit"], key_func=_login_key,
                                                     methods=["POST"])(app.view_functions["auth.login"])
    return limiter


__all__ = ["init_app"]
