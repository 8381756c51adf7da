"""Restricted evaluation of BPMN conditions, timer expressions and assignment scripts.

Every expression is checked against an AST allow-list before it is evaluated by simpleeval:
no attribute access at all (so no ``().__class__`` walking), no imports, no lambdas or
comprehensions, calls only to a short list of named functions, bounded source size.
Scripts are limited to lines of ``name = expression``.

Evaluation is bounded too, deterministically (no timers or signals: it runs in web worker threads).
Every value an operation builds is measured, counting a shared element each time it is reachable
(``[[1]*10000]*10000`` is a hundred million elements to ``str``, ``==`` or ``hash``), and refused
past ``MAX_RESULT_CHARS``; repetition, concatenation and ``%`` formatting are measured *before*
they run. Every node visit is charged the size of its value, and an evaluation (or a whole script)
past ``MAX_EVALUATION_COST`` is stopped: work then stays within a fraction of a second.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from simpleeval import EvalWithCompoundTypes, FeatureNotAvailable

MAX_EXPRESSION_CHARS = 500
MAX_SCRIPT_LINES = 20
#: Largest value an operation may build, measured as the characters of its ``repr``.
MAX_RESULT_CHARS = 100_000
#: Work allowed for one evaluation or one whole script: each node visit costs 1 plus the size of its value.
MAX_EVALUATION_COST = 2_000_000
#: Deepest nesting of containers a value may have (Python's own repr and == recurse on it).
MAX_NESTING = 100
#: ``round(1, -10**8)`` computes 10**(10**8) first: keep ndigits small.
MAX_ROUND_DIGITS = 100

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


class LimitExceeded(UnsafeExpression):
    """An evaluation would build too large a value or do too much work."""


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
    return _BoundedEval(dict(names)).eval(source.strip())


def execute(source: str, names: dict[str, Any]) -> None:
    """Run an assignment script, writing each assigned name into ``names``; one work budget for all lines."""
    bounded = _BoundedEval(names)  # reads ``names`` live, so a line sees what earlier lines assigned
    for target, expression in parse_script(source):
        names[target] = bounded.eval(expression)


#: Nodes that build a new value (the others return a name's value, a literal or a bool).
_BUILDING = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Subscript, ast.List, ast.Tuple, ast.Set, ast.Dict)
#: One ``%`` conversion: optional mapping key, flags, width, precision, length modifier, type.
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
#: Characters a conversion may add beyond its width and argument: ``'%f' % 1e308`` is 316.
_CONVERSION_SLACK = 330
_SCALAR_SIZES = {bool: 5, float: 24, type(None): 4, complex: 50}


def _too_large(what: str) -> LimitExceeded:
    """Build the refusal for a value that would exceed MAX_RESULT_CHARS."""
    return LimitExceeded(f"result too large: {what} exceeds {MAX_RESULT_CHARS} characters")


def _shown(node: ast.AST) -> str:
    """Quote an expression node for a message, shortened."""
    text = ast.unparse(node)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _number(value: int) -> str:
    """Print an int for a message without tripping Python's limit on int-to-str digits."""
    return str(value) if value.bit_length() < 64 else "a very large number"


def _round(number: Any, ndigits: Any = None) -> Any:
    """``round`` with ndigits kept within MAX_ROUND_DIGITS."""
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise LimitExceeded(f"round: ndigits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}, "
                            f"not {_number(ndigits)}")
    return round(number, ndigits)


class _BoundedEval(EvalWithCompoundTypes):
    """simpleeval, measuring every value it builds and charging every node visit."""

    def __init__(self, names: Mapping[str, Any]):
        super().__init__(functions={**ALLOWED_FUNCTIONS, "str": self._str, "round": _round}, names=names)
        self.operators.update({ast.Mult: self._mult, ast.Add: self._add, ast.Mod: self._mod})
        self._cost = 0
        # id -> (container, size) for this evaluation; holding the container keeps its id unique.
        self._sizes: dict[int, tuple[Any, int]] = {}
        self._checked: dict[int, Any] = {}

    def _eval(self, node: ast.AST) -> Any:
        """Evaluate one node, then charge and bound the value it gave."""
        handler = self.nodes.get(type(node))
        if handler is None:
            raise FeatureNotAvailable(f"Sorry, {type(node).__name__} is not available in this evaluator")
        result = handler(node)
        size = self._size(result)
        self._charge(1 + size)
        if size > MAX_RESULT_CHARS and isinstance(node, _BUILDING):
            raise _too_large(_shown(node))
        self._check_disallowed_items(result)
        return result

    def _check_disallowed_items(self, item: Any) -> None:
        """simpleeval's check for modules and forbidden functions, visiting a shared container once."""
        if type(item) in (list, tuple, dict, set, frozenset):
            if id(item) in self._checked:
                return
            self._checked[id(item)] = item
        super()._check_disallowed_items(item)

    def _charge(self, cost: int) -> None:
        """Add to the work done; stop the evaluation once it passes MAX_EVALUATION_COST."""
        self._cost += cost
        if self._cost > MAX_EVALUATION_COST:
            raise LimitExceeded(f"evaluation too costly: more than {MAX_EVALUATION_COST} steps "
                                "(each operation costs the size of the values it handles)")

    def _size(self, value: Any, depth: int = 0) -> int:
        """Return about how many characters ``repr(value)`` has, or MAX_RESULT_CHARS + 1 if more.

        A container reachable twice counts twice (that is what ``str`` or ``==`` would walk), but
        is walked once per evaluation: its size is cached by id.
        """
        kind = type(value)
        if kind is str:
            return len(value) + 2
        if kind is bytes:
            return len(value) + 3
        if kind is int:
            return value.bit_length() * 3 // 10 + 2
        if kind not in (list, tuple, dict, set, frozenset):
            return _SCALAR_SIZES.get(kind, 32)
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        if depth > MAX_NESTING:
            raise LimitExceeded(f"value nested more than {MAX_NESTING} levels deep")
        total = 2
        for item in (value if kind is not dict else (x for pair in value.items() for x in pair)):
            total += self._size(item, depth + 1) + 2
            if total > MAX_RESULT_CHARS:
                total = MAX_RESULT_CHARS + 1
                break
        self._sizes[id(value)] = (value, total)
        return total

    def _mult(self, a: Any, b: Any) -> Any:
        """``a * b``, refused before it runs if the product would be too large."""
        for seq, times in ((a, b), (b, a)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                if self._size(seq) * max(times, 0) > MAX_RESULT_CHARS:
                    raise _too_large(f"repeating a value of {self._size(seq)} characters {_number(times)} times")
        if isinstance(a, int) and isinstance(b, int) and self._size(a) + self._size(b) > MAX_RESULT_CHARS:
            raise _too_large("a product of integers")
        return a * b

    def _add(self, a: Any, b: Any) -> Any:
        """``a + b``, refused before it runs if the concatenation would be too large."""
        if isinstance(a, (str, bytes, list, tuple)) and self._size(a) + self._size(b) > MAX_RESULT_CHARS:
            raise _too_large(f"joining values of {self._size(a)} and {self._size(b)} characters")
        return a + b

    def _mod(self, a: Any, b: Any) -> Any:
        """``a % b``; for string formatting, refused before it runs if the result could be too large."""
        if isinstance(a, (str, bytes)):
            self._check_format(a.decode("latin-1") if isinstance(a, bytes) else a, b)
        return a % b

    def _check_format(self, template: str, args: Any) -> None:
        """Bound the length of ``template % args`` from its widths, precisions and arguments."""
        arguments = self._size(args)
        total, widest = len(template) + arguments, 0
        for match in _CONVERSION.finditer(template):
            width, precision, kind = match.groups()
            if kind == "%":
                continue
            if "*" in (width, precision):
                raise LimitExceeded("'%' formatting with a '*' width or precision is not allowed")
            for number in (width, precision):
                if number:  # a number of more than 18 digits is over the limit whatever it says
                    value = int(number) if len(number) <= 18 else 10 ** 18
                    widest, total = max(widest, value), total + value
            total += _CONVERSION_SLACK
            if total > MAX_RESULT_CHARS:
                raise _too_large(f"'%' formatting (a format of {len(template)} characters, widths up to "
                                 f"{widest}, arguments of {arguments} characters)")

    def _str(self, *args: Any) -> str:
        """``str``, refused before it runs on a value too large to print."""
        if args and self._size(args[0]) > MAX_RESULT_CHARS:
            raise _too_large("the text str() would give")
        return str(*args)

