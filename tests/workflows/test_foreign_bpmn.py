"""BPMN nobody on the project wrote (SpiffWorkflow's own test data): each runs, or is refused at load with a reason.

No file may crash the loader; a refusal names the file, the element and the problem. The files are
loaded twice: as they are (most are then refused because the file name is not the process id) and
renamed to their process id, so the checks behind the name check show.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from lxml import etree

from workflows import DefinitionInvalid, Engine

FOREIGN = Path(__file__).resolve().parent / "foreign_bpmn"
FILES = sorted(p.name for p in FOREIGN.glob("*.bpmn"))

SEND = "send tasks are not supported"
RECEIVE = "receive tasks are not supported"
MESSAGE = "message events are not supported"
PLAIN = "plain tasks (bpmn:task) cannot be completed in GridLoop"
MANUAL = "manual tasks cannot be completed in GridLoop"
UNSAFE_SCRIPT = "unsafe script: "
#: Renamed to its (first) process id, what each refused file is refused for: element id -> start of the problem.
REFUSED = {
    "correlation.bpmn": {"start_proc_2": SEND, "get_response": RECEIVE, "message_start": MESSAGE,
                         "respond": MESSAGE},
    "correlation_two_conversations.bpmn": {
        "set_topic_one": UNSAFE_SCRIPT + "script line 'import time' must have the form 'name = expression'",
        "set_topic_two": UNSAFE_SCRIPT + "script line 'import time' must have the form 'name = expression'",
        "mcp_topica_one": "unsafe expression: attribute access '.topica' is not allowed",
        "mcp_topicb_one": "unsafe expression: attribute access '.topicb' is not allowed",
        "send_message_to_one": SEND, "receive_message_response_one": MESSAGE,
        "receive_message_response_two": RECEIVE, "Event_1wcluza": MESSAGE},
    "exclusive_gateway_no_default.bpmn": {"Activity_Greater": PLAIN, "Activity_Less": PLAIN},
    "lanes.bpmn": {"Implement_Feature": MANUAL, "Activity_1uksrqx": MANUAL, "SubProcessTask": MANUAL,
                   "Activity_A1": "lane 'A' is not mapped to a role", "Activity_A2": "lane 'A' is not mapped to a role",
                   "Activity_B1": "lane 'B' is not mapped to a role"},
    "service_task.bpmn": {"Activity-1inxqgx": "service tasks are not supported",
                          "Activity_12erefa": "service tasks are not supported"},
    "standard_loop.bpmn": {"any_task": PLAIN},
    "timer-date-start.bpmn": {"Activity_1q1wged": UNSAFE_SCRIPT + "call to '(datetime.now() + timedelta"},
}
RUNS = {"timer.bpmn"}


def _process_id(name: str) -> str:
    """The first process id in a fixture (the one its renamed copy is loaded as)."""
    root = etree.parse(FOREIGN / name)
    return root.xpath("//bpmn:process/@id", namespaces={"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"})[0]


def test_every_fixture_is_accounted_for():
    assert set(FILES) == set(REFUSED) | RUNS


def test_the_fixtures_as_they_are_load_or_are_reported(engine, tmp_path):
    for name in FILES:
        shutil.copy(FOREIGN / name, tmp_path / name)
    definitions, errors = engine.load_directory(tmp_path)  # must not raise
    assert {d.file_name for d in definitions} == {"timer.bpmn"}
    assert {e.file_name for e in errors} == set(FILES) - {"timer.bpmn"}
    for error in errors:
        assert error.problem and str(error).startswith(f"{error.file_name}: ")
    # The file name is not the process id: said first, without an element.
    (first,) = [e for e in errors if e.file_name == "standard_loop.bpmn" and e.element_id is None]
    assert first.problem == 'no <bpmn:process id="standard_loop"> (the file name must be the process id)'


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_renamed_fixture_is_refused_naming_element_and_problem(engine, name):
    file_name = _process_id(name) + ".bpmn"
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source(file_name, (FOREIGN / name).read_text(encoding="utf-8"))
    errors = info.value.errors
    assert all(e.file_name == file_name for e in errors)
    found = {e.element_id: e.problem for e in errors}
    assert set(found) == set(REFUSED[name])
    for element_id, problem in REFUSED[name].items():
        assert found[element_id].startswith(problem), (element_id, found[element_id])


def test_timer_fixture_runs_to_the_end(engine):
    definition = engine.load_source("timer.bpmn", (FOREIGN / "timer.bpmn").read_text(encoding="utf-8"))
    start = dt.datetime(2030, 1, 1, 8, tzinfo=dt.UTC)
    engine.clock = lambda: start
    snap = engine.start(definition, {})
    assert snap.ready == () and not snap.completed
    assert snap.next_timer == start + dt.timedelta(seconds=0.25)
    snap = engine.fire_timers(definition, snap.state, start + dt.timedelta(seconds=1))
    assert [f.name for f in snap.fired] == ["Event_0bxivgz"]
    assert snap.completed


def test_lanes_fixture_with_its_lanes_mapped_is_refused_only_for_its_manual_tasks():
    engine = Engine({"A": "grid_member", "B": "grid_leader", "C": "street_office"})
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source("lanes.bpmn", (FOREIGN / "lanes.bpmn").read_text(encoding="utf-8"))
    assert {e.element_id: e.problem.split(":")[0] for e in info.value.errors} == {
        "Implement_Feature": MANUAL, "Activity_1uksrqx": MANUAL, "SubProcessTask": MANUAL}
