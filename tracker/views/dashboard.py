"""The numbers: dashboards for leaders, the street office and auditors, reports and hotspots."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__)
