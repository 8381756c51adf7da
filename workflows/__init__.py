"""The engine layer: the only package that imports SpiffWorkflow."""

from .diagram import render_svg
from .engine import (
    Definition,
    DefinitionError,
    DefinitionInvalid,
    Engine,
    FiredTimer,
    ReadyTask,
    Snapshot,
    TaskNotReady,
    Trail,
    WorkflowError,
    content_hash,
    decode_state,
)
from .evaluator import UnsafeExpression

__all__ = [
    "Definition", "DefinitionError", "DefinitionInvalid", "Engine", "FiredTimer", "ReadyTask", "Snapshot",
    "TaskNotReady", "Trail", "UnsafeExpression", "WorkflowError", "content_hash", "decode_state", "render_svg",
]
