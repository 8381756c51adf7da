"""How notifications reach people besides the app: each person's channels, and the administrators' delivery log."""

from __future__ import annotations

import json

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from ..codes import DeliveryStatus
from ..db import get_session
from ..forms import DeliveryForm, build_command
from ..queries.delivery import delivery_counts, delivery_log
from ..services import delivery
from ..services.commands import SetDeliveryPreference

bp = Blueprint("preferences", __name__)


def _channels() -> tuple[str, ...]:
    """Return the channels this deployment has set up (config [delivery])."""
    return tuple(c.value for c in delivery.configured_channels(current_app.config["GRIDLOOP"].get("delivery", {})))


@bp.route("/profile/messages", methods=["GET", "POST"])
@login_required
def messages():
    """Choose whether my notifications also go out by e-mail and by text message / WeChat Work."""
    db = get_session()
    form = DeliveryForm() if request.method == "POST" else DeliveryForm(obj=delivery.preference(db, current_user))
    if request.method == "POST":
        command = build_command(form, SetDeliveryPreference)
        if command is not None:
            delivery.set_preference(db, current_user, command.email, command.email_on, command.webhook_on)
            flash(_("Saved: your notifications go out as you chose."), "success")
            return redirect(url_for("preferences.messages"))
    return render_template("preferences/messages.html", form=form, channels=_channels(),
                           phone=current_user.phone), 422 if form.errors else 200


def _require_admin() -> None:
    """Only administrators read the delivery log (it names people and their addresses)."""
    if not current_user.is_admin:
        abort(403)


@bp.route("/deliveries")
@login_required
def log():
    """The delivery log: every message, its channel, attempts, last error and when it was sent."""
    _require_admin()
    status = request.args.get("status", "")
    if status not in {s.value for s in DeliveryStatus}:
        status = ""
    db = get_session()
    return render_template("preferences/deliveries.html", rows=delivery_log(db, status or None), status=status,
                           counts=delivery_counts(db), statuses=[s.value for s in DeliveryStatus],
                           channels=_channels(), form=FlaskForm(),
                           params=lambda n: json.loads(n.params or "{}"))


@bp.post("/deliveries/<int:delivery_id>/retry")
@login_required
def retry(delivery_id: int):
    """Send a given-up message again (after fixing the address or the gateway)."""
    _require_admin()
    if not FlaskForm().validate_on_submit():
        abort(400)
    if delivery.retry(get_session(), delivery_id) is None:
        abort(404)
    flash(_("The message is back in the outbox and goes out with the next run."), "success")
    return redirect(url_for("preferences.log"))
