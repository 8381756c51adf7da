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
    # An open sub-process goes under the flows and elements inside it.
    parts += [_node(node, labels.get(node.id, node.name), state(node.id)) for node in layout.nodes if node.expanded]
    for flow in layout.flows:
        is_taken = (flow.source, flow.target) in taken
        parts.append(_flow(flow, labels.get(flow.id, flow.name), is_taken,
                           f"{arrow}-taken" if is_taken else f"{arrow}-arrow"))
    parts += [_node(node, labels.get(node.id, node.name), state(node.id)) for node in layout.nodes if not node.expanded]
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


def _flow(flow: _Flow, name: str, taken: bool, marker: str) -> str:
    """Draw a sequence flow through its waypoints, with its name at its longest segment."""
    points = " ".join(f"{_n(px)},{_n(py)}" for px, py in flow.points)
    parts = [f'<g class="flow{" taken" if taken else ""}" data-id="{_esc(flow.id)}">',
             f'<path d="M {points.replace(" ", " L ")}" marker-end="url(#{marker})"/>']
    if name:
        (x1, y1), (x2, y2) = max(zip(flow.points, flow.points[1:]),
                                 key=lambda s: abs(s[1][0] - s[0][0]) + abs(s[1][1] - s[0][1]))
        if abs(x2 - x1) >= abs(y2 - y1):
            parts.append(_text(_wrap(name, max(abs(x2 - x1), 80), 2), (x1 + x2) / 2, y1 - 6, "end"))
        else:
            parts.append(_text(_wrap(name, 90, 3), x1 + 5, (y1 + y2) / 2, "middle", anchor="start"))
    return "".join(parts) + "</g>"


def _node(node: _Node, name: str, state: str) -> str:
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
        parts.append(_text(_wrap(name, 100, 2), cx + 8, y - 4, "end", anchor="start", cls="label"))
    else:
        r = min(w, h) / 2
        parts.append(f'<circle class="shape" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r)}"/>')
        if node.tag not in ("startEvent", "endEvent"):
            parts.append(f'<circle class="mark" cx="{_n(cx)}" cy="{_n(cy)}" r="{_n(r - 3)}"/>')
        parts.append(_event_mark(node.mark, cx, cy, r, filled=node.tag in ("endEvent", "intermediateThrowEvent")))
        ty, valign = (y - 4, "end") if node.label_above else (y + h + 4, "start")
        # Boundary events sit side by side on a task's edge: keep their labels as narrow as they are.
        wide, rows = (FONT_SIZE * 4 + 2, 3) if node.tag == "boundaryEvent" else (90, 2)
        parts.append(_text(_wrap(name, wide, rows), cx, ty, valign, cls="label"))
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
