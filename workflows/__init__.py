"""The engine layer: the only package that imports SpiffWorkflow."""

from .engine import (
    Definition,
    DefinitionError,
    DefinitionInvalid,
    Engine,
    FiredTimer,
    ReadyTask,
    Snapshot,
    TaskNotReady,
    WorkflowError,
    content_hash,
    decode_state,
)
from .evaluator import UnsafeExpression

__all__ = [
    "Definition", "DefinitionError", "DefinitionInvalid", "Engine", "FiredTimer", "ReadyTask", "Snapshot",
    "TaskNotReady", "UnsafeExpression", "WorkflowError", "content_hash", "decode_state",
]
