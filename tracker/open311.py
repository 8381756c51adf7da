"""Open311 GeoReport v2 building blocks: documents in JSON or XML, errors, time and place helpers.

Nothing here reads the request: the blueprint in ``views/open311.py`` passes what it needs.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app
from lxml import etree
from sqlalchemy import and_, literal, or_, select
from sqlalchemy.orm import Session

from .models import Building

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this server's Open311 interface last changed (the discovery document's changeset).
CHANGESET = "2026-11-22T00:00:00+08:00"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
#: XML element of one item in a list-valued field (JSON keeps plain arrays).
LIST_ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}
#: A request's lat/long resolves to the nearest building with coordinates at most this far away.
NEAR_METRES = 500.0
EARTH_RADIUS_METRES = 6_371_008.8
#: Characters XML 1.0 cannot carry at all (control characters); dropped from text rather than failing.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """A request the Open311 interface refuses: an HTTP status and one message per problem found."""

    def __init__(self, code: int, *descriptions: str):
        self.code = code
        self.descriptions = descriptions or ("error",)
        super().__init__("; ".join(self.descriptions))


def render(fmt: str, root: str, item: str | None, payload: Any, status: int = 200) -> Response:
    """Return ``payload`` as a JSON or XML response; a list becomes ``<root><item>…</item>…</root>``."""
    if fmt == "xml":
        body = xml_document(root, item, payload)
    else:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return current_app.response_class(body, status=status, content_type=CONTENT_TYPES[fmt])


def error_response(fmt: str, error: Open311Error) -> Response:
    """Return Open311's error document: ``[{"code": …, "description": …}]`` or ``<errors><error>``."""
    errors = [{"code": error.code, "description": text} for text in error.descriptions]
    response = render(fmt, "errors", "error", errors, error.code)
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="open311"'
    return response


def xml_document(root: str, item: str | None, payload: Any) -> bytes:
    """Serialize a list of objects (under ``item`` elements) or one object as UTF-8 XML."""
    element = etree.Element(root)
    if item is None:
        _fill(element, payload)
    else:
        for entry in payload:
            _fill(etree.SubElement(element, item), entry)
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _fill(element: etree._Element, value: Any) -> None:
    """Put a value into an element: objects become child elements, lists repeat the item element."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            if isinstance(child, Sequence) and not isinstance(child, str):
                holder = etree.SubElement(element, key)
                for entry in child:
                    _fill(etree.SubElement(holder, LIST_ITEMS[key]), entry)
            else:
                _fill(etree.SubElement(element, key), child)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))


def iso_local(value: dt.datetime | None, zone: str) -> str | None:
    """Format a stored UTC time as W3C/ISO 8601 in the app's zone, e.g. 2026-11-23T09:30:00+08:00."""
    if value is None:
        return None
    return value.astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")


def parse_w3c(value: str, zone: str) -> dt.datetime:
    """Parse a W3C datetime (or date); without an offset it is read in the app's zone. Raise ValueError."""
    parsed = dt.datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(dt.UTC)


def distance_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle (haversine) distance between two WGS-84 points."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_METRES * math.asin(math.sqrt(min(1.0, h)))


def nearest_building(session: Session, lat: float, lon: float) -> Building | None:
    """Return the building with coordinates nearest to (lat, lon), if one is within ``NEAR_METRES``."""
    dlat = math.degrees(NEAR_METRES / EARTH_RADIUS_METRES)
    # A box around the point narrows the search in SQL; near the poles it spans every longitude.
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    rows = session.scalars(select(Building).where(
        Building.latitude.between(lat - dlat, lat + dlat),
        Building.longitude.between(lon - dlon, lon + dlon))).all()
    ranked = sorted((distance_metres(lat, lon, b.latitude, b.longitude), b.id, b) for b in rows)
    return ranked[0][2] if ranked and ranked[0][0] <= NEAR_METRES else None


def buildings_named_in(session: Session, text: str) -> list[Building]:
    """Return the buildings whose name or address equals ``text`` or is contained in it, best match first.

    The best match is the longest name or address found (``11号楼院`` beats ``1号楼院`` in
    ``幸福路11号楼院``); the list holds every building tied for it, so a caller can spot ambiguity.
    """
    text = text.strip()
    if not text:
        return []
    probe = literal(text)
    # LIKE narrows in SQL (a % or _ in a name would only widen it); the substring test below decides.
    rows = session.scalars(select(Building).where(or_(
        probe.like("%" + Building.name + "%"),
        and_(Building.address != "", probe.like("%" + Building.address + "%"))))).all()
    scored = [(_match_length(b, text), b) for b in rows]
    scored = [(score, b) for score, b in scored if score > 0]
    if not scored:
        return []
    best = max(score for score, _ in scored)
    return sorted((b for score, b in scored if score == best), key=lambda b: b.id)


def _match_length(building: Building, text: str) -> int:
    """Score how specifically ``text`` names the building: an exact match wins, then the longest part found."""
    parts = [p for p in (building.name, building.address) if p]
    if text in parts:
        return 10_000
    return max((len(p) for p in parts if p in text), default=0)


__all__ = ["CHANGESET", "CONTENT_TYPES", "NEAR_METRES", "Open311Error", "SPECIFICATION", "buildings_named_in",
           "distance_metres", "error_response", "iso_local", "nearest_building", "parse_w3c", "render",
           "xml_document"]
