"""Loading refuses unsafe, malformed or unmapped BPMN and names the file, element and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows import DefinitionError, DefinitionInvalid, Engine, UnsafeExpression, WorkflowError

BPMN_DIR = Path(__file__).resolve().parents[2] / "bpmn"
PROCESS_FILE = "case_closed_loop.bpmn"
DONE = 'handle_action == "done"'


def _variant(source: str, old: str, new: str) -> str:
    modified = source.replace(old, new)
    assert modified != source, f"{old!r} not found in the real BPMN"
    return modified


def _errors(engine: Engine, source: str, file_name: str = PROCESS_FILE) -> list[DefinitionError]:
    with pytest.raises(DefinitionInvalid) as info:
        engine.load_source(file_name, source)
    errors = info.value.errors
    assert errors, "DefinitionInvalid without errors"
    assert all(isinstance(e, DefinitionError) for e in errors)
    assert all(e.file_name == file_name for e in errors)
    assert file_name in str(info.value)
    return errors


def test_real_directory_loads_cleanly(engine):
    definitions, errors = engine.load_directory(BPMN_DIR)
    assert errors == []
    assert [d.process_id for d in definitions] == ["case_closed_loop", "routine_visit"]


# -- 10. unsafe expressions and scripts --------------------------------------------------------

UNSAFE = [
    pytest.param(DONE, "__import__('os').system('true')", "f_done", "unsafe expression",
                 "call to '__import__('os').system' is not allowed", id="import-system"),
    pytest.param(DONE, "__import__('os')", "f_done", "unsafe expression",
                 "call to '__import__' is not allowed", id="import-call"),
    pytest.param(DONE, "().__class__.__subclasses__()", "f_done", "unsafe expression",
                 "call to '().__class__.__subclasses__' is not allowed", id="subclasses"),
    pytest.param(DONE, "().__class__", "f_done", "unsafe expression",
                 "attribute access '.__class__' is not allowed", id="attribute"),
    pytest.param(DONE, "open('/etc/passwd')", "f_done", "unsafe expression",
                 "call to 'open' is not allowed", id="open"),
    pytest.param(DONE, 'handle_action == (lambda: "done")', "f_done", "unsafe expression",
                 "lambda is not allowed", id="lambda"),
    pytest.param(DONE, '(lambda: True)()', "f_done", "unsafe expression",
                 "call to 'lambda: True' is not allowed", id="lambda-call"),
    pytest.param(DONE, 'handle_action in [a for a in ("done",)]', "f_done", "unsafe expression",
                 "comprehensions are not allowed", id="list-comprehension"),
    pytest.param(DONE, 'any(a for a in (handle_action,))', "f_done", "unsafe expression",
                 "call to 'any' is not allowed", id="generator-call"),
    pytest.param(DONE, '_handle == "done"', "f_done", "unsafe expression",
                 "name '_handle' is not allowed", id="underscore-name"),
    pytest.param('satisfaction in ("satisfied", "basic")', "satisfaction.startswith('s')", "f_satisfied",
                 "unsafe expression", "call to 'satisfaction.startswith' is not allowed", id="method-call"),
    pytest.param("callback_attempts &lt; max_callback_attempts", "max_callback_attempts ** 99999999",
                 "f_retry", "unsafe expression", "'Pow' syntax is not allowed", id="pow"),
    pytest.param("reopen_count = reopen_count + 1", "x = __import__('os')", "reopen", "unsafe script",
                 "call to '__import__' is not allowed", id="script-import-call"),
    pytest.param("reopen_count = reopen_count + 1", "import os", "reopen", "unsafe script",
                 "must have the form 'name = expression'", id="script-import"),
    pytest.param("callback_attempts = callback_attempts + 1", "f = lambda: 1", "count_attempt",
                 "unsafe script", "lambda is not allowed", id="script-lambda"),
    pytest.param("callback_attempts = callback_attempts + 1", "xs = [c for c in 'abc']", "count_attempt",
                 "unsafe script", "comprehensions are not allowed", id="script-comprehension"),
    pytest.param("reopen_count = reopen_count + 1", "reopen_count = open('/etc/passwd')", "reopen",
                 "unsafe script", "call to 'open' is not allowed", id="script-open"),
]


@pytest.mark.parametrize(("old", "new", "element_id", "kind", "problem"), UNSAFE)
def test_unsafe_text_is_rejected_naming_file_element_and_problem(engine, bpmn_source, old, new,
                                                                  element_id, kind, problem):
    errors = _errors(engine, _variant(bpmn_source, old, new))
    assert len(errors) == 1
    (error,) = errors
    assert error.element_id == element_id
    assert error.problem.startswith(kind + ": ")
    assert problem in error.problem
    # The offending text is quoted so the modeller can find it.
    assert new.replace("&lt;", "<") in error.problem
    assert str(error).startswith(f"{PROCESS_FILE}: {element_id}: {kind}")


def test_every_unsafe_element_is_reported(engine, bpmn_source):
    source = _variant(bpmn_source, DONE, "open('/etc/passwd')")
    source = _variant(source, 'dispatch_to == "department"', "__import__('os')")
    source = _variant(source, "reopen_count = reopen_count + 1", "x = ().__class__")
    errors = _errors(engine, source)
    assert {e.element_id for e in errors} == {"f_done", "f_to_department", "reopen"}


def test_rejected_source_does_not_replace_loaded_definition(engine, definition, bpmn_source):
    _errors(engine, _variant(bpmn_source, DONE, "__import__('os').system('true')"))
    snap = engine.start(definition, {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3})
    assert snap.ready[0].name == "record_reply"


@pytest.mark.parametrize(("old", "new", "element_id"), [
    ('<bpmn:scriptTask id="reopen" name="重办计数">', '<bpmn:serviceTask id="reopen" name="重办计数">',
     "reopen"),
])
def test_service_task_is_rejected(engine, bpmn_source, old, new, element_id):
    source = _variant(bpmn_source, old, new)
    source = source.replace(
        "      <bpmn:script>reopen_count = reopen_count + 1\ncallback_attempts = 0</bpmn:script>\n    </bpmn:scriptTask>",
        "    </bpmn:serviceTask>")
    errors = _errors(engine, source)
    assert [(e.element_id, e.problem) for e in errors] == [(element_id, "service tasks are not supported")]


# -- 9. DTDs and entities -----------------------------------------------------------------------

NO_DTD = "DTDs and entity declarations are not allowed in BPMN files"


def _with_doctype(source: str, doctype: str) -> str:
    """Put ``doctype`` between the XML declaration and the root element."""
    head, rest = source.split("<bpmn:definitions", 1)
    return head + doctype + "\n<bpmn:definitions" + rest


DOCTYPES = [
    pytest.param('<!DOCTYPE bpmn:definitions [ <!ENTITY leak SYSTEM "file:///etc/passwd"> ]>',
                 'name="登记答复"', 'name="&leak;"', id="external-entity-in-attribute"),
    pytest.param('<!DOCTYPE bpmn:definitions [ <!ENTITY leak SYSTEM "file:///etc/passwd"> ]>',
                 DONE, "&leak;", id="external-entity-in-text"),
    pytest.param('<!DOCTYPE bpmn:definitions [ <!ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]>',
                 None, None, id="parameter-entity"),
    pytest.param('<!DOCTYPE bpmn:definitions [ <!ENTITY % p "<!ENTITY x \'1\'>"> %p; ]>',
                 None, None, id="internal-parameter-entity"),
    pytest.param('<!DOCTYPE bpmn:definitions SYSTEM "http://127.0.0.1:9/evil.dtd">', None, None, id="external-dtd"),
    pytest.param('<!DOCTYPE bpmn:definitions [ <!ENTITY a "aaaaaaaaaa"> <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"> '
                 '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"> ]>', 'name="登记答复"', 'name="&c;"', id="entity-expansion"),
    pytest.param("<!DOCTYPE bpmn:definitions>", None, None, id="bare-doctype"),
]


@pytest.mark.parametrize(("doctype", "old", "new"), DOCTYPES)
def test_dtd_and_entities_are_refused(engine, bpmn_source, doctype, old, new):
    source = _with_doctype(bpmn_source, doctype)
    if old is not None:
        source = _variant(source, old, new)
    (error,) = _errors(engine, source)
    assert error.element_id is None
    assert error.problem.startswith(NO_DTD)


def test_internal_entity_cannot_hide_an_expression_from_the_check(engine, bpmn_source):
    """The load-time check read the element's text without the entity; Spiff's parser expanded it."""
    source = _with_doctype(bpmn_source, '<!DOCTYPE bpmn:definitions [ <!ENTITY x "__import__(\'os\').system(\'true\')"> ]>')
    (error,) = _errors(engine, _variant(source, DONE, "&x;"))
    assert error.problem.startswith(NO_DTD)


def test_spiff_parses_the_checked_tree(engine, bpmn_source, monkeypatch):
    """SpiffWorkflow's parser must not parse the text again with its own (entity-resolving) parser."""
    from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser

    def refuse(*args, **kwargs):
        raise AssertionError("the engine handed SpiffWorkflow the raw text")

    monkeypatch.setattr(BpmnParser, "add_bpmn_str", refuse)
    monkeypatch.setattr(BpmnParser, "add_bpmn_file", refuse)
    monkeypatch.setattr(BpmnParser, "add_bpmn_io", refuse)
    assert engine.load_source(PROCESS_FILE, bpmn_source).process_id == "case_closed_loop"


def test_load_directory_skips_a_file_with_entities_and_loads_the_rest(engine, bpmn_source, tmp_path):
    """A parameter entity used to raise an uncaught XMLSyntaxError, and the whole app failed to start."""
    (tmp_path / PROCESS_FILE).write_text(bpmn_source, encoding="utf-8")
    evil = _with_doctype(bpmn_source.replace('"case_closed_loop"', '"evil"'),
                         '<!DOCTYPE bpmn:definitions [ <!ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]>')
    (tmp_path / "evil.bpmn").write_text(evil, encoding="utf-8")
    (tmp_path / "latin1.bpmn").write_bytes(bpmn_source.replace('"case_closed_loop"', '"latin1"').encode("gb18030"))

    definitions, errors = engine.load_directory(tmp_path)

    assert [d.process_id for d in definitions] == ["case_closed_loop"]
    by_file = {e.file_name: e for e in errors}
    assert set(by_file) == {"evil.bpmn", "latin1.bpmn"}
    assert by_file["evil.bpmn"].problem.startswith(NO_DTD)
    assert by_file["latin1.bpmn"].problem.startswith("not UTF-8 text")


# -- 11. malformed XML, lanes, directories -----------------------------------------------------


def test_truncated_file_is_malformed_xml(engine, bpmn_source):
    (error,) = _errors(engine, bpmn_source[: len(bpmn_source) // 2])
    assert error.file_name == PROCESS_FILE
    assert error.element_id is None
    assert error.problem.startswith("malformed XML")
    assert "line" in error.problem


def test_empty_file_is_malformed_xml(engine):
    (error,) = _errors(engine, "")
    assert error.problem.startswith("malformed XML")


def test_file_name_must_be_the_process_id(engine, bpmn_source):
    (error,) = _errors(engine, bpmn_source, "other_name.bpmn")
    assert error.element_id is None
    assert 'no <bpmn:process id="other_name">' in error.problem


def test_user_task_without_lane_is_rejected(engine, bpmn_source):
    source = _variant(bpmn_source, "<bpmn:flowNodeRef>dispatch</bpmn:flowNodeRef>", "")
    (error,) = _errors(engine, source)
    assert error.element_id == "dispatch"
    assert error.problem == "user task is not in a lane"


def test_lane_not_mapped_to_a_role_is_rejected(engine, bpmn_source):
    source = _variant(bpmn_source, 'name="职能部门"', 'name="物业公司"')
    (error,) = _errors(engine, source)
    assert error.element_id == "handle_department"
    assert "'物业公司'" in error.problem
    assert "not mapped to a role" in error.problem


def test_engine_without_a_lane_role_rejects_the_real_file(bpmn_source):
    engine = Engine({"网格员": "grid_member", "网格长": "grid_leader", "街道办": "street_office"})
    errors = _errors(engine, bpmn_source)
    assert [e.element_id for e in errors] == ["handle_department"]
    assert "'职能部门'" in errors[0].problem


def test_load_directory_reports_bad_files_and_loads_the_rest(engine, bpmn_source, tmp_path):
    (tmp_path / PROCESS_FILE).write_text(bpmn_source, encoding="utf-8")
    (tmp_path / "broken.bpmn").write_text(bpmn_source[:500], encoding="utf-8")
    unsafe = (_variant(bpmn_source, DONE, "open('/etc/passwd')")
              .replace('id="case_closed_loop"', 'id="unsafe_loop"')
              .replace('processRef="case_closed_loop"', 'processRef="unsafe_loop"'))
    (tmp_path / "unsafe_loop.bpmn").write_text(unsafe, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not bpmn", encoding="utf-8")

    definitions, errors = engine.load_directory(tmp_path)

    assert [d.file_name for d in definitions] == [PROCESS_FILE]
    assert definitions[0].process_id == "case_closed_loop"
    by_file = {e.file_name: e for e in errors}
    assert set(by_file) == {"broken.bpmn", "unsafe_loop.bpmn"}
    assert by_file["broken.bpmn"].problem.startswith("malformed XML")
    assert by_file["unsafe_loop.bpmn"].element_id == "f_done"
    assert "call to 'open'" in by_file["unsafe_loop.bpmn"].problem
    # The good definition is runnable.
    snap = engine.start(definitions[0], {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3})
    assert snap.ready[0].name == "record_reply"


def test_load_directory_on_empty_dir(engine, tmp_path):
    assert engine.load_directory(tmp_path) == ([], [])


# -- expressions outside the statically checked elements ---------------------------------------


def _with_conditional_event(source: str, condition: str) -> str:
    """Insert an intermediate conditional catch event ``cond`` between start and record_reply."""
    source = _variant(source, '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="record_reply" />',
                      '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="cond" />\n'
                      '    <bpmn:intermediateCatchEvent id="cond"><bpmn:incoming>f_start</bpmn:incoming>'
                      '<bpmn:outgoing>f_cond</bpmn:outgoing><bpmn:conditionalEventDefinition id="cond_def">'
                      f'<bpmn:condition xsi:type="bpmn:tFormalExpression">{condition}</bpmn:condition>'
                      '</bpmn:conditionalEventDefinition></bpmn:intermediateCatchEvent>\n'
                      '    <bpmn:sequenceFlow id="f_cond" sourceRef="cond" targetRef="record_reply" />')
    source = _variant(source, "<bpmn:flowNodeRef>start</bpmn:flowNodeRef>",
                      "<bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>cond</bpmn:flowNodeRef>")
    return _variant(source, "<bpmn:incoming>f_start</bpmn:incoming>\n      <bpmn:outgoing>f_record",
                    "<bpmn:incoming>f_cond</bpmn:incoming>\n      <bpmn:outgoing>f_record")


def test_conditional_event_with_safe_condition_runs(engine, bpmn_source):
    definition = engine.load_source(PROCESS_FILE, _with_conditional_event(bpmn_source, "reopen_count == 0"))
    snap = engine.start(definition, {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3})
    assert snap.path == ("start", "cond")
    assert [t.name for t in snap.ready] == ["record_reply"]


def test_unsafe_conditional_event_is_never_executed(engine, bpmn_source, tmp_path):
    """The runtime evaluator refuses the condition even though loading did not (see next test)."""
    marker = tmp_path / "pwned"
    source = _with_conditional_event(bpmn_source, f"__import__('os').system('touch {marker}')")
    try:
        definition = engine.load_source(PROCESS_FILE, source)
    except DefinitionInvalid:
        return  # rejected up front: even better
    with pytest.raises(WorkflowError) as info:
        engine.start(definition, {"reopen_count": 0, "callback_attempts": 0, "max_callback_attempts": 3})
    assert "cond" in str(info.value)
    assert not marker.exists()


def test_unsafe_conditional_event_is_rejected_at_load(engine, bpmn_source):
    source = _with_conditional_event(bpmn_source, "__import__('os').system('true')")
    errors = _errors(engine, source)
    assert len(errors) == 1
    assert errors[0].element_id in ("cond_def", "cond")
    assert errors[0].problem.startswith("unsafe expression")


# -- 15. every element the engine evaluates is checked; elements it cannot run are refused -----

SIGNAL = '<bpmn:signal id="Signal_handled" name="handling_finished" />'
CALLBACK = '<bpmn:userTask id="callback" name="回访">'
EVIL = "__import__('os').system('true')"

EVALUATED_ELSEWHERE = [
    pytest.param(CALLBACK, CALLBACK + '<bpmn:standardLoopCharacteristics testBefore="false" loopMaximum="3">'
                 f'<bpmn:loopCondition xsi:type="bpmn:tFormalExpression">{EVIL}</bpmn:loopCondition>'
                 '</bpmn:standardLoopCharacteristics>', "callback", id="loopCondition"),
    pytest.param(SIGNAL, SIGNAL + '<bpmn:message id="m" name="m" /><bpmn:correlationProperty id="cp" name="cp">'
                 f'<bpmn:correlationPropertyRetrievalExpression messageRef="m"><bpmn:messagePath>{EVIL}'
                 '</bpmn:messagePath></bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>',
                 "cp", id="messagePath"),
    pytest.param(SIGNAL, SIGNAL + '<bpmn:message id="m" name="m" /><bpmn:correlationProperty id="cp" name="cp">'
                 '<bpmn:correlationPropertyRetrievalExpression messageRef="m"><bpmn:formalExpression>'
                 f'{EVIL}</bpmn:formalExpression></bpmn:correlationPropertyRetrievalExpression>'
                 '</bpmn:correlationProperty>', "cp", id="retrieval-formalExpression"),
    pytest.param(SIGNAL, '<bpmn:signal id="Signal_handled" name="handling_finished"><bpmn:extensionElements>'
                 f'<spiffworkflow:payloadExpression>{EVIL}</spiffworkflow:payloadExpression>'
                 '</bpmn:extensionElements></bpmn:signal>', "Signal_handled", id="signal-payloadExpression"),
    pytest.param(CALLBACK, CALLBACK + '<bpmn:multiInstanceLoopCharacteristics>'
                 f'<bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">3</bpmn:loopCardinality>'
                 f'<bpmn:completionCondition xsi:type="bpmn:tFormalExpression">{EVIL}</bpmn:completionCondition>'
                 '</bpmn:multiInstanceLoopCharacteristics>', "callback", id="completionCondition"),
    pytest.param(CALLBACK, CALLBACK + '<bpmn:dataInputAssociation id="dia"><bpmn:assignment><bpmn:from '
                 f'xsi:type="bpmn:tFormalExpression">{EVIL}</bpmn:from><bpmn:to xsi:type="bpmn:tFormalExpression">x'
                 '</bpmn:to></bpmn:assignment></bpmn:dataInputAssociation>', "dia", id="any-tFormalExpression"),
]


@pytest.mark.parametrize(("old", "new", "element_id"), EVALUATED_ELSEWHERE)
def test_every_evaluated_expression_is_checked_at_load(engine, bpmn_source, old, new, element_id):
    errors = _errors(engine, _variant(bpmn_source, old, new))
    assert [(e.element_id, e.problem.split(":")[0]) for e in errors] == [(element_id, "unsafe expression")]
    assert "call to '__import__('os').system' is not allowed" in errors[0].problem


def test_loop_condition_is_still_refused_at_run_time():
    """Both guards stay: the runtime evaluator refuses what a load-time check might ever miss."""
    from workflows.engine import _RestrictedEnvironment

    with pytest.raises(UnsafeExpression):
        _RestrictedEnvironment().evaluate(EVIL, {})


REVIEW = '<bpmn:userTask id="review_archive" name="审核归档">'


@pytest.mark.parametrize(("tag", "problem"), [
    ("manualTask", "manual tasks cannot be completed in GridLoop"),
    ("task", "plain tasks (bpmn:task) cannot be completed in GridLoop"),
])
def test_tasks_nobody_can_complete_are_refused(engine, bpmn_source, tag, problem):
    """Spiff reports them as ready, but the tracker can complete only user tasks: the case would be stuck."""
    source = _variant(bpmn_source, REVIEW, f'<bpmn:{tag} id="review_archive" name="审核归档">')
    source = _variant(source, "</bpmn:userTask>\n    <bpmn:endEvent id=\"end\"",
                      f"</bpmn:{tag}>\n    <bpmn:endEvent id=\"end\"")
    (error,) = _errors(engine, source)
    assert error.element_id == "review_archive"
    assert error.problem.startswith(problem)
    assert "bpmn:userTask in a lane" in error.problem


@pytest.mark.parametrize(("old", "new", "element_id", "problem"), [
    (REVIEW, '<bpmn:receiveTask id="review_archive" name="审核归档" messageRef="m">', "review_archive",
     "receive tasks are not supported"),
    (REVIEW, '<bpmn:sendTask id="review_archive" name="审核归档" messageRef="m">', "review_archive",
     "send tasks are not supported"),
    ('<bpmn:signalEventDefinition signalRef="Signal_handled" />\n    </bpmn:intermediateThrowEvent>',
     '<bpmn:messageEventDefinition id="med" messageRef="m" />\n    </bpmn:intermediateThrowEvent>',
     "throw_handled", "message events are not supported"),
])
def test_message_elements_are_refused(engine, bpmn_source, old, new, element_id, problem):
    """GridLoop delivers no BPMN messages: a receiver would wait forever, a sender would talk to no one."""
    source = _variant(_variant(bpmn_source, SIGNAL, SIGNAL + '<bpmn:message id="m" name="m" />'), old, new)
    if "Task" in new:
        tag = new.split()[0][1:]
        source = _variant(source, "</bpmn:userTask>\n    <bpmn:endEvent id=\"end\"",
                          f"</{tag}>\n    <bpmn:endEvent id=\"end\"")
    (error,) = _errors(engine, source)
    assert (error.element_id, error.problem.split(":")[0]) == (element_id, problem)
    assert "GridLoop delivers no BPMN messages" in error.problem
