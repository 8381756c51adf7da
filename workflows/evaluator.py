"""Restricted evaluation of BPMN conditions, timer expressions and assignment scripts.

Every expression is checked against an AST allow-list before it is evaluated by simpleeval:
no attribute access at all (so no ``().__class__`` walking), no imports, no lambdas or
comprehensions, calls only to a short list of named functions, bounded source size.
Scripts are limited to lines of ``name = expression``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from simpleeval import EvalWithCompoundTypes

MAX_EXPRESSION_CHARS = 500
MAX_SCRIPT_LINES = 20

#: The only functions a BPMN expression may call.
ALLOWED_FUNCTIONS: dict[str, Any] = {
    "len": len,
    "min": min,
    "max": max,
    "abs": abs,
    "int": int,
    "str": str,
    "bool": bool,
    "round": round,
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Tuple, ast.List, ast.Dict, ast.Set,
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.IfExp, ast.Call, ast.Subscript, ast.Slice,
)


class UnsafeExpression(ValueError):
    """An expression or script uses something outside the allow-list."""


def _describe(node: ast.AST) -> str:
    """Name an offending AST node in words a process modeller understands."""
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}' is not allowed"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "imports are not allowed"
    if isinstance(node, ast.Lambda):
        return "lambda is not allowed"
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return "comprehensions are not allowed"
    return f"'{type(node).__name__}' syntax is not allowed"


def _check_tree(tree: ast.AST) -> None:
    """Raise UnsafeExpression at the first node outside the allow-list."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeExpression(f"name '{node.id}' is not allowed (names may not start with '_')")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in ALLOWED_FUNCTIONS:
                name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
                raise UnsafeExpression(f"call to '{name}' is not allowed (allowed: {allowed})")
            if node.keywords:
                raise UnsafeExpression("keyword arguments are not allowed")
        if not isinstance(node, _ALLOWED_NODES):
            raise UnsafeExpression(_describe(node))


@lru_cache(maxsize=1024)
def check_expression(source: str) -> None:
    """Raise UnsafeExpression unless ``source`` is a short, allow-listed expression."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise UnsafeExpression(f"expression is {len(source)} characters; the limit is {MAX_EXPRESSION_CHARS}")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(f"not a valid expression: {exc.msg}") from None
    _check_tree(tree)


@lru_cache(maxsize=256)
def parse_script(source: str) -> tuple[tuple[str, str], ...]:
    """Return the (name, expression) assignments of a script, or raise UnsafeExpression."""
    lines = [line.strip() for line in source.strip().splitlines() if line.strip()]
    if len(lines) > MAX_SCRIPT_LINES:
        raise UnsafeExpression(f"script has {len(lines)} lines; the limit is {MAX_SCRIPT_LINES}")
    assignments = []
    for line in lines:
        try:
            stmt = ast.parse(line, mode="exec").body
        except SyntaxError as exc:
            raise UnsafeExpression(f"not a valid script line '{line}': {exc.msg}") from None
        if len(stmt) != 1 or not isinstance(stmt[0], ast.Assign) or len(stmt[0].targets) != 1 \
                or not isinstance(stmt[0].targets[0], ast.Name):
            raise UnsafeExpression(f"script line '{line}' must have the form 'name = expression'")
        target = stmt[0].targets[0].id
        if target.startswith("_"):
            raise UnsafeExpression(f"name '{target}' is not allowed (names may not start with '_')")
        expression = ast.unparse(stmt[0].value)
        check_expression(expression)
        assignments.append((target, expression))
    return tuple(assignments)


def evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an allow-listed expression with task data as its only names."""
    check_expression(source)
    evaluator = EvalWithCompoundTypes(functions=dict(ALLOWED_FUNCTIONS), names=dict(names))
    return evaluator.eval(source.strip())


def execute(source: str, names: dict[str, Any]) -> None:
    """Run an assignment script, writing each assigned name into ``names``."""
    for target, expression in parse_script(source):
        names[target] = evaluate(expression, names)

