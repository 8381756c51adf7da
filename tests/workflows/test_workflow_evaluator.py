"""Direct tests of the restricted evaluator behind every condition and script."""

from __future__ import annotations

import time

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


# -- 8. bounded size and work ------------------------------------------------------------------

#: Generous for a slow CI machine; the refusals below take microseconds, the attacks took seconds to minutes.
FAST = 0.5


def _refused(source: str, names: dict | None = None, script: bool = False) -> str:
    """Evaluate (or execute) ``source``, expecting a fast refusal; return its message."""
    started = time.perf_counter()
    with pytest.raises(evaluator.LimitExceeded) as info:
        if script:
            execute(source, dict(names or {}))
        else:
            evaluate(source, dict(names or {}))
    assert time.perf_counter() - started < FAST, f"{source!r} took too long to refuse"
    return str(info.value)


TOO_LARGE = "result too large: "


@pytest.mark.parametrize(("source", "names", "message"), [
    pytest.param("len('%01400000000d' % 0)", {}, TOO_LARGE, id="percent-width-1.4GB"),
    pytest.param("'%0*d' % (1400000000, 0)", {}, "'%' formatting with a '*' width or precision is not allowed", id="percent-star-width"),
    pytest.param("'%.1400000000f' % 1.5", {}, TOO_LARGE, id="percent-precision"),
    pytest.param("'%(a)0999999999d' % d", {"d": {"a": 1}}, TOO_LARGE, id="percent-mapping-width"),
    pytest.param("fmt % 0", {"fmt": "%09999d" * 2000}, TOO_LARGE, id="percent-format-from-data"),
    pytest.param("'%s' % (x,)", {"x": [[1] * 1000] * 1000}, TOO_LARGE, id="percent-s-of-shared-list"),
    pytest.param("str([[1]*10000]*10000)", {}, TOO_LARGE, id="str-of-shared-list-27s"),
    pytest.param("str(x)", {"x": [[1] * 10000] * 10000}, TOO_LARGE, id="str-of-shared-list-from-data"),
    pytest.param("[[1]*10000]*10000 == [[1]*10000]*10000", {}, TOO_LARGE, id="compare-shared-lists"),
    pytest.param("[[1]*100000]*100000 == [[1]*100000]*100000", {}, TOO_LARGE, id="compare-shared-lists-10^10"),
    pytest.param("[0] in [[0]*100000]*100000", {}, TOO_LARGE, id="in-shared-lists"),
    pytest.param("{((1,)*50000,)*50000}", {}, TOO_LARGE, id="hash-of-shared-tuples"),
    pytest.param("'ab' * 100000000", {}, TOO_LARGE, id="string-repetition"),
    pytest.param("['ab'] * 60000", {}, TOO_LARGE, id="list-repetition-expanded"),
    pytest.param("[s, s, s]", {"s": "x" * 60000}, TOO_LARGE, id="literal-of-big-strings"),
    pytest.param("s + s", {"s": "x" * 60000}, TOO_LARGE, id="string-concatenation"),
    pytest.param("x * x * x * x * x * x * x * x", {"x": 7 ** 30000}, TOO_LARGE, id="huge-integer"),
    pytest.param("round(1, -100000000)", {}, "round: ndigits must be between -100 and 100", id="round-huge-ndigits"),
])
def test_evaluate_refuses_huge_results_fast(source, names, message):
    refusal = _refused(source, names)
    assert refusal.startswith(message)
    if message == TOO_LARGE:
        assert refusal.endswith(f" exceeds {evaluator.MAX_RESULT_CHARS} characters")


def test_refusal_names_what_is_too_large():
    message = _refused("len('%01400000000d' % 0)")
    assert "'%' formatting" in message
    assert "1400000000" in message
    assert _refused("str([[1]*10000]*10000)").startswith("result too large: repeating a value of ")
    assert _refused("str(x)", {"x": [[1] * 10000] * 10000}) == (
        f"result too large: the text str() would give exceeds {evaluator.MAX_RESULT_CHARS} characters")


def test_script_cannot_grow_a_value_across_lines():
    """Every assigned value is bounded, so a script cannot build something huge step by step."""
    script = "a = [1] * 1000\nb = [a] * 1000\nc = str(b)"
    message = _refused(script, script=True)
    assert message.startswith("result too large")


def test_evaluation_work_is_bounded():
    """Many cheap-looking operations on big (but allowed) values add up to a refusal, not minutes of CPU."""
    names = {"x": "y" * 60000, "y": "".join(["y"] * 60000)}
    source = " and ".join(["x == y"] * 40)
    assert len(source) <= evaluator.MAX_EXPRESSION_CHARS
    message = _refused(source, names)
    assert message.startswith("evaluation too costly: ")
    assert str(evaluator.MAX_EVALUATION_COST) in message


@pytest.mark.parametrize(("source", "names", "expected"), [
    ("'%05d-%s' % (n, s)", {"n": 42, "s": "ok"}, "00042-ok"),
    ("'%.2f' % x", {"x": 3.14159}, "3.14"),
    ("'%(a)s' % d", {"d": {"a": 1}}, "1"),
    ("'100%%' % ()", {}, "100%"),
    ("n % 7", {"n": 100}, 2),
    ("str(xs)", {"xs": list(range(100))}, str(list(range(100)))),
    ("len([0] * 1000)", {}, 1000),
    ("'ab' * 3", {}, "ababab"),
    ("round(1234, -2)", {}, 1200),
    ("round(2.675, 2)", {}, 2.67),
    ("x in big", {"x": 3, "big": list(range(200000))}, True),
    ("len(big) > 10", {"big": list(range(200000))}, True),
])
def test_bounded_operations_still_work(source, names, expected):
    assert evaluate(source, names) == expected


def test_engine_reports_a_refused_evaluation_at_its_element(engine, bpmn_source):
    """A process whose condition passes the load-time check but builds 1.4 GB at run time fails fast, saying why."""
    source = bpmn_source.replace("answered_on_spot == True", "len('%01400000000d' % 0) > 0 and answered_on_spot")
    assert source != bpmn_source
    definition = engine.load_source("case_closed_loop.bpmn", source)
    snap = engine.start(definition, {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3})
    started = time.perf_counter()
    with pytest.raises(workflows.WorkflowError) as info:
        engine.complete_task(definition, snap.state, snap.ready[0].id, {"answered_on_spot": True})
    assert time.perf_counter() - started < FAST
    assert "result too large: '%' formatting" in str(info.value)
    assert f"exceeds {evaluator.MAX_RESULT_CHARS} characters" in str(info.value)


SPIN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="x">
  <bpmn:process id="spin" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="网格员"><bpmn:flowNodeRef>done</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="count" />
    <bpmn:scriptTask id="count"><bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>f_again</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="count" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="f_out"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f_again</bpmn:outgoing><bpmn:outgoing>f_out</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_again" sourceRef="gw" targetRef="count">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">n &lt; limit</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_out" sourceRef="gw" targetRef="done" />
    <bpmn:userTask id="done"><bpmn:incoming>f_out</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="done" targetRef="end" />
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_loop_of_automatic_steps_is_stopped(engine):
    """Each evaluation is cheap, but a gateway looping back to a script would run (and grow the state) for hours."""
    from workflows.engine import MAX_AUTOMATIC_TASKS

    definition = engine.load_source("spin.bpmn", SPIN)
    snap = engine.start(definition, {"n": 0, "limit": 10})  # a short loop is fine
    assert [t.name for t in snap.ready] == ["done"] and snap.ready[0].data["n"] == 10
    started = time.perf_counter()
    with pytest.raises(workflows.WorkflowError) as info:
        engine.start(definition, {"n": 0, "limit": 10 ** 9})
    assert time.perf_counter() - started < 5
    assert f"more than {MAX_AUTOMATIC_TASKS} automatic steps" in str(info.value)
