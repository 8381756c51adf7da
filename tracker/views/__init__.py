"""Blueprints: one module each; views validate, load, authorize, call one service, respond."""

from __future__ import annotations

import logging
import re
from zoneinfo import ZoneInfo

from flask import current_app, g, request

from .. import clock
from ..db import get_session
from ..deadlines import DueWindow
from ..models import ApiToken, User
from ..services import Services, for_app, tokens

#: Where GridLoop is reached when ``[app] public_base_url`` is empty: the demo's own address (``make run``).
DEMO_BASE_URL = "http://127.0.0.1:5000"
#: An ``api_key`` (or ``access_token``) parameter in a logged request line, up to its end; the underscore may
#: come percent-encoded, as the server decodes it.
_KEY_IN_URL = re.compile(r"((?:api(?:_|%5f)key|access(?:_|%5f)token)=)[^&\s\"]*", re.IGNORECASE)


def services() -> Services:
    """Return the service dependencies for this request."""
    return for_app(current_app, get_session())


def local_zone() -> ZoneInfo:
    """Return the configured time zone: the one every screen shows times in and date filters mean."""
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def due_window() -> DueWindow:
    """Return what counts as overdue and due soon now, on the app's clock and ``[deadlines] due_soon_hours``."""
    return DueWindow.at(clock.now(), current_app.config["GRIDLOOP"]["deadlines"])


def presented_token(api_key_field: bool = False) -> str:
    """Return the API token a program sent: the bearer header, else (Open311) the ``api_key`` form field.

    Never a query parameter: servers and proxies log the request line, and the secret with it.
    """
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if api_key_field:
        return (request.form.get("api_key") or "").strip()
    return ""


def presented_api_token(api_key_field: bool = False) -> ApiToken | None:
    """Return the live token the request presents, looked up once per request (the rate limit asks too).

    None when there is none or it is refused; ``token_expired()`` then says whether it had expired.
    """
    if "gridloop_token" not in g:
        secret = presented_token(api_key_field)
        g.gridloop_token, g.gridloop_token_expired = None, None
        try:
            g.gridloop_token = tokens.authenticate(get_session(), secret) if secret else None
        except tokens.TokenExpired as exc:
            g.gridloop_token_expired = exc
    return g.gridloop_token


def token_expired() -> tokens.TokenExpired | None:
    """Return why the presented token was refused if it was because it expired (after presented_api_token)."""
    return g.get("gridloop_token_expired")


def token_user(api_key_field: bool = False) -> User | None:
    """Return the user of the presented live token, or None."""
    token = presented_api_token(api_key_field)
    return token.user if token is not None else None


def public_base_url() -> str:
    """Return the address the public reaches GridLoop at: ``[app] public_base_url``, never the Host header.

    A Host header is whatever the client sends; echoing it would let anyone make discovery documents
    (and anything built on them) point at their own server.
    """
    return current_app.config["GRIDLOOP"]["app"]["public_base_url"].strip().rstrip("/") or DEMO_BASE_URL


class _HideKeysInUrls(logging.Filter):
    """Blank out api_key=... in access-log lines, in case a program still puts its token in a URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message without the secret; keep the record."""
        message = record.getMessage()
        if _KEY_IN_URL.search(message):
            record.msg, record.args = _KEY_IN_URL.sub(r"\1[hidden]", message), None
        return True


_HIDE_KEYS = _HideKeysInUrls()


def hide_keys_in_access_logs() -> None:
    """Filter the access logs of werkzeug's server and gunicorn (idempotent: one filter instance)."""
    for name in ("werkzeug", "gunicorn.access"):
        logging.getLogger(name).addFilter(_HIDE_KEYS)
