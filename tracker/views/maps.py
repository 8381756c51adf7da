"""The staff grid map: a community's grids and buildings with their open and overdue cases; a building's
cases; the nearest building to the phone's position for the intake form."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import labels, maps
from ..db import get_session
from ..models import Building, Community, Role
from ..permissions import Permission, audits_district, can, community_ids, department_ids, grid_ids
from ..queries import places
from . import due_window

bp = Blueprint("maps", __name__, url_prefix="/map")


def _communities() -> list[Community]:
    """Return the communities whose map the user may open: where they hold a role (all: admins, district
    auditors, department handlers, whose cases may lie anywhere)."""
    every = places.communities(get_session())
    if current_user.is_admin or audits_district(current_user) or department_ids(current_user):
        return list(every)
    mine = community_ids(current_user) | {g.community_id for g in places.grids_by_id(
        get_session(), grid_ids(current_user, Role.GRID_MEMBER, Role.GRID_LEADER)).values()}
    return [c for c in every if c.id in mine]


@bp.route("/")
@login_required
def index():
    """Open the map of the user's community (a list when they cover several)."""
    found = _communities()
    if len(found) == 1:
        return redirect(url_for("maps.community", community_id=found[0].id))
    return render_template("maps/index.html", communities=found)


@bp.route("/communities/<int:community_id>")
@login_required
def community(community_id: int):
    """The grid map of a community: each building with its open and overdue cases (those the user may read)."""
    db = get_session()
    row = db.get(Community, community_id) or abort(404)
    if row.id not in {c.id for c in _communities()}:
        abort(403)
    category = request.args.get("category", "").strip()
    if category not in current_app.config["GRIDLOOP"]["categories"]:
        category = ""
    grids = places.community_grids(db, row.id)
    counts = places.building_case_counts(db, current_user, row.id, category, due_window())
    drawn = [maps.MapBuilding(b.id, g.id, b.name, b.latitude, b.longitude,
                              href=url_for("maps.building", building_id=b.id, category=category or None),
                              open_cases=counts.get(b.id, (0, 0))[0], overdue_cases=counts.get(b.id, (0, 0))[1])
             for g in grids for b in g.buildings]
    svg = maps.draw([maps.MapGrid(g.id, g.code, g.name) for g in grids], drawn, counts=True,
                    title=_("Grid map of %(name)s", name=row.name),
                    labels={"open": _("open"), "overdue": _("overdue")})
    return render_template("maps/community.html", community=row, grids=grids, buildings=drawn, map_svg=svg,
                           category=category, categories=labels.category_choices(),
                           total_open=sum(b.open_cases for b in drawn),
                           total_overdue=sum(b.overdue_cases for b in drawn),
                           unplaced=[b for b in drawn if not b.placed])


@bp.route("/buildings/<int:building_id>")
@login_required
def building(building_id: int):
    """A building's cases the user may read (open ones unless all are asked for), newest first."""
    db = get_session()
    row = db.get(Building, building_id) or abort(404)
    if row.grid.community_id not in {c.id for c in _communities()}:
        abort(403)
    category = request.args.get("category", "").strip()
    if category not in current_app.config["GRIDLOOP"]["categories"]:
        category = ""
    everything = request.args.get("all") == "1"
    cases = [c for c in places.building_cases(db, current_user, row.id, category, not everything)
             if can(current_user, Permission.CASE_READ, c)]
    return render_template("maps/building.html", building=row, cases=cases, category=category,
                           everything=everything, categories=labels.category_choices())


@bp.route("/nearest")
@login_required
def nearest():
    """Return the building nearest to ?lat=&lon= where the user records cases (JSON, for the intake form)."""
    try:
        lat, lon = float(request.args.get("lat", "")), float(request.args.get("lon", ""))
    except ValueError:
        return jsonify(building_id=None, message=_("The position could not be read.")), 400
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return jsonify(building_id=None, message=_("The position could not be read.")), 400
    within = float(current_app.config["GRIDLOOP"].get("public", {}).get("locate_metres", 500))
    found = places.nearest_recordable_building(get_session(), current_user, lat, lon, within)
    if found is None:
        return jsonify(building_id=None, message=_("No building of your grids within %(metres)d m; choose it from "
                                                   "the list.", metres=int(within)))
    row, metres = found
    return jsonify(building_id=row.id, name=row.name, distance_m=round(metres),
                   message=_("Nearest: %(name)s, about %(metres)d m away.", name=row.name, metres=round(metres)))
