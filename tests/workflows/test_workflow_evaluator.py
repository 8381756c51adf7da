"""Direct tests of the restricted evaluator behind every condition and script."""

from __future__ import annotations

import pytest

import workflows
from workflows import evaluator
from workflows.evaluator import UnsafeExpression, check_expression, evaluate, execute, parse_script


def test_unsafe_expression_is_a_value_error_exported_by_the_package():
    assert issubclass(UnsafeExpression, ValueError)
    assert workflows.UnsafeExpression is UnsafeExpression


# -- check_expression --------------------------------------------------------------------------


@pytest.mark.parametrize("source", [
    'satisfaction in ("satisfied", "basic")',
    "len(x) > 2",
    "callback_attempts < max_callback_attempts",
    "callback_attempts >= max_callback_attempts",
    "answered_on_spot == True",
    "not done and (n >= 1 or flag is None)",
    '"a" if x else "b"',
    "x[0] == 1 and x[1:] != []",
    'd["k"] in {1, 2}',
    "min(a, b) + max(a, b) - abs(-c) * 2 // 3 % 4 / 5",
    'int("3") + round(1.5) + len(str(7))',
    "bool(x) is not False",
    "-x + +y",
    "[1, 2] + [3]",
    "  reopen_count < 3  ",
])
def test_check_expression_accepts_allowed_syntax(source):
    assert check_expression(source) is None


@pytest.mark.parametrize(("source", "message"), [
    ("__import__('os').system('true')", "call to '__import__('os').system' is not allowed"),
    ("__import__('os')", "call to '__import__' is not allowed"),
    ("().__class__.__subclasses__()", "call to '().__class__.__subclasses__' is not allowed"),
    ("().__class__", "attribute access '.__class__' is not allowed"),
    ("x.y", "attribute access '.y' is not allowed"),
    ("open('/etc/passwd')", "call to 'open' is not allowed"),
    ("eval('1')", "call to 'eval' is not allowed"),
    ("getattr(x, 'y')", "call to 'getattr' is not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("(lambda: 1)()", "call to 'lambda: 1' is not allowed"),
    ("[a for a in b]", "comprehensions are not allowed"),
    ("{a for a in b}", "comprehensions are not allowed"),
    ("{a: 1 for a in b}", "comprehensions are not allowed"),
    ("(a for a in b)", "comprehensions are not allowed"),
    ("_secret", "name '_secret' is not allowed"),
    ("__builtins__", "name '__builtins__' is not allowed"),
    ("len(x, key=1)", "keyword arguments are not allowed"),
    ("2 ** 10", "'Pow' syntax is not allowed"),
    ("(y := 1)", "'NamedExpr' syntax is not allowed"),
    ('f"{x}"', "'JoinedStr' syntax is not allowed"),
    ("x << 2", "'LShift' syntax is not allowed"),
    ("~x", "'Invert' syntax is not allowed"),
    ("x = 1", "not a valid expression"),
    ("import os", "not a valid expression"),
    ("x ==", "not a valid expression"),
])
def test_check_expression_rejects(source, message):
    with pytest.raises(UnsafeExpression) as info:
        check_expression(source)
    assert message in str(info.value)


def test_check_expression_lists_allowed_functions():
    with pytest.raises(UnsafeExpression) as info:
        check_expression("open('x')")
    assert "(allowed: abs, bool, int, len, max, min, round, str)" in str(info.value)


def test_check_expression_limits_length():
    long = " or ".join(["x == 1"] * 100)
    assert len(long) > evaluator.MAX_EXPRESSION_CHARS
    with pytest.raises(UnsafeExpression) as info:
        check_expression(long)
    assert f"the limit is {evaluator.MAX_EXPRESSION_CHARS}" in str(info.value)


def test_check_expression_refuses_again_when_called_twice():
    for _ in range(2):
        with pytest.raises(UnsafeExpression):
            check_expression("open('/etc/passwd')")


# -- evaluate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "names", "expected"), [
    ('satisfaction in ("satisfied", "basic")', {"satisfaction": "satisfied"}, True),
    ('satisfaction in ("satisfied", "basic")', {"satisfaction": "basic"}, True),
    ('satisfaction in ("satisfied", "basic")', {"satisfaction": "dissatisfied"}, False),
    ("len(x) > 2", {"x": [1, 2, 3]}, True),
    ("len(x) > 2", {"x": "ab"}, False),
    ("callback_attempts < max_callback_attempts", {"callback_attempts": 2, "max_callback_attempts": 3}, True),
    ("callback_attempts >= max_callback_attempts", {"callback_attempts": 3, "max_callback_attempts": 3}, True),
    ('handle_action == "done"', {"handle_action": "done"}, True),
    ("answered_on_spot == True", {"answered_on_spot": False}, False),
    ('d["k"] + 1', {"d": {"k": 41}}, 42),
    ("x[1:]", {"x": [1, 2, 3]}, [2, 3]),
    ("max(a, b) - min(a, b)", {"a": 3, "b": 10}, 7),
    ('"yes" if n > 0 else "no"', {"n": 0}, "no"),
    ("int(s) * 2", {"s": "21"}, 42),
    ("(1, 2)", {}, (1, 2)),
    ("  n + 1  ", {"n": 1}, 2),
])
def test_evaluate_allowed_expressions(source, names, expected):
    assert evaluate(source, names) == expected


@pytest.mark.parametrize("source", [
    "__import__('os').system('true')",
    "().__class__.__subclasses__()",
    "open('/etc/passwd')",
    "x.__class__",
])
def test_evaluate_checks_before_evaluating(source):
    with pytest.raises(UnsafeExpression):
        evaluate(source, {"x": 1})


@pytest.mark.parametrize("source", ["open", "print", "eval"])
def test_evaluate_sees_only_task_data(source):
    """Builtins are not names: referring to one fails like any undefined name."""
    with pytest.raises(Exception) as info:
        evaluate(source, {})
    assert not isinstance(info.value, UnsafeExpression)
    assert source in str(info.value)


def test_evaluate_does_not_mutate_names():
    names = {"x": [1, 2]}
    assert evaluate("x + [3]", names) == [1, 2, 3]
    assert names == {"x": [1, 2]}


# -- parse_script / execute --------------------------------------------------------------------


def test_parse_script_returns_assignments():
    assert parse_script("reopen_count = reopen_count + 1") == (("reopen_count", "reopen_count + 1"),)
    assert parse_script("a = 1\n\n  b = a * 2\n") == (("a", "1"), ("b", "a * 2"))
    assert parse_script("") == ()


def test_execute_updates_names_in_order():
    names = {"reopen_count": 1}
    execute("reopen_count = reopen_count + 1\ndoubled = reopen_count * 2", names)
    assert names == {"reopen_count": 2, "doubled": 4}


@pytest.mark.parametrize(("source", "message"), [
    ("x = __import__('os')", "call to '__import__' is not allowed"),
    ("x = open('/etc/passwd')", "call to 'open' is not allowed"),
    ("x = ().__class__", "attribute access '.__class__' is not allowed"),
    ("f = lambda: 1", "lambda is not allowed"),
    ("xs = [c for c in 'abc']", "comprehensions are not allowed"),
    ("_x = 1", "name '_x' is not allowed"),
    ("x = _y", "name '_y' is not allowed"),
    ("import os", "must have the form 'name = expression'"),
    ("from os import system", "must have the form 'name = expression'"),
    ("a.b = 1", "must have the form 'name = expression'"),
    ("a[0] = 1", "must have the form 'name = expression'"),
    ("a = b = 1", "must have the form 'name = expression'"),
    ("a, b = 1, 2", "must have the form 'name = expression'"),
    ("a += 1", "must have the form 'name = expression'"),
    ("a = 1; b = 2", "must have the form 'name = expression'"),
    ("print(1)", "must have the form 'name = expression'"),
    ("def f(): pass", "must have the form 'name = expression'"),
    ("for i in x: pass", "must have the form 'name = expression'"),
    ("x = (", "not a valid script line"),
    ("if x:\n    y = 1", "not a valid script line"),
])
def test_parse_script_rejects(source, message):
    with pytest.raises(UnsafeExpression) as info:
        parse_script(source)
    assert message in str(info.value)


def test_parse_script_limits_lines():
    ok = "\n".join(f"v{i} = {i}" for i in range(evaluator.MAX_SCRIPT_LINES))
    assert len(parse_script(ok)) == evaluator.MAX_SCRIPT_LINES
    too_long = ok + "\nlast = 1"
    with pytest.raises(UnsafeExpression) as info:
        parse_script(too_long)
    assert f"the limit is {evaluator.MAX_SCRIPT_LINES}" in str(info.value)


def test_execute_refuses_unsafe_script_without_running_earlier_lines():
    names = {"a": 1}
    with pytest.raises(UnsafeExpression):
        execute("a = 2\nb = open('/etc/passwd')", names)
    assert names == {"a": 1}
