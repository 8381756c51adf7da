"""A community's grids and buildings drawn as a schematic SVG map from the buildings' coordinates.

Drawn on the server, with no map tiles from outside (government intranets are often cut off from the
internet): each grid is a shaded area around its buildings, each building a dot with its name. The
public grid notice draws it plain; the staff map adds each building's open and overdue cases and a
link. Pure functions of plain values: no database, no Flask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Area fills and their outlines, one pair per grid in turn.
PALETTE = (("#e0f2fe", "#0284c7"), ("#fef3c7", "#d97706"), ("#dcfce7", "#16a34a"), ("#fce7f3", "#db2777"),
           ("#ede9fe", "#7c3aed"), ("#ffedd5", "#ea580c"), ("#e0e7ff", "#4f46e5"), ("#f1f5f9", "#475569"))
#: The drawing's size in SVG units; it scales to its box (viewBox), so a phone shows it whole.
WIDTH, HEIGHT, MARGIN, PAD = 640.0, 420.0, 46.0, 20.0


@dataclass(frozen=True)
class MapGrid:
    """A grid to draw."""

    id: int
    code: str
    name: str


@dataclass(frozen=True)
class MapBuilding:
    """A building to draw: where it is, and on the staff map its cases and where clicking it leads."""

    id: int
    grid_id: int
    name: str
    latitude: float | None
    longitude: float | None
    href: str = ""
    open_cases: int = 0
    overdue_cases: int = 0

    @property
    def placed(self) -> bool:
        """Whether the building has coordinates (buildings without are listed beside the map)."""
        return self.latitude is not None and self.longitude is not None


def project(buildings: Sequence[MapBuilding]) -> dict[int, tuple[float, float]]:
    """Return each placed building's (x, y) in the drawing: north up, distances kept in proportion.

    An equirectangular projection around the buildings' mean latitude: exact enough across a
    community (a few kilometres), and fitted into the drawing with a margin.
    """
    placed = [(b.id, b.latitude, b.longitude) for b in buildings
              if b.latitude is not None and b.longitude is not None]
    if not placed:
        return {}
    lat0 = math.radians(sum(lat for _, lat, _ in placed) / len(placed))
    raw: dict[int, tuple[float, float]] = {i: (lon * math.cos(lat0), lat) for i, lat, lon in placed}
    xs, ys = [p[0] for p in raw.values()], [p[1] for p in raw.values()]
    span = max(max(xs) - min(xs), max(ys) - min(ys)) or 1.0
    scale = min((WIDTH - 2 * MARGIN) / (max(xs) - min(xs) or span), (HEIGHT - 2 * MARGIN) / (max(ys) - min(ys) or span))
    # Centre the drawing in the box.
    dx = (WIDTH - (max(xs) - min(xs)) * scale) / 2
    dy = (HEIGHT - (max(ys) - min(ys)) * scale) / 2
    return {i: (round(dx + (x - min(xs)) * scale, 1), round(HEIGHT - dy - (y - min(ys)) * scale, 1))
            for i, (x, y) in raw.items()}


def draw(grids: Sequence[MapGrid], buildings: Sequence[MapBuilding], *, title: str, counts: bool = False,
         labels: dict[str, str] | None = None) -> Markup:
    """Return the SVG of the grids and their placed buildings.

    ``counts``: mark each building with its open cases (amber) and overdue ones (red), sized by the
    open count; ``labels`` gives the words the tooltips use ("open", "overdue").
    """
    points = project(buildings)
    words = {"open": "open", "overdue": "overdue", **(labels or {})}
    parts = [f'<svg class="gridmap" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
             f'<rect x="0" y="0" width="{WIDTH:g}" height="{HEIGHT:g}" fill="#ffffff"/>']
    for n, grid in enumerate(grids):
        spots = [points[b.id] for b in buildings if b.grid_id == grid.id and b.id in points]
        if spots:
            parts.append(_area(grid, spots, PALETTE[n % len(PALETTE)]))
    for b in buildings:
        if b.id in points:
            parts.append(_building(b, points[b.id], counts, words))
    parts.append("</svg>")
    return Markup("".join(parts))


def _area(grid: MapGrid, spots: list[tuple[float, float]], colours: tuple[str, str]) -> str:
    """Return a grid's shaded area around its buildings, with its name on top."""
    fill, stroke = colours
    left, right = min(x for x, _ in spots) - PAD, max(x for x, _ in spots) + PAD
    top, bottom = min(y for _, y in spots) - PAD - 12, max(y for _, y in spots) + PAD
    return (f'<g class="grid-area" data-grid="{grid.id}"><rect x="{left:g}" y="{top:g}" width="{right - left:g}" '
            f'height="{bottom - top:g}" rx="14" fill="{fill}" stroke="{stroke}" stroke-width="2" '
            f'stroke-dasharray="6 4"/><text x="{(left + right) / 2:g}" y="{top + 14:g}" text-anchor="middle" '
            f'font-size="16" font-weight="700" fill="{stroke}">{escape(grid.name)}</text></g>')


def _building(b: MapBuilding, at: tuple[float, float], counts: bool, words: dict[str, str]) -> str:
    """Return a building's dot and name; on the staff map its case counts, as a link to its cases."""
    x, y = at
    tip = escape(b.name)
    if counts:
        radius = 6 + min(b.open_cases, 12)
        fill = "#dc2626" if b.overdue_cases else "#f59e0b" if b.open_cases else "#94a3b8"
        tip = escape(f"{b.name}: {b.open_cases} {words['open']}, {b.overdue_cases} {words['overdue']}")
        mark = (f'<circle cx="{x:g}" cy="{y:g}" r="{radius}" fill="{fill}" stroke="#ffffff" stroke-width="1.5"/>'
                f'<text x="{x:g}" y="{y + 4:g}" text-anchor="middle" font-size="11" font-weight="700" '
                f'fill="#ffffff">{b.open_cases}</text>')
        label_y = y + radius + 11
    else:
        mark = f'<circle cx="{x:g}" cy="{y:g}" r="5" fill="#334155"/>'
        label_y = y + 15
    body = (f'<title>{tip}</title>{mark}<text x="{x:g}" y="{label_y:g}" text-anchor="middle" font-size="12" '
            f'fill="#1f2933">{escape(b.name)}</text>')
    attrs = f'class="building" data-building="{b.id}" data-open="{b.open_cases}" data-overdue="{b.overdue_cases}"'
    if b.href:
        return f'<a href="{escape(b.href)}" {attrs}>{body}</a>'
    return f"<g {attrs}>{body}</g>"


__all__ = ["MapBuilding", "MapGrid", "draw", "project"]
