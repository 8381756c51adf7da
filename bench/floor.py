"""The bare-engine floor: the same BPMN driven in-process through SpiffWorkflow, serialized after each step."""

from __future__ import annotations

import time
from pathlib import Path

from workflows import Engine

ROOT = Path(__file__).resolve().parent.parent
LANES = {"网格员": "grid_member", "网格长": "grid_leader", "职能部门": "department_handler"}
STEPS = [
    {"answered_on_spot": False},
    {"dispatch_to": "member"},
    {"handle_action": "done"},
    {"satisfaction": "satisfied"},
    {},
]


def run_floor(cases: int) -> dict:
    """Drive ``cases`` cases through the full loop; return CPU seconds per completion and state size."""
    engine = Engine(LANES)
    definitions, errors = engine.load_directory(ROOT / "bpmn")
    assert not errors, errors
    definition = next(d for d in definitions if d.process_id == "case_closed_loop")
    start_data = {"reopen_count": 0, "callback_attempts": 0, "dispatch_to": "", "max_callback_attempts": 3}
    completions, state_bytes = 0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(cases):
        snapshot = engine.start(definition, start_data)
        for data in STEPS:
            snapshot = engine.complete_task(definition, snapshot.state, snapshot.ready[0].id, data)
            completions += 1
        assert snapshot.completed
        state_bytes = len(snapshot.state)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {"cases": cases, "completions": completions, "cpu_per_completion_ms": 1000 * cpu / completions,
            "completions_per_s": completions / wall, "final_state_bytes": state_bytes}
