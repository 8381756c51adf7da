"""Draw a BPMN process as a static SVG from its diagram layout (BPMN DI), marking a case's trail.

Text in, text out: no SpiffWorkflow and no JavaScript. The styles live inside the SVG, scoped to
``svg.gl-diagram`` so that an SVG inlined in a page does not restyle the page around it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from lxml import etree

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
      "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC",
      "di": "http://www.omg.org/spec/DD/20100524/DI"}
FONTS = '"Noto Sans CJK SC", "Microsoft YaHei", sans-serif'
FONT_SIZE = 12
MARGIN = 20
LEGEND_HEIGHT = 30
#: Legend texts by state; the caller passes translated ones through ``legend``.
LEGEND = {"done": "已完成", "current": "当前", "overdue": "超期"}
_GATEWAY_MARKS = {"exclusiveGateway": "x", "parallelGateway": "+", "inclusiveGateway": "o"}
# A wrap unit: one wide (CJK) character, a run of spaces, or a run of other characters (a word).
_WIDE = "\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
_TOKEN = re.compile(f"[{_WIDE}]|\\s+|[^\\s{_WIDE}]+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_STYLE = f"""
svg.gl-diagram text {{ font-family: {FONTS}; font-size: {FONT_SIZE}px; fill: #222; }}
svg.gl-diagram .band rect {{ fill: none; stroke: #9e9e9e; }}
svg.gl-diagram .band text {{ font-weight: bold; }}
svg.gl-diagram .el .shape {{ fill: #fff; stroke: #424242; stroke-width: 1.5; }}
svg.gl-diagram .el .mark {{ fill: none; stroke: #424242; stroke-width: 1.5; }}
svg.gl-diagram .el .mark.filled {{ fill: #424242; }}
svg.gl-diagram .event.end .shape {{ stroke-width: 3; }}
svg.gl-diagram .event.non-interrupting .shape {{ stroke-dasharray: 4 2; }}
svg.gl-diagram .done .shape {{ fill: #e8f5e9; stroke: #2e7d32; }}
svg.gl-diagram .el.expanded .shape {{ fill: none; }}
svg.gl-diagram .current .shape {{ fill: #e3f2fd; stroke: #1565c0; stroke-width: 3; }}
svg.gl-diagram .overdue .shape {{ fill: #ffebee; stroke: #c62828; stroke-width: 3; }}
svg.gl-diagram .flow path {{ fill: none; stroke: #757575; stroke-width: 1.2; }}
svg.gl-diagram .flow.taken path {{ stroke: #2e7d32; stroke-width: 2.5; }}
svg.gl-diagram .flow text, svg.gl-diagram .label {{ font-size: 11px; paint-order: stroke;
  stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }}
"""
#: The Content-Security-Policy source that lets a page inline the diagram's one <style> element and nothing else.
STYLE_CSP_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode() + "'"

Box = tuple[float, float, float, float]  # x, y, width, height
Area = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]


@dataclass(frozen=True)
class _Band:
    """A pool or a lane: a named rectangle."""

    id: str
    name: str
    box: Box


@dataclass(frozen=True)
class _Node:
    """A task, gateway or event with its place in the diagram."""

    id: str
    kind: str  # task, gateway or event
    tag: str  # the BPMN element's local name: userTask, exclusiveGateway, boundaryEvent...
    name: str
    box: Box
    mark: str  # gateway mark (x + o) or event definition (timer, signal, message)
    interrupting: bool
    label_above: bool  # a boundary event on the top edge of its task
    expanded: bool = False  # a sub-process drawn open, around its own elements


@dataclass(frozen=True)
class _Flow:
    """A sequence flow and the waypoints it is drawn through."""

    id: str
    source: str
    target: str
    name: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class _Layout:
    """Everything needed to draw one process, read once per source."""

    name: str
    bands: tuple[_Band, ...]
    nodes: tuple[_Node, ...]
    flows: tuple[_Flow, ...]
    bounds: Box


def render_svg(source: str, process_id: str, *, visited: Collection[str] = (),
               taken: Collection[tuple[str, str]] = (), current: Collection[str] = (),
               overdue: Collection[str] = (), labels: Mapping[str, str] | None = None, title: str = "",
               legend: Mapping[str, str] | None = None) -> str:
    """Return the process ``process_id`` of the BPMN ``source`` as an SVG document.

    Ids are BPMN element ids; a flow is taken when its (source, target) pair is in ``taken``.
    ``overdue`` elements are drawn as current and overdue. Raises ValueError without a layout.
    """
    layout = _layout(source, process_id)
    labels, legend = labels or {}, {**LEGEND, **(legend or {})}
    visited, taken, current, overdue = set(visited), set(taken), set(current), set(overdue)
    x, y, right, bottom = layout.bounds
    width, height = right - x + 2 * MARGIN, bottom - y + 2 * MARGIN + LEGEND_HEIGHT
    title = _esc(title or layout.name)
    arrow = "gl-" + re.sub(r"[^A-Za-z0-9_-]", "_", process_id)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="gl-diagram" role="img" aria-label="{title}" '
             f'width="100%" viewBox="{_n(x - MARGIN)} {_n(y - MARGIN)} {_n(width)} {_n(height)}" '
             f'preserveAspectRatio="xMinYMin meet" font-family="{_esc(FONTS)}">',
             f"<title>{title}</title>", f"<style>{_STYLE}</style>", "<defs>",
             _marker(f"{arrow}-arrow", "#757575"), _marker(f"{arrow}-taken", "#2e7d32"), "</defs>"]
    parts += [_band(band, labels.get(band.id, band.name)) for band in layout.bands]
    state = functools.partial(_state, visited=visited, current=current, overdue=overdue)
    spots = _place_labels(layout, labels)
    # An open sub-process goes under the flows and elements inside it.
    parts += [_node(node, labels.get(node.id, node.name), state(node.id)) for node in layout.nodes if node.expanded]
    for flow in layout.flows:
        is_taken = (flow.source, flow.target) in taken
        parts.append(_flow(flow, is_taken, f"{arrow}-taken" if is_taken else f"{arrow}-arrow", spots.get(flow.id)))
    parts += [_node(node, labels.get(node.id, node.name), state(node.id), spots.get(node.id))
              for node in layout.nodes if not node.expanded]
    parts.append(_legend(x, bottom + MARGIN, legend))
    parts.append("</svg>")
    return "\n".join(parts)


def _state(node_id: str, *, visited: set[str], current: set[str], overdue: set[str]) -> str:
    """Return the state classes of a drawn element: current (and overdue), done, or none."""
    if node_id in overdue:
        return " current overdue"
    if node_id in current:
        return " current"
    return " done" if node_id in visited else ""


@functools.lru_cache(maxsize=32)
def _layout(source: str, process_id: str) -> _Layout:
    """Read the pool, lanes, nodes and flows of one process with their DI bounds and waypoints."""
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(source.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"process {process_id!r}: malformed BPMN XML: {exc}") from None
    found = root.xpath("//bpmn:process[@id=$pid]", namespaces=NS, pid=process_id)
    if not found:
        raise ValueError(f"no process {process_id!r} in the BPMN source")
    process = found[0]
    bounds = {shape.get("bpmnElement"): _bounds(shape)
              for shape in root.iterfind(".//bpmndi:BPMNShape", NS) if shape.find("dc:Bounds", NS) is not None}
    expanded = {shape.get("bpmnElement") for shape in root.iterfind(".//bpmndi:BPMNShape", NS)
                if shape.get("isExpanded") == "true"}
    waypoints = {edge.get("bpmnElement"): tuple((float(p.get("x", 0)), float(p.get("y", 0)))
                                                for p in edge.iterfind("di:waypoint", NS))
                 for edge in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    pools = root.xpath("//bpmn:participant[@processRef=$pid]", namespaces=NS, pid=process_id)
    bands = tuple(_Band(el.get("id"), el.get("name") or "", bounds[el.get("id")])
                  for el in [*pools, *process.iterfind(".//bpmn:lane", NS)] if el.get("id") in bounds)
    nodes = tuple(sorted((_read_node(el, bounds, expanded)
                          for el in process.iter() if _kind(el) and el.get("id") in bounds),
                         key=lambda n: (n.kind == "event", n.tag == "boundaryEvent")))
    if not nodes:
        raise ValueError(f"process {process_id!r} has no diagram layout (no BPMN DI shapes): "
                         "save it from a BPMN modeler so that every element has its bounds")
    flows = tuple(_Flow(el.get("id"), el.get("sourceRef", ""), el.get("targetRef", ""), el.get("name") or "",
                        waypoints[el.get("id")])
                  for el in process.iterfind(".//bpmn:sequenceFlow", NS) if len(waypoints.get(el.get("id"), ())) > 1)
    boxes = [b.box for b in bands] + [n.box for n in nodes] + [(px, py, 0, 0) for f in flows for px, py in f.points]
    extent = (min(b[0] for b in boxes), min(b[1] for b in boxes),
              max(b[0] + b[2] for b in boxes), max(b[1] + b[3] + 30 for b in boxes))  # room for labels below
    return _Layout(process.get("name") or process_id, bands, nodes, flows, extent)


def _bounds(shape: etree._Element) -> Box:
    """Return a BPMNShape's bounds."""
    b = shape.find("dc:Bounds", NS)
    return tuple(float(b.get(k, 0)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def _local(el: etree._Element) -> str:
    """Return an element's tag without namespace ('' for comments)."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _kind(el: etree._Element) -> str:
    """Return 'task', 'gateway' or 'event' for a drawable flow node, else ''."""
    tag = _local(el)
    if tag in ("task", "subProcess", "callActivity", "transaction") or tag.endswith("Task"):
        return "task"
    return "gateway" if tag.endswith("Gateway") else "event" if tag.endswith("Event") else ""


def _read_node(el: etree._Element, bounds: Mapping[str, Box], expanded: Collection[str]) -> _Node:
    """Build a node from its BPMN element; ``expanded`` names the sub-processes drawn open."""
    tag, box = _local(el), bounds[el.get("id")]
    mark = _GATEWAY_MARKS.get(tag, "")
    for child in el:
        if _local(child).endswith("EventDefinition"):
            mark = _local(child).removesuffix("EventDefinition")
    host = bounds.get(el.get("attachedToRef", ""))
    above = host is not None and box[1] + box[3] / 2 < host[1] + host[3] / 2
    return _Node(el.get("id"), _kind(el), tag, el.get("name") or "", box, mark,
                 el.get("cancelActivity", "true") != "false", above, el.get("id") in expanded and tag == "subProcess")


def _band(band: _Band, name: str) -> str:
    """Draw a pool or lane with its name written vertically in its left strip."""
    x, y, w, h = band.box
    lines = _wrap(name, h - 10, 1)
    cx, cy = x + 15, y + h / 2
    text = (f'<text x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle" dominant-baseline="central" '
            f'transform="rotate(-90 {_n(cx)} {_n(cy)})">{_esc(lines[0] if lines else "")}</text>')
    return (f'<g class="band" data-id="{_esc(band.id)}"><rect x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" '
            f'height="{_n(h)}"/>{text}</g>')


def _flow(flow: _Flow, taken: bool, marker: str, spot: _Spot | None) -> str:
    """Draw a sequence flow through its waypoints, with its name where ``_place_labels`` put it."""
    points = " ".join(f"{_n(px)},{_n(py)}" for px, py in flow.points)
    parts = [f'<g class="flow{" taken" if taken else ""}" data-id="{_esc(flow.id)}">',
             f'<path d="M {points.replace(" ", " L ")}" marker-end="url(#{marker})"/>']
    if spot is not None:
        parts.append(spot.text())
    return "".join(parts) + "</g>"


# -- labels outside shapes: placed clear of lines, shapes and each other ---------------------------

@dataclass(frozen=True)
class _Spot:
    """Where a label outside a shape goes: its lines, the point it hangs from and how it hangs there."""

    lines: tuple[str, ...]
    x: float
    y: float
    valign: str  # y is the top, middle or end of the lines (as ``_text`` takes it)
    anchor: str  # x is the start, middle or end of the lines
    cls: str = ""

    def text(self) -> str:
        """Return the SVG text element."""
        return _text(list(self.lines), self.x, self.y, self.valign, anchor=self.anchor, cls=self.cls)

    def area(self) -> Area:
        """Return the area the drawn lines cover, with a pixel to spare."""
        step, count = FONT_SIZE * 1.25, len(self.lines)
        first = {"start": self.y + FONT_SIZE, "middle": self.y - (count - 1) * step / 2 + FONT_SIZE * 0.35,
                 "end": self.y - (count - 1) * step}[self.valign]
        width = max(_width(line) for line in self.lines)
        left = {"start": self.x, "middle": self.x - width / 2, "end": self.x - width}[self.anchor]
        bottom = first + (count - 1) * step + FONT_SIZE * 0.2
        return left - 1, first - FONT_SIZE * 0.85 - 1, left + width + 1, bottom + 1


def _place_labels(layout: _Layout, names: Mapping[str, str]) -> dict[str, _Spot]:
    """Choose a spot for every event, gateway and flow name: the first of its candidate spots that crosses
    no flow and covers no shape and no label already placed, else the one with the fewest such clashes."""
    segments = [(a, b) for flow in layout.flows for a, b in zip(flow.points, flow.points[1:])]
    for x, y, w, h in (node.box for node in layout.nodes if node.expanded):  # an open sub-process: its border
        corners = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        segments += list(zip(corners, corners[1:] + corners[:1]))
    shapes = [(x, y, x + w, y + h) for node in layout.nodes if not node.expanded for x, y, w, h in [node.box]]
    placed: dict[str, _Spot] = {}

    def clashes(area: Area) -> int:
        return (sum(_crosses(area, a, b) for a, b in segments) + sum(_overlaps(area, s) for s in shapes)
                + sum(_overlaps(area, other.area()) for other in placed.values()))

    owners = [(n.id, _node_spots(n, names.get(n.id, n.name))) for n in layout.nodes
              if n.kind in ("event", "gateway") and not n.expanded]
    owners += [(f.id, _flow_spots(f, names.get(f.id, f.name))) for f in layout.flows]
    for owner, spots in owners:
        best, fewest = None, None
        for spot in spots:
            count = clashes(spot.area())
            if fewest is None or count < fewest:
                best, fewest = spot, count
            if count == 0:
                break
        if best is not None:
            placed[owner] = best
    return placed


def _node_spots(node: _Node, name: str) -> list[_Spot]:
    """Candidate spots of an event's or gateway's name, the usual one first."""
    if not name:
        return []
    x, y, w, h = node.box
    cx, cy = x + w / 2, y + h / 2
    if node.kind == "gateway":
        lines = tuple(_wrap(name, 100, 2))
        return [_Spot(lines, px, py, valign, anchor, "label") for px, py, valign, anchor in (
            (cx + 8, y - 4, "end", "start"), (cx - 8, y - 4, "end", "end"), (cx + 8, y + h + 4, "start", "start"),
            (cx - 8, y + h + 4, "start", "end"), (x + w + 4, cy, "middle", "start"), (x - 4, cy, "middle", "end"))]
    # Boundary events sit side by side on a task's edge: first try their labels as narrow as they are.
    narrow = tuple(_wrap(name, FONT_SIZE * 4 + 2, 3) if node.tag == "boundaryEvent" else _wrap(name, 90, 2))
    wide = tuple(_wrap(name, 90, 2))
    below, above = (cx, y + h + 4, "start", "middle"), (cx, y - 4, "end", "middle")
    sides = [(x + w + 4, cy, "middle", "start"), (x - 4, cy, "middle", "end"),
             (x + w + 2, y + h + 2, "start", "start"), (x - 2, y + h + 2, "start", "end"),
             (x + w + 2, y - 2, "end", "start"), (x - 2, y - 2, "end", "end")]
    first = [above, below] if node.label_above else [below, above]
    return ([_Spot(narrow, *spot, "label") for spot in first] + [_Spot(wide, *spot, "label") for spot in sides]
            + [_Spot(wide, *spot, "label") for spot in first])


def _flow_spots(flow: _Flow, name: str) -> list[_Spot]:
    """Candidate spots of a flow's name along its segments, longest segment and middle first."""
    if not name:
        return []
    spots = []
    pieces = sorted(zip(flow.points, flow.points[1:]), key=lambda s: -(abs(s[1][0] - s[0][0]) + abs(s[1][1] - s[0][1])))
    # Close by first; then narrower (between two lines that cross the flow), then further off (past a shape).
    for narrow, offset in ((False, 6), (True, 6), (False, 24), (True, 24), (False, 40)):
        for (x1, y1), (x2, y2) in pieces:
            for t in (0.5, 0.3, 0.7, 0.15, 0.85):
                px, py = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
                if abs(x2 - x1) >= abs(y2 - y1):
                    lines = tuple(_wrap(name, FONT_SIZE * 3 + 2 if narrow else max(abs(x2 - x1), 80), 3))
                    spots += [_Spot(lines, px, py - offset, "end", "middle"),
                              _Spot(lines, px, py + offset, "start", "middle")]
                else:
                    lines = tuple(_wrap(name, FONT_SIZE * 3 + 2 if narrow else 90, 3))
                    spots += [_Spot(lines, px + offset - 1, py, "middle", "start"),
                              _Spot(lines, px - offset + 1, py, "middle", "end")]
    return spots


def _crosses(area: Area, a: Point, b: Point) -> bool:
    """Whether the straight line from ``a`` to ``b`` passes through ``area`` (Liang-Barsky clipping)."""
    (x0, y0, x1, y1), (ax, ay), (bx, by) = area, a, b
    low, high, dx, dy = 0.0, 1.0, bx - ax, by - ay
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            low = max(low, q / p)
        else:
            high = min(high, q / p)
    return low <= high


def _overlaps(first: Area, second: Area) -> bool:
    """Whether two areas overlap."""
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]


def _node(node: _Node, name: str, state: str, spot: _Spot | None = None) -> str:
    """Draw a task, gateway or event with its name and state."""
    x, y, w, h = node.box
    cx, cy = x + w / 2, y + h / 2
    classes = f"el {node.kind} {node.tag}{' expanded' if node.expanded else ''}{state}"
    if node.kind == "event":
        classes += {"startEvent": " start", "endEvent": " end"}.get(node.tag, " intermediate")
        classes += "" if node.interrupting else " non-interrupting"
    parts = [f'<g class="{classes}" data-id="{_esc(node.id)}"><title>{_esc(name or node.id)}</title>']
    if node.expanded:  # its name in its top left corner, clear of what it holds
        parts.append(f'<rect class="shape" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="10"/>')
        parts.append(_text(_wrap(name, w - 16, 1), x + 8, y + 4, "start", anchor="start"))
    elif node.kind == "task":
        parts.append(f'<rect class="shape" x="{_n(x)}" y="{_n(y)}" width="{_n(w)}" height="{_n(h)}" rx="10"/>')
        parts.append(_text(_wrap(name, w - 10, max(1, int((h - 8) // 15))), cx, cy, "middle"))
    elif node.kind == "gateway":
        parts.append(f'<polygon class="shape" points="{_n(cx)},{_n(y)} {_n(x + w)},{_n(cy)} '
                     f'{_n(cx)},{_n(y + h)} {_n(x)},{_n(cy)}"/>')
        parts.append(_gateway_mark(node.mark, cx, cy, w / 5))
        parts.append(spot.text() if spot is not None else "")
    else:
        r = min(w, h) / 2
        parts.append(f'<circle class="shape" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}"/>')
        if node.tag not in ("startEvent", "endEvent"):
            parts.append(f'<circle class="mark" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r - 3)}"/>')
        parts.append(_event_mark(node.mark, cx, cy, r, filled=node.tag in ("endEvent", "intermediateThrowEvent")))
        parts.append(spot.text() if spot is not None else "")  # below or above first, clear of its flows
    return "".join(parts) + "</g>"


def _gateway_mark(mark: str, cx: float, cy: float, d: float) -> str:
    """Draw the X, + or O inside a gateway."""
    if mark == "x":
        return (f'<path class="mark" d="M {_n(cx - d)} {_n(cy - d)} L {_n(cx + d)} {_n(cy + d)} '
                f'M {_n(cx + d)} {_n(cy - d)} L {_n(cx - d)} {_n(cy + d)}" stroke-width="3"/>')
    if mark == "+":
        return (f'<path class="mark" d="M {_n(cx)} {_n(cy - d * 1.3)} V {_n(cy + d * 1.3)} '
                f'M {_n(cx - d * 1.3)} {_n(cy)} H {_n(cx + d * 1.3)}" stroke-width="3"/>')
    if mark == "o":
        return f'<circle class="mark" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(d * 1.2)}" stroke-width="2.5"/>'
    return ""


def _event_mark(mark: str, cx: float, cy: float, r: float, filled: bool) -> str:
    """Draw a clock for timers, a triangle for signals, an envelope for messages."""
    s = r * 0.5
    fill = " filled" if filled else ""
    if mark == "timer":
        return (f'<circle class="mark" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(s * 1.1)}"/>'
                f'<path class="mark" d="M {_n(cx)} {_n(cy - s * 0.8)} L {_n(cx)} {_n(cy)} '
                f'L {_n(cx + s * 0.6)} {_n(cy + s * 0.3)}"/>')
    if mark == "signal":
        return (f'<path class="mark{fill}" d="M {_n(cx)} {_n(cy - s)} L {_n(cx + s)} {_n(cy + s * 0.7)} '
                f'L {_n(cx - s)} {_n(cy + s * 0.7)} Z"/>')
    if mark == "message":
        return (f'<path class="mark{fill}" d="M {_n(cx - s)} {_n(cy - s * 0.6)} H {_n(cx + s)} V {_n(cy + s * 0.6)} '
                f'H {_n(cx - s)} Z M {_n(cx - s)} {_n(cy - s * 0.6)} L {_n(cx)} {_n(cy)} L {_n(cx + s)} '
                f'{_n(cy - s * 0.6)}"/>')
    return ""


def _marker(marker_id: str, colour: str) -> str:
    """Define an arrowhead (markers do not inherit CSS from the path, hence one per colour)."""
    return (f'<marker id="{marker_id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" '
            f'markerUnits="userSpaceOnUse" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>')


def _legend(x: float, y: float, texts: Mapping[str, str]) -> str:
    """Draw the done / current / overdue legend below the diagram."""
    parts = ['<g class="legend">']
    for state in ("done", "current", "overdue"):
        parts.append(f'<g class="swatch {state}"><rect class="shape" x="{_n(x)}" y="{_n(y)}" width="24" '
                     f'height="14" rx="4"/><text x="{_n(x + 30)}" y="{_n(y + 11)}">{_esc(texts[state])}</text></g>')
        x += 40 + _width(texts[state])
    return "".join(parts) + "</g>"


def _text(lines: list[str], x: float, y: float, valign: str, *, anchor: str = "middle", cls: str = "") -> str:
    """Write lines of text at (x, y); ``valign`` says whether y is their top, middle or end."""
    if not lines:
        return ""
    step = FONT_SIZE * 1.25
    first = {"start": y + FONT_SIZE, "middle": y - (len(lines) - 1) * step / 2 + FONT_SIZE * 0.35,
             "end": y - (len(lines) - 1) * step}[valign]
    spans = "".join(f'<tspan x="{_n(x)}" y="{_n(first + i * step)}">{_esc(line)}</tspan>'
                    for i, line in enumerate(lines))
    cls = f' class="{cls}"' if cls else ""
    return f'<text{cls} text-anchor="{anchor}">{spans}</text>'


def _wrap(text: str, width: float, max_lines: int) -> list[str]:
    """Break text into lines no wider than ``width``: at spaces, or between any two CJK characters."""
    lines = [""]
    for token in _TOKEN.findall(text.strip()):
        for part in (list(token) if _width(token) > width else [token]):
            if part.isspace():
                lines[-1] += " " if lines[-1] else ""
            elif lines[-1] and _width(lines[-1] + part) > width:
                lines.append(part)
            else:
                lines[-1] += part
    lines = [line.strip() for line in lines if line.strip()]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][:-1] + "…"
    return lines


def _width(text: str) -> float:
    """Estimate the drawn width of text: CJK characters are square, others about half as wide."""
    return sum(FONT_SIZE if unicodedata.east_asian_width(c) in "WF" else FONT_SIZE * 0.6 for c in text)


def _esc(text: str) -> str:
    """Escape text for XML content and attribute values, dropping characters XML cannot hold."""
    return html.escape(_NOT_XML.sub("", text), quote=True)


def _n(value: float) -> str:
    """Format a coordinate compactly."""
    return f"{value:.1f}".removesuffix(".0")
