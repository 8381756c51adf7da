"""Public pages, no login: the grid notice (网格公示), a grid's printable poster, the resident form its QR
code opens, and the status page where a resident follows a case (事事有回音).

They show no one's personal data: staff appear with the phone an administrator marked public, and a
case only by its stage and the reply given, to whoever knows its number and the phone's last four
digits. Filing and looking up are rate-limited per address (``[public]``, see ratelimit.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import segno
from flask import Blueprint, abort, current_app, redirect, render_template, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup

from .. import labels, maps
from ..codes import Channel
from ..db import get_session
from ..errors import DomainError
from ..forms import NO_CHOICE, PublicRequestForm, StatusForm, add_service_error, build_command, choices
from ..models import Community, Grid, Role, User
from ..queries import places
from ..services import public
from ..services.commands import RecordCase
from . import public_base_url, services

bp = Blueprint("public", __name__, url_prefix="/public")

#: What a resident is told about each stage of the loop: no names, no inner steps.
STAGES = {
    "recording": _l("Received: a grid member will contact you"),
    "dispatching": _l("Received: being assigned to a handler"),
    "handling": _l("Being handled"),
    "extension_review": _l("Being handled"),
    "callback": _l("Handled: we will call you to ask if you are satisfied"),
    "archive_review": _l("Completed"),
    "archived": _l("Completed"),
}


def _community(community_id: int) -> Community:
    """Load a community or 404."""
    return get_session().get(Community, community_id) or abort(404)


def _grid(grid_id: int) -> Grid:
    """Load a grid or 404."""
    return get_session().get(Grid, grid_id) or abort(404)


def public_phone(user: User) -> str:
    """Return the phone the notice shows for a person: the duty phone, else their phone, if marked public."""
    if not user.public_phone:
        return ""
    return user.duty_phone or user.phone


def _notice_grids(grids) -> list[dict]:
    """Return what the notice shows of each grid: buildings, services, hours, staff with public phones."""
    staff = places.grid_staff(get_session(), [g.id for g in grids])
    return [{"grid": g, "services": [s.strip() for s in g.service_items.splitlines() if s.strip()],
             "leaders": [(u.display_name, public_phone(u)) for r, u in staff.get(g.id, []) if r == Role.GRID_LEADER],
             "members": [(u.display_name, public_phone(u)) for r, u in staff.get(g.id, []) if r == Role.GRID_MEMBER]}
            for g in grids]


def _map(grids, title: str) -> Markup:
    """Draw the grids and their buildings (no counts: the public map shows places only)."""
    return maps.draw([maps.MapGrid(g.id, g.code, g.name) for g in grids],
                     [maps.MapBuilding(b.id, g.id, b.name, b.latitude, b.longitude)
                      for g in grids for b in g.buildings],
                     title=title)


@bp.route("/")
def index():
    """List the communities whose notice can be read."""
    return render_template("public/index.html", communities=places.communities(get_session()))


@bp.route("/communities/<int:community_id>")
def notice(community_id: int):
    """The grid notice (网格公示) of a community: its map, and each grid's buildings, services, hours and staff."""
    community = _community(community_id)
    grids = places.community_grids(get_session(), community.id)
    return render_template("public/notice.html", community=community, rows=_notice_grids(grids),
                           map_svg=_map(grids, _("Grid map of %(name)s", name=community.name)))


def request_url(grid_id: int) -> str:
    """Return the full address of a grid's resident form, as the QR code carries it."""
    return public_base_url() + url_for("public.request_form", grid_id=grid_id)


@bp.route("/grids/<int:grid_id>/poster")
def poster(grid_id: int):
    """A grid's printable A4 poster: map, staff, services, hours and the QR code of the resident form."""
    grid = _grid(grid_id)
    grids = places.community_grids(get_session(), grid.community_id)
    target = request_url(grid.id)
    qr = Markup(segno.make(target, error="m").svg_inline(scale=5, omitsize=True, title=_("Scan to file a request")))
    return render_template("public/poster.html", row=_notice_grids([grid])[0], target=target, qr=qr,
                           status_url=public_base_url() + url_for("public.status"),
                           map_svg=_map([g for g in grids if g.id == grid.id], grid.name))


# -- the resident form ------------------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    """Sign challenges with the app's secret key."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="gridloop.public.challenge")


def _digest(nonce: str, answer: str) -> str:
    """Bind an answer to a challenge without putting the answer in the (readable) signed token."""
    key = hashlib.sha256(current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, f"{nonce}:{answer}".encode(), hashlib.sha256).hexdigest()


def new_challenge() -> tuple[str, str]:
    """Return a small sum to answer and its signed token, e.g. ("3 + 5 = ?", token)."""
    a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
    nonce = secrets.token_hex(8)
    return f"{a} + {b} = ?", _serializer().dumps({"n": nonce, "d": _digest(nonce, str(a + b))})


def challenge_passed(token: str, answer: str) -> bool:
    """Whether ``answer`` solves the signed challenge, within ``[public] challenge_minutes``."""
    minutes = current_app.config["GRIDLOOP"].get("public", {}).get("challenge_minutes", 30)
    try:
        data = _serializer().loads(token or "", max_age=minutes * 60)
    except BadSignature:  # also SignatureExpired
        return False
    if not isinstance(data, dict) or not isinstance(data.get("n"), str) or not isinstance(data.get("d"), str):
        return False
    return hmac.compare_digest(data["d"], _digest(data["n"], answer.strip()))


def _request_form(grid: Grid) -> PublicRequestForm:
    """Build the resident form with the grid's buildings and the categories."""
    form = PublicRequestForm()
    form.building_id.choices = choices([(NO_CHOICE, "—")] + [(b.id, b.name) for b in grid.buildings])
    form.category.choices = choices(labels.category_choices())
    return form


@bp.route("/grids/<int:grid_id>/request", methods=["GET", "POST"])
def request_form(grid_id: int):
    """The resident form: file a request into the grid's intake (channel qr_code, door public)."""
    grid = _grid(grid_id)
    form = _request_form(grid)
    status = 200
    if form.is_submitted():
        status = 422
        passed = challenge_passed(form.challenge.data or "", form.answer.data or "")
        command = build_command(form, RecordCase, channel=Channel.QR_CODE, answered_on_spot=None)
        if not passed and not form.answer.errors:
            form.answer.errors = [*form.answer.errors, _("Wrong answer; solve the new question.")]
        if command is not None and passed:
            if command.building_id not in {b.id for b in grid.buildings}:
                form.building_id.errors = [_("Choose your building compound from the list.")]
            else:
                try:
                    case = public.file_request(services(), command)
                except DomainError as exc:
                    get_session().rollback()
                    add_service_error(form, exc)
                else:
                    session["public_filed"] = case.number
                    return redirect(url_for("public.filed"))
    question, form.challenge.data = new_challenge()
    form.answer.data = ""
    return render_template("public/request.html", grid=grid, form=form, question=question), status


@bp.route("/filed")
def filed():
    """Tell the resident their case number once, after filing."""
    number = session.pop("public_filed", None)
    if number is None:
        return redirect(url_for("public.status"))
    return render_template("public/filed.html", number=number)


@bp.route("/status", methods=["GET", "POST"])
def status():
    """Follow a case by its number and the phone's last four digits: the stage and the reply, nothing else."""
    form = StatusForm()
    found, code = None, 200
    if form.is_submitted():
        code = 422
        if form.validate():
            found = public.follow(get_session(), form.number.data, form.last_four.data)
            if found is None:
                form.form_errors.append(_("No case matches this number and phone; check both and try again."))
            else:
                code = 200
    shown = None if found is None else {
        "number": found.number, "filed_on": found.created_at, "category": labels.category_label(found.category),
        "stage": STAGES.get(found.status, found.status), "reply": found.reply,
        "done": found.status in ("archive_review", "archived")}
    return render_template("public/status.html", form=form, case=shown), code
