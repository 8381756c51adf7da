"""Case bundles: downloaded or exported, verified offline by the shipped stdlib-only verifier, tampering named."""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.conftest import dispatch, intake, latest_case, open_task
from tracker import chain
from tracker.bundle import RECORD_KEYS
from tracker.models import AuditEvent, Case, ProcessDefinition

FILES = {"case.json", "events.json", "events.csv", "process.bpmn", "verify_bundle.py", "README.txt"}


def _handled_case(login, db) -> Case:
    """Record, dispatch and handle a case through the web UI, then record the callback: five events or more."""
    member, leader = login("member_a"), login("leader_a")
    assert member.submit("/cases/new", intake(db, description="楼道灯不亮，晚上看不见")).status_code == 302
    case = latest_case(db)
    assert dispatch(leader, db, case.id).status_code == 302
    handle = open_task(db, case.id)
    assert member.submit(f"/tasks/{handle.id}", {"handle_action": "done", "text": "已更换灯泡"}).status_code == 302
    callback = open_task(db, case.id)
    assert member.submit(f"/tasks/{callback.id}", {"satisfaction": "satisfied"}).status_code == 302
    return latest_case(db)


def _download(login, case: Case, username: str = "auditor") -> bytes:
    """Download a case's bundle as ``username`` and check the response's headers."""
    response = login(username).get(f"/cases/{case.id}/bundle.zip")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == f"attachment; filename=case-{case.number}-bundle.zip"
    return response.get_data()


def _verify(bundle: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the bundle's own verify_bundle.py in an empty folder, without site-packages or PYTHONPATH."""
    folder = tmp_path / "verifier"
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(bundle) as archive:
        (folder / "verify_bundle.py").write_bytes(archive.read("verify_bundle.py"))
    assert sorted(p.name for p in folder.iterdir()) == ["verify_bundle.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # -S: no site module, so not even the virtualenv's packages are importable.
    return subprocess.run([sys.executable, "-S", "verify_bundle.py", str(bundle)], cwd=folder, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)


def _rewrite(bundle: Path, target: Path, **edits) -> Path:
    """Copy a bundle, passing each member's bytes through ``edits[name]`` (file name dots as underscores)."""
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name in source.namelist():
            data = source.read(name)
            edit = edits.get(name.replace(".", "_"))
            out.writestr(name, edit(data) if edit else data)
    return target


def _edit_json(change):
    """Return an edit that loads a JSON member, applies ``change`` to it and writes it back the same way."""
    def edit(data: bytes) -> bytes:
        value = json.loads(data)
        change(value)
        return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    return edit


def _edit_csv(change):
    """Return an edit that applies ``change`` to the CSV's list of rows (header first), keeping the BOM."""
    def edit(data: bytes) -> bytes:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        change(rows)
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return ("\ufeff" + buffer.getvalue()).encode("utf-8")
    return edit


@pytest.fixture
def bundle(login, db, tmp_path) -> tuple[Case, Path]:
    """A handled case and its bundle as the auditor downloaded it."""
    case = _handled_case(login, db)
    path = tmp_path / "bundle.zip"
    path.write_bytes(_download(login, case))
    return case, path


def test_downloaded_bundle_verifies_offline_and_prints_the_head(bundle, db, tmp_path):
    case, path = bundle
    result = _verify(path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"OK: case {case.id}, {case.audit_seq} events, chain head {case.audit_head}")
    assert case.audit_seq >= 5


def test_bundle_holds_exactly_what_the_verifier_reads(bundle, db):
    case, path = bundle
    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == FILES
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
        files = {name: archive.read(name) for name in FILES}
    assert files["verify_bundle.py"] == Path(chain.__file__).read_bytes()
    definition = db.get(ProcessDefinition, case.definition_id)
    assert files["process.bpmn"] == definition.source.encode("utf-8")
    assert hashlib.sha256(files["process.bpmn"]).hexdigest() == definition.content_hash

    record = json.loads(files["case.json"])
    assert (record["id"], record["number"], record["audit_seq"], record["audit_head"]) == (
        case.id, case.number, case.audit_seq, case.audit_head)
    assert record["fields"]["description"] == "楼道灯不亮，晚上看不见" and record["fields"]["outcome"] == "satisfied"
    assert record["process"]["content_hash"] == definition.content_hash
    assert (record["grid_code"], record["building_name"], record["exported_by"]) == ("GA", "1号楼院", "督查员 (auditor)")
    assert "楼道灯不亮" in files["case.json"].decode("utf-8")  # readable, not \\u escapes

    events = json.loads(files["events.json"])
    assert [e["seq"] for e in events] == list(range(1, case.audit_seq + 1))
    assert list(events[0]) == list(RECORD_KEYS)
    assert files["events.csv"].startswith("\ufeff".encode("utf-8"))
    rows = list(csv.DictReader(io.StringIO(files["events.csv"].decode("utf-8-sig"))))
    assert [r["changes"] for r in rows] == [e["changes"] for e in events]
    assert [r["actor_name"] for r in rows] == [e["actor_name"] for e in events]
    assert "python3 verify_bundle.py" in files["README.txt"].decode("utf-8")


def test_unpacked_folder_verifies_too(bundle, tmp_path):
    _case, path = bundle
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(folder)
    report = chain.verify_bundle(str(folder))
    assert report.ok, report.problem


def test_verifier_imports_only_the_standard_library(bundle):
    _case, path = bundle
    with zipfile.ZipFile(path) as archive:
        tree = ast.parse(archive.read("verify_bundle.py"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            modules.add(node.module.split(".")[0])
    assert modules and modules <= sys.stdlib_module_names | {"__future__"}, modules - sys.stdlib_module_names


def test_edited_event_is_named(bundle, tmp_path):
    _case, path = bundle

    def rename(events):
        events[2]["actor_name"] = "别人"

    def rename_row(rows):
        rows[3][RECORD_KEYS.index("actor_name")] = "别人"

    tampered = _rewrite(path, tmp_path / "edited.zip", events_json=_edit_json(rename), events_csv=_edit_csv(rename_row))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith("BROKEN") and "event 3:" in result.stdout and "altered" in result.stdout


def test_removed_last_event_is_found(bundle, tmp_path):
    _case, path = bundle
    tampered = _rewrite(path, tmp_path / "cut.zip", events_json=_edit_json(lambda events: events.pop()),
                        events_csv=_edit_csv(lambda rows: rows.pop()))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN")
    assert "events but" in result.stdout


def test_changed_case_field_is_named(bundle, tmp_path):
    _case, path = bundle

    def change(record):
        record["fields"]["result"] = "没处理"

    tampered = _rewrite(path, tmp_path / "field.zip", case_json=_edit_json(change))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN")
    assert "case field result" in result.stdout and "没处理" in result.stdout


def test_changed_process_definition_is_found(bundle, tmp_path):
    _case, path = bundle

    tampered = _rewrite(path, tmp_path / "bpmn.zip", process_bpmn=lambda data: data.replace(b"<bpmn", b"<Bpmn", 1))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1 and "process.bpmn is not the version the case ran on" in result.stdout


def test_other_grid_gets_403_and_strangers_go_to_login(login, db, app):
    member = login("member_a")
    assert member.submit("/cases/new", intake(db)).status_code == 302
    case = latest_case(db)
    assert login("member_b").get(f"/cases/{case.id}/bundle.zip").status_code == 403
    assert login("leader_a").get(f"/cases/{case.id}/bundle.zip").status_code == 200
    assert login("auditor").get(f"/cases/{case.id + 1000}/bundle.zip").status_code == 404
    response = app.test_client().get(f"/cases/{case.id}/bundle.zip")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_export_case_command_writes_a_bundle_that_verifies(login, db, app, tmp_path, monkeypatch):
    case = _handled_case(login, db)
    runner = app.test_cli_runner()
    target = tmp_path / "out" / "evidence.zip"
    target.parent.mkdir()
    result = runner.invoke(args=["export-case", case.number, "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert f"wrote {target}" in result.output and f"chain head {case.audit_head}" in result.output
    assert f"verifier sha256 {hashlib.sha256(Path(chain.__file__).read_bytes()).hexdigest()}" in result.output
    verified = _verify(target, tmp_path)
    assert verified.returncode == 0 and f"chain head {case.audit_head}" in verified.stdout
    with zipfile.ZipFile(target) as archive:
        assert json.loads(archive.read("case.json"))["exported_by"] == "flask export-case"

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(args=["export-case", case.number])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"case-{case.number}-bundle.zip").is_file()

    assert runner.invoke(args=["export-case", "NO-SUCH-CASE"]).exit_code == 2


def test_export_case_command_still_writes_a_broken_chain_and_says_so(login, db, app, tmp_path):
    case = _handled_case(login, db)
    db.execute(update(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.seq == 2).values(actor_name="别人"))
    target = tmp_path / "evidence.zip"
    result = app.test_cli_runner().invoke(args=["export-case", case.number, "-o", str(target)])
    assert result.exit_code == 1 and "BROKEN: event 2:" in result.output
    verified = _verify(target, tmp_path)
    assert verified.returncode == 1 and "event 2:" in verified.stdout
