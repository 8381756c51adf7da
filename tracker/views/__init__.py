"""Blueprints: one module each; views validate, load, authorize, call one service, respond."""

from __future__ import annotations

from flask import g, request

from ..db import get_session
from ..models import User
from ..services import tokens


def presented_token(api_key_field: bool = False) -> str:
    """Return the API token a program sent: the bearer header, else (Open311) the ``api_key`` field."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if api_key_field:
        return (request.form.get("api_key") or request.args.get("api_key") or "").strip()
    return ""


def token_user(api_key_field: bool = False) -> User | None:
    """Return the user of the presented token, looked up once per request (the rate limit asks too)."""
    if "gridloop_token_user" not in g:
        secret = presented_token(api_key_field)
        g.gridloop_token_user = tokens.authenticate(get_session(), secret) if secret else None
    return g.gridloop_token_user
