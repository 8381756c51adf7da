"""The bare-engine floor: the same BPMN driven in-process through SpiffWorkflow, serialized after each step."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from tracker.config import load_config
from workflows import Engine

ROOT = Path(__file__).resolve().parent.parent
#: A dispatch hands the workflow its timer moments, as the tracker does (here: far in the future).
SIGN_FOR_AT = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
DEADLINES = {"sign_for_at": SIGN_FOR_AT.isoformat(), "remind_at": "2099-01-02T00:00:00+00:00",
             "due_at": "2099-01-03T00:00:00+00:00", "escalate_at": "2099-01-04T00:00:00+00:00"}
STEPS = [
    {"answered_on_spot": False},
    {"dispatch_to": "member", **DEADLINES},
    {"handle_action": "done"},
    {"satisfaction": "satisfied"},
    {"archive_decision": "archive"},
]
START_DATA = {"reopen_count": 0, "callback_attempts": 0, "dispatch_to": "", "max_callback_attempts": 3}


def _engine():
    engine = Engine(load_config()["lanes"])
    definitions, errors = engine.load_directory(ROOT / "bpmn")
    assert not errors, errors
    return engine, next(d for d in definitions if d.process_id == "case_closed_loop")


def run_floor(cases: int) -> dict:
    """Drive ``cases`` cases through the full loop; return CPU seconds per completion and state size."""
    engine, definition = _engine()
    completions, state_bytes = 0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(cases):
        snapshot = engine.start(definition, START_DATA)
        for data in STEPS:
            snapshot = engine.complete_task(definition, snapshot.state, snapshot.ready[0].id, data)
            completions += 1
        assert snapshot.completed
        state_bytes = len(snapshot.state)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cases": cases, "completions": completions, "cpu_per_completion_ms": 1000 * cpu / completions,
            "completions_per_s": completions / wall, "final_state_bytes": state_bytes}


def run_timer_floor(cases: int) -> dict:
    """Fire one due timer (the sign-for limit) in each of ``cases`` dispatched workflows: restore, fire, serialize."""
    engine, definition = _engine()
    states = []
    for _ in range(cases):
        snapshot = engine.start(definition, START_DATA)
        for data in STEPS[:2]:
            snapshot = engine.complete_task(definition, snapshot.state, snapshot.ready[0].id, data)
        states.append(snapshot.state)
    fired = 0
    cpu0 = time.process_time()
    for state in states:
        fired += len(engine.fire_timers(definition, state, SIGN_FOR_AT + dt.timedelta(hours=1)).fired)
    cpu = time.process_time() - cpu0
    assert fired == cases, fired
    return {"timers": fired, "cpu_s": cpu, "cpu_per_timer_ms": 1000 * cpu / fired}
