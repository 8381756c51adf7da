"""The process diagram: SVG drawn from the BPMN layout, marked with the trail of a real case."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ET

import pytest

from tests.workflows.conftest import BPMN_DIR
from workflows import Trail, render_svg

SVG = "{http://www.w3.org/2000/svg}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)


def _svg(text: str) -> ET.Element:
    """Parse the SVG (it must be well-formed XML) and check it is one."""
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    return root


def _classes(root: ET.Element) -> dict[str, set[str]]:
    """Map each drawn element's data-id to its classes."""
    return {g.get("data-id"): set(g.get("class", "").split()) for g in root.iter(f"{SVG}g") if g.get("data-id")}


def _with(root: ET.Element, cls: str) -> set[str]:
    """Return the data-ids of the drawn elements carrying ``cls``."""
    return {key for key, classes in _classes(root).items() if cls in classes}


def _flow_nodes(source: str, process_id: str) -> set[str]:
    """Return the ids of every task, sub-process, gateway and event of a process (inside sub-processes too)."""
    process = ET.fromstring(source.encode()).find(f"{BPMN}process[@id='{process_id}']")
    return {el.get("id") for el in process.iter()
            if re.search(r"(Task|Gateway|Event|subProcess)$", el.tag) and not el.tag.endswith("EventDefinition")}


@pytest.fixture
def handled(start_case):
    """A case taken record_reply -> dispatch (to a member), waiting in handle_member; with its task ids."""
    case = start_case()
    ids = [case.task.id]
    case.complete("record_reply", {"answered_on_spot": False})
    ids.append(case.task.id)
    case.complete("dispatch", {"dispatch_to": "member"})
    ids.append(case.task.id)
    return case, ids


def test_every_task_event_and_gateway_is_drawn_with_its_id(definition):
    root = _svg(render_svg(definition.source, "case_closed_loop", title="诉求闭环"))
    nodes = _flow_nodes(definition.source, "case_closed_loop")
    assert {"record_reply", "handling", "gw_route", "handle_department", "s_signed", "t_sign_for", "throw_handled",
            "end"} <= nodes
    assert _with(root, "el") == nodes
    assert {"f_dispatched", "f_on_spot", "f_retry", "f_to_department", "f_signed"} <= _with(root, "flow")
    assert {"Participant_case", "Lane_member", "Lane_street"} <= _with(root, "band")
    assert {"event", "boundaryEvent", "non-interrupting"} <= _classes(root)["t_sign_for"]
    assert {"event", "boundaryEvent", "non-interrupting"} <= _classes(root)["s_signed"]


def test_an_open_sub_process_is_drawn_under_what_it_holds(definition):
    root = _svg(render_svg(definition.source, "case_closed_loop", visited={"handling"}))
    assert {"task", "subProcess", "expanded", "done"} <= _classes(root)["handling"]
    drawn = [g.get("data-id") for g in root.iter(f"{SVG}g") if g.get("data-id")]
    # After the lanes, before every flow and element: its frame must not hide what is inside it.
    assert drawn.index("handling") < min(drawn.index(f) for f in _with(root, "flow"))
    assert drawn.index("handling") < drawn.index("handle_member")
    name = root.find(f".//{SVG}g[@data-id='handling']/{SVG}text")
    assert name.get("text-anchor") == "start" and "".join(name.itertext()) == "办理"
    assert "".join(root.find(f".//{SVG}g[@data-id='handle_member']/{SVG}text").itertext()) == "网格员办理"


def test_svg_is_accessible_scalable_and_self_contained(definition):
    root = _svg(render_svg(definition.source, "case_closed_loop", title="案件 A-1 流程"))
    assert (root.get("role"), root.get("aria-label"), root.get("width")) == ("img", "案件 A-1 流程", "100%")
    assert root.find(f"{SVG}title").text == "案件 A-1 流程"
    x, y, width, height = map(float, root.get("viewBox").split())
    assert x < 100 and y < 40 and x + width > 1900 and y + height > 800  # the pool's bounds plus a margin
    assert "Noto Sans CJK SC" in root.get("font-family") and "Microsoft YaHei" in root.get("font-family")
    style = root.find(f"{SVG}style").text
    assert ".done" in style and ".current" in style and ".overdue" in style and "url(" not in style
    legend = [t.text for t in root.iter(f"{SVG}text") if t.text in ("已完成", "当前", "超期")]
    assert legend == ["已完成", "当前", "超期"]


def test_trail_after_dispatch_marks_the_path_to_handling(engine, definition, handled):
    case, ids = handled
    trail = engine.trail(definition, case.snap.state, ids)
    assert trail.elements == {"start", "record_reply", "gw_on_spot", "dispatch", "handling", "handling_start",
                              "gw_route", "handle_member"}
    assert {("record_reply", "gw_on_spot"), ("gw_on_spot", "dispatch"), ("dispatch", "handling"),
            ("handling_start", "gw_route"), ("gw_route", "handle_member")} <= trail.flows
    root = _svg(render_svg(definition.source, "case_closed_loop", visited=trail.elements, taken=trail.flows,
                           current={"handle_member"}))
    assert _with(root, "done") == trail.elements - {"handle_member"}
    assert _with(root, "current") == {"handle_member"}
    assert _with(root, "overdue") == set()
    assert {"f_need_dispatch", "f_dispatched", "f_to_member"} <= _with(root, "taken")
    assert not {"f_on_spot", "f_to_department", "f_return"} & _with(root, "taken")


def test_overdue_lands_on_the_overdue_task_only(definition):
    root = _svg(render_svg(definition.source, "case_closed_loop", visited={"dispatch"},
                           current={"handle_department", "supervise"}, overdue={"handle_department"}))
    assert _with(root, "overdue") == {"handle_department"}
    assert _with(root, "current") == {"handle_department", "supervise"}
    assert _with(root, "done") == {"dispatch"}


def test_trail_of_an_earlier_task_stops_there(engine, definition, handled):
    case, ids = handled
    trail = engine.trail(definition, case.snap.state, ids[:1])
    assert trail == Trail(frozenset({"start", "record_reply"}), frozenset({("start", "record_reply")}))


def test_trail_ignores_unknown_task_ids(engine, definition, handled):
    case, _ = handled
    assert engine.trail(definition, case.snap.state, ["nope", str(uuid.uuid4())]) == Trail(frozenset(), frozenset())


def test_trail_follows_a_reopened_case_round_the_loop(engine, definition, handled):
    case, ids = handled
    case.complete("handle_member", {"handle_action": "done"})
    ids.append(case.task.id)
    case.complete("callback", {"satisfaction": "dissatisfied"})
    assert case.task.name == "handle_member"
    trail = engine.trail(definition, case.snap.state, [*ids, case.task.id])
    assert {"callback", "gw_callback", "reopen", "gw_reopen", "throw_handled", "gw_handle"} <= trail.elements
    assert {("gw_callback", "reopen"), ("gw_reopen", "handling"), ("dispatch", "handling")} <= trail.flows
    assert "review_archive" not in trail.elements


def test_trail_includes_a_fired_timer_on_the_way_to_supervision(engine, definition, start_case):
    engine.clock = lambda: T0
    case = start_case()
    case.complete("record_reply", {"answered_on_spot": False})
    deadlines = {name: (T0 + dt.timedelta(days=days)).isoformat()
                 for name, days in [("sign_for_at", 1), ("remind_at", 3), ("due_at", 5), ("escalate_at", 7)]}
    case.complete("dispatch", {"dispatch_to": "member", **deadlines})
    snap = engine.fire_timers(definition, case.snap.state, T0 + dt.timedelta(days=5.5))
    (supervise,) = [t for t in snap.ready if t.name == "supervise"]
    trail = engine.trail(definition, snap.state, [supervise.id])
    assert {"dispatch", "t_supervise", "supervise"} <= trail.elements
    assert ("t_supervise", "supervise") in trail.flows
    root = _svg(render_svg(definition.source, "case_closed_loop", visited=trail.elements, taken=trail.flows))
    assert "f_supervise" in _with(root, "taken") and "t_supervise" in _with(root, "done")


def test_unknown_ids_are_ignored(definition):
    root = _svg(render_svg(definition.source, "case_closed_loop", visited={"ghost"}, current={"phantom"},
                           taken={("ghost", "phantom")}))
    assert _with(root, "done") == _with(root, "current") == _with(root, "taken") == set()


def test_a_process_without_layout_is_refused_by_name(definition):
    bare = re.sub(r"<bpmndi:BPMNDiagram.*</bpmndi:BPMNDiagram>", "", definition.source, flags=re.S)
    with pytest.raises(ValueError, match="case_closed_loop.*no diagram layout"):
        render_svg(bare, "case_closed_loop")
    with pytest.raises(ValueError, match="no process 'elsewhere'"):
        render_svg(definition.source, "elsewhere")


def test_text_is_escaped(definition):
    text = render_svg(definition.source, "case_closed_loop", labels={"record_reply": "<b>登记 & 答复</b>"},
                      title='A <case> & "quotes"')
    assert "<b>" not in text and "&lt;b&gt;" in text and "&amp;" in text
    root = _svg(text)
    assert root.get("aria-label") == 'A <case> & "quotes"'
    drawn = "".join(root.find(f".//{SVG}g[@data-id='record_reply']/{SVG}text").itertext())
    assert drawn.replace(" ", "") == "<b>登记&答复</b>"  # wrapped lines drop the space they break at


def test_long_chinese_names_wrap_inside_the_task(definition):
    name = "登记居民诉求并当场答复居民的问题"
    root = _svg(render_svg(definition.source, "case_closed_loop", labels={"record_reply": name}))
    lines = [t.text for t in root.find(f".//{SVG}g[@data-id='record_reply']/{SVG}text")]
    assert len(lines) > 1 and "".join(lines) == name
    assert all(len(line) <= 8 for line in lines)  # a 100-wide task at 12px holds 7-8 CJK characters


def test_routine_visit_renders_with_its_timer():
    source = (BPMN_DIR / "routine_visit.bpmn").read_text(encoding="utf-8")
    root = _svg(render_svg(source, "routine_visit", current={"visit"}, overdue={"visit"}))
    nodes = {"start", "visit", "t_missed", "end_missed", "end"}
    assert _with(root, "el") == _flow_nodes(source, "routine_visit") == nodes
    assert _with(root, "overdue") == {"visit"}
    timer = root.find(f".//{SVG}g[@data-id='t_missed']")
    assert {"boundaryEvent", "non-interrupting"} <= set(timer.get("class").split())
    assert len(timer.findall(f"{SVG}circle")) == 3  # double circle and the clock face
    assert root.get("aria-label") == "三定走访 Routine visit"  # the process name when no title is given


# -- labels keep clear of lines, shapes and each other ---------------------------------------------

def _label_boxes(root: ET.Element) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Return (owner data-id, box x0 y0 x1 y1) of every label drawn outside a shape: flow names and event
    and gateway names, measured as the renderer measures text (CJK square, others about half as wide)."""
    from workflows.diagram import FONT_SIZE, _width
    boxes = []
    for g in root.iter(f"{SVG}g"):
        classes = set(g.get("class", "").split())
        if not ({"flow", "event", "gateway"} & classes):
            continue
        for text in g.iter(f"{SVG}text"):
            spans = list(text.iter(f"{SVG}tspan"))
            width = max(_width(s.text or "") for s in spans)
            x, ys = float(spans[0].get("x")), [float(s.get("y")) for s in spans]
            left = {"start": x, "middle": x - width / 2, "end": x - width}[text.get("text-anchor")]
            boxes.append((g.get("data-id"), (left, ys[0] - FONT_SIZE * 0.85, left + width, ys[-1] + FONT_SIZE * 0.2)))
    return boxes


def _segments(root: ET.Element) -> list[tuple[str, tuple[float, float], tuple[float, float]]]:
    """Return (flow data-id, start, end) of every straight piece of every flow's path."""
    found = []
    for g in root.iter(f"{SVG}g"):
        if "flow" in g.get("class", "").split():
            numbers = [tuple(map(float, p.split(","))) for p in re.findall(r"-?[\d.]+,-?[\d.]+", g.find(f"{SVG}path").get("d"))]
            found += [(g.get("data-id"), a, b) for a, b in zip(numbers, numbers[1:])]
    return found


def _shapes(root: ET.Element) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Return (data-id, box) of every task, event and gateway shape (not open sub-processes: they hold others)."""
    found = []
    for g in root.iter(f"{SVG}g"):
        classes = set(g.get("class", "").split())
        if "el" not in classes or "expanded" in classes:
            continue
        shape = g.find("*[@class='shape']")
        if shape.tag == f"{SVG}rect":
            x, y = float(shape.get("x")), float(shape.get("y"))
            found.append((g.get("data-id"), (x, y, x + float(shape.get("width")), y + float(shape.get("height")))))
        elif shape.tag == f"{SVG}circle":
            cx, cy, r = (float(shape.get(k)) for k in ("cx", "cy", "r"))
            found.append((g.get("data-id"), (cx - r, cy - r, cx + r, cy + r)))
        else:
            points = [tuple(map(float, p.split(","))) for p in shape.get("points").split()]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            found.append((g.get("data-id"), (min(xs), min(ys), max(xs), max(ys))))
    return found


def _crosses(box, a, b) -> bool:
    """Whether the straight line from a to b passes through the box (Liang-Barsky clipping)."""
    (x0, y0, x1, y1), (ax, ay), (bx, by) = box, a, b
    t0, t1, dx, dy = 0.0, 1.0, bx - ax, by - ay
    for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    return t0 <= t1


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("path", sorted(BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.name)
def test_labels_keep_clear_of_lines_shapes_and_each_other(path):
    source = path.read_text(encoding="utf-8")
    process_id = ET.fromstring(source.encode()).find(f"{BPMN}process").get("id")
    root = _svg(render_svg(source, process_id))
    labels, segments, shapes = _label_boxes(root), _segments(root), _shapes(root)
    assert labels
    problems = [f"{owner} label crosses flow {flow}" for owner, box in labels for flow, a, b in segments
                if _crosses(box, a, b)]
    problems += [f"{owner} label covers {shape}" for owner, box in labels for shape, other in shapes
                 if _overlap(box, other)]
    problems += [f"{first} and {second} labels overlap" for i, (first, a) in enumerate(labels)
                 for second, b in labels[i + 1:] if _overlap(a, b)]
    assert problems == []
