"""The installable web app: its manifest and its service worker, served at the site's root scope."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory

bp = Blueprint("offline", __name__)


@bp.route("/sw.js")
def service_worker():
    """Serve the service worker from the root, so it may control every page (its scope is "/")."""
    response = send_from_directory(current_app.static_folder or "static", "sw.js", mimetype="text/javascript",
                                   max_age=0)
    # A browser checks for a new worker at each navigation; like every page it is sent "no-store" (web.py),
    # so no proxy keeps an old one.
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.route("/manifest.webmanifest")
def manifest():
    """Serve the web app manifest (name, icons, start page) that lets a phone install GridLoop."""
    return send_from_directory(current_app.static_folder or "static", "manifest.webmanifest",
                               mimetype="application/manifest+json", max_age=3600)
