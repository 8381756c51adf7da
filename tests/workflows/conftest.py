"""Fixtures for the engine-layer tests: a real Engine and the real closed-loop definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workflows import Definition, Engine, ReadyTask, Snapshot

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
PROCESS_FILE = "case_closed_loop.bpmn"

LANE_ROLES = {"网格员": "grid_member", "网格长": "grid_leader", "职能部门": "department_handler",
              "街道办": "street_office"}
#: Timer moments far in the future: the tracker always hands these in with a dispatch.
FAR_DEADLINES = {"sign_for_at": "2099-01-01T00:00:00+00:00", "remind_at": "2099-01-02T00:00:00+00:00",
                 "due_at": "2099-01-03T00:00:00+00:00", "escalate_at": "2099-01-04T00:00:00+00:00"}
START_DATA = {"reopen_count": 0, "callback_attempts": 0, "dispatch_to": "", "max_callback_attempts": 3}


class Case:
    """Drives one workflow through the engine the way the tracker does: state in, snapshot out."""

    def __init__(self, engine: Engine, definition: Definition, data: dict[str, Any]):
        self.engine = engine
        self.definition = definition
        self.snap: Snapshot = engine.start(definition, data)

    @property
    def task(self) -> ReadyTask:
        """The single ready task (the closed loop never has two at once)."""
        assert len(self.snap.ready) == 1, [t.name for t in self.snap.ready]
        return self.snap.ready[0]

    def complete(self, expected: str, data: dict[str, Any]) -> Snapshot:
        """Complete the ready task, first checking it is the one the test expects."""
        task = self.task
        assert task.name == expected, f"expected {expected}, ready is {task.name}"
        if expected == "dispatch":
            data = {**FAR_DEADLINES, **data}
        self.snap = self.engine.complete_task(self.definition, self.snap.state, task.id, data)
        return self.snap


@pytest.fixture
def bpmn_source() -> str:
    """The text of the real process, for building modified variants."""
    return (BPMN_DIR / PROCESS_FILE).read_text(encoding="utf-8")


@pytest.fixture
def engine() -> Engine:
    """An engine with the tracker's lane-to-role mapping."""
    return Engine(LANE_ROLES)


@pytest.fixture
def definition(engine: Engine) -> Definition:
    """The real case_closed_loop definition, loaded from the project's bpmn directory."""
    definitions, errors = engine.load_directory(BPMN_DIR)
    assert errors == []
    (found,) = [d for d in definitions if d.process_id == "case_closed_loop"]
    return found


@pytest.fixture
def start_case(engine: Engine, definition: Definition):
    """Factory: start a case with the tracker's start data (overridable by keyword)."""

    def start(**overrides: Any) -> Case:
        return Case(engine, definition, {**START_DATA, **overrides})

    return start
