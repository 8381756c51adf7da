"""The demo clock: move the app's time forward to watch reminders, supervision and escalation.

Only exists when ``[demo] clock_hook`` is on (``make run`` turns it on); in production the routes
answer 404 and the clock is the wall clock. The offset is kept in the database so every process
(web workers, ``flask scheduler``) follows it.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms.validators import InputRequired

from .. import clock, jobs
from ..db import get_session
from ..forms import choices
from ..models import Setting

bp = Blueprint("demo", __name__, url_prefix="/demo")
KEY = "demo_clock_offset_seconds"
STEPS = {"1h": dt.timedelta(hours=1), "6h": dt.timedelta(hours=6), "1d": dt.timedelta(days=1),
         "3d": dt.timedelta(days=3), "7d": dt.timedelta(days=7)}


class ClockForm(FlaskForm):
    step = RadioField(choices=choices([(k, k) for k in STEPS]), default="1d", validators=[InputRequired()])


def load_offset() -> None:
    """Follow the offset stored in the database (called per request when the hook is on)."""
    row = get_session().get(Setting, KEY)
    clock.set_offset(dt.timedelta(seconds=float(row.value)) if row else dt.timedelta(0))


def advance(session, delta: dt.timedelta) -> dt.timedelta:
    """Move the stored offset forward by ``delta``; return the new offset."""
    row = session.get(Setting, KEY)
    current = dt.timedelta(seconds=float(row.value)) if row else dt.timedelta(0)
    new = current + delta
    if row is None:
        session.add(Setting(key=KEY, value=str(new.total_seconds())))
    else:
        row.value = str(new.total_seconds())
    clock.set_offset(new)
    return new


def reset(session) -> dt.timedelta:
    """Put the clock back on the real time (the stored offset goes); return how far ahead it was."""
    row = session.get(Setting, KEY)
    was = dt.timedelta(seconds=float(row.value)) if row else dt.timedelta(0)
    if row is not None:
        session.delete(row)
    clock.set_offset(dt.timedelta(0))
    return was


def ahead(offset: dt.timedelta) -> str:
    """Say how far ahead the clock is, in the reader's language (a timedelta prints "3 days, 0:00:00")."""
    hours = int(offset.total_seconds() // 3600)
    return _("%(days)d days %(hours)d hours", days=hours // 24, hours=hours % 24)


def _enabled() -> None:
    """404 unless the demo hook is configured on; 403 unless an administrator asks (it moves everyone's time)."""
    if not current_app.config["GRIDLOOP"].get("demo", {}).get("clock_hook"):
        abort(404)
    if not current_user.is_admin:
        abort(403)


@bp.route("/clock", methods=["GET", "POST"])
@login_required
def index():
    """Show the demo clock; POST moves it forward and runs the jobs at the new time."""
    _enabled()
    form = ClockForm()
    if form.validate_on_submit():
        db = get_session()
        before = clock.now()
        advance(db, STEPS[form.step.data])
        db.commit()
        app = current_app._get_current_object()
        zone = app.extensions["gridloop.calendar"].zone
        day = before.astimezone(zone).date()
        while day < clock.now().astimezone(zone).date():  # visits of every day passed over
            day += dt.timedelta(days=1)
            jobs.start_visits(app, day)
        totals = jobs.tick(app)
        flash(_("Clock moved to %(now)s; %(fired)d timers fired.", now=clock.now().astimezone(zone)
                .strftime("%Y-%m-%d %H:%M"), fired=totals.fired), "success")
        return redirect(url_for("demo.index"))
    return render_template("demo/clock.html", form=form, reset_form=FlaskForm(), now=clock.now(),
                           offset=clock.offset(), ahead=ahead(clock.offset()))


@bp.post("/clock/reset")
@login_required
def reset_clock():
    """Put the app's clock back on the real time (what happened while it was ahead stays recorded)."""
    _enabled()
    if not FlaskForm().validate_on_submit():
        abort(400)
    was = reset(get_session())
    get_session().commit()
    flash(_("Clock reset to the real time; it was %(ahead)s ahead.", ahead=ahead(was)), "success")
    return redirect(url_for("demo.index"))
