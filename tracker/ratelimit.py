"""Rate limits (Flask-Limiter): per API token on /api/v1 and /open311/v2, per address (and name) on login."""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from .views import token_user


def _token_or_address() -> str:
    """Count a program by its token's user once the token is valid (each program its own budget);
    anything else — no token, a wrong one, a made-up one per call — by its address."""
    user = token_user(api_key_field=request.blueprint == "open311")
    return f"user:{user.id}" if user is not None else f"addr:{get_remote_address()}"


def _user_or_address() -> str:
    """Count a signed-in person by their account (wherever they are), anyone else by address."""
    from flask_login import current_user
    return f"user:{current_user.id}" if current_user.is_authenticated else f"addr:{get_remote_address()}"


def _no_search_text() -> bool:
    """Whether a list request searches no free text (then it is cheap and not counted)."""
    return not (request.args.get("q") or "").strip()


def _login_key() -> str:
    """Count login attempts per address and user name (guessing one account)."""
    return f"login:{get_remote_address()}:{(request.form.get('username') or '').strip().lower()[:64]}"


def _login_address_key() -> str:
    """Count login attempts per address (trying one password on many accounts)."""
    return f"login:{get_remote_address()}"


def init_app(app: Flask) -> Limiter:
    """Attach a limiter to the app and put the configured limits on the API and the login form.

    Call it after the blueprints are registered: it wraps their views.
    """
    settings = app.config["GRIDLOOP"]["api"]
    app.config.setdefault("RATELIMIT_ENABLED", settings["ratelimit_enabled"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings["ratelimit_storage"])
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(key_func=get_remote_address, app=app)
    app.extensions["gridloop.limiter"] = limiter  # the limit wrappers only hold it weakly
    for blueprint in (app.blueprints["api"], app.blueprints["open311"]):
        limiter.limit(settings["rate_limit"], key_func=_token_or_address)(blueprint)
    # A decorated limit is checked inside the decorator's wrapper: the registered view must be that wrapper.
    login = app.view_functions["auth.login"]
    login = limiter.limit(settings["login_rate_limit"], key_func=_login_key, methods=["POST"])(login)
    login = limiter.limit(settings["login_address_rate_limit"], key_func=_login_address_key, methods=["POST"])(login)
    app.view_functions["auth.login"] = login
    # What reads many rows per request: verifying every chain and exports always, lists when they search text.
    for endpoint in ("audit.verify_all", "exports.cases_csv", "exports.cases_xlsx"):
        app.view_functions[endpoint] = limiter.limit(settings.get("heavy_rate_limit", "10 per minute"),
                                                     key_func=_user_or_address)(app.view_functions[endpoint])
    search = settings.get("search_rate_limit", "60 per minute")
    app.view_functions["cases.index"] = limiter.limit(search, key_func=_user_or_address,
                                                      exempt_when=_no_search_text)(app.view_functions["cases.index"])
    # Every audit search scans events (up to 20,000 a page), whatever it filters by.
    app.view_functions["audit.search"] = limiter.limit(search, key_func=_user_or_address)(
        app.view_functions["audit.search"])
    # A resident's cases by phone (the page, and the intake's look-up as the phone is typed): a few digits scan.
    for endpoint in ("residents.index", "residents.lookup"):
        app.view_functions[endpoint] = limiter.limit(search, key_func=_user_or_address)(app.view_functions[endpoint])
    # The public resident form and the status look-up, per address: filing floods and guessing the phone's digits.
    public = app.config["GRIDLOOP"].get("public", {})
    for endpoint, limit in (("public.request_form", public.get("rate_limit", "5 per hour")),
                            ("public.status", public.get("status_rate_limit", "20 per hour"))):
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = limiter.limit(limit, key_func=get_remote_address, methods=["POST"])(
                app.view_functions[endpoint])
    return limiter


__all__ = ["init_app"]
