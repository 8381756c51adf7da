"""Placeholder: filled in by the work on issue 6."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__)
