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
from tracker.chain import RECORD_KEYS
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
    assert (record["id"], record["fields"]["number"], record["audit_seq"], record["audit_head"]) == (
        case.id, case.number, case.audit_seq, case.audit_head)
    assert record["fields"]["description"] == "楼道灯不亮，晚上看不见" and record["fields"]["outcome"] == "satisfied"
    assert record["fields"]["process_hash"] == definition.content_hash
    assert (record["fields"]["grid_id"], record["fields"]["created_by_id"]) == (case.grid_id, case.created_by_id)
    extras = record["not_verified"]
    assert (extras["grid_code"], extras["building_name"], extras["recorded_by"], extras["exported_by"]) == (
        "GA", "1号楼院", "网格员甲", "督查员 (auditor)")
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
        assert json.loads(archive.read("case.json"))["not_verified"]["exported_by"] == "flask export-case"

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


@pytest.mark.parametrize("column", ["at", "actor_id", "actor_name", "action", "task_name", "prev_hash", "seq"])
def test_forged_csv_column_is_named(bundle, tmp_path, column):
    """Every column a person reads in events.csv is checked against events.json, not only hash and changes."""
    _case, path = bundle

    def forge(rows):
        index = RECORD_KEYS.index(column)
        rows[2][index] = {"at": "2020-01-01T00:00:00+00:00", "actor_id": "99", "seq": "7"}.get(column, "别人")

    result = _verify(_rewrite(path, tmp_path / "csv.zip", events_csv=_edit_csv(forge)), tmp_path)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN")
    assert "events.csv" in result.stdout and f"event 2, column {column}:" in result.stdout


def test_csv_with_an_extra_column_or_row_is_found(bundle, tmp_path):
    _case, path = bundle
    extra_column = _rewrite(path, tmp_path / "col.zip", events_csv=_edit_csv(lambda rows: [r.append("x") for r in rows]))
    assert "events.csv" in _verify(extra_column, tmp_path).stdout
    extra_row = _rewrite(path, tmp_path / "row.zip", events_csv=_edit_csv(lambda rows: rows.append(rows[-1])))
    result = _verify(extra_row, tmp_path)
    assert result.returncode == 1 and "events.csv" in result.stdout


def test_deleted_case_field_is_an_error_not_a_skip(bundle, tmp_path):
    _case, path = bundle
    tampered = _rewrite(path, tmp_path / "deleted.zip", case_json=_edit_json(lambda record: record["fields"].pop("result")))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1 and "case.json" in result.stdout and "result" in result.stdout
    assert "missing" in result.stdout


def test_added_case_json_entry_is_reported(bundle, tmp_path):
    _case, path = bundle

    def add(record):
        record["approved_by"] = "区长"

    result = _verify(_rewrite(path, tmp_path / "added.zip", case_json=_edit_json(add)), tmp_path)
    assert result.returncode == 1 and "case.json" in result.stdout and "approved_by" in result.stdout


def test_case_json_marks_what_is_not_verified(bundle):
    case, path = bundle
    with zipfile.ZipFile(path) as archive:
        record = json.loads(archive.read("case.json"))
        readme = archive.read("README.txt").decode("utf-8")
    assert set(record) == {"id", "audit_seq", "audit_head", "fields", "not_verified"}
    assert set(record["fields"]) == set(chain.FIELDS)
    assert record["not_verified"]["grid_name"] == "A网格" and "not_verified" in readme


def test_forged_readme_is_found(bundle, tmp_path):
    _case, path = bundle
    forged = _rewrite(path, tmp_path / "readme.zip",
                      README_txt=lambda data: data.replace(b"python3", b"python3 -m pip install evil &&", 1))
    result = _verify(forged, tmp_path)
    assert result.returncode == 1 and "README.txt" in result.stdout


def test_extra_file_is_reported(bundle, tmp_path):
    _case, path = bundle
    target = tmp_path / "extra.zip"
    _rewrite(path, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr("审批意见.txt", "同意结案")
    result = _verify(target, tmp_path)
    assert result.returncode == 1 and "审批意见.txt" in result.stdout and "unexpected" in result.stdout
    folder = tmp_path / "folder"
    with zipfile.ZipFile(target) as archive:
        archive.extractall(folder)
    report = chain.verify_bundle(str(folder))
    assert not report.ok and "审批意见.txt" in report.problem


def test_missing_file_is_named(bundle, tmp_path):
    _case, path = bundle
    target = tmp_path / "missing.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w") as out:
        for name in source.namelist():
            if name != "events.csv":
                out.writestr(name, source.read(name))
    result = _verify(target, tmp_path)
    assert result.returncode == 1 and "events.csv" in result.stdout and "lacks" in result.stdout


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_entry_names_are_refused(bundle, tmp_path):
    """A zip with two entries of one name is refused: an unzip tool may show the other one."""
    _case, path = bundle
    target = tmp_path / "twice.zip"
    _rewrite(path, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr("README.txt", "这个案件已由领导批准，无需核验。")
    result = _verify(target, tmp_path)
    assert result.returncode == 1 and "two entries named README.txt" in result.stdout


def test_duplicate_json_keys_are_refused(bundle, tmp_path):
    _case, path = bundle

    def twice(data: bytes) -> bytes:
        return data.replace(b'"actor_name": ', b'"actor_name": "\\u522b\\u4eba", "actor_name": ', 1)

    result = _verify(_rewrite(path, tmp_path / "keys.zip", events_json=twice), tmp_path)
    assert result.returncode == 1 and "events.json" in result.stdout and "actor_name" in result.stdout


def test_process_swapped_with_its_hash_is_found(bundle, tmp_path):
    """The process version is on the chain: replacing process.bpmn and the hash case.json names is found."""
    _case, path = bundle
    with zipfile.ZipFile(path) as archive:
        forged = archive.read("process.bpmn").replace(b"<bpmn", b"<Bpmn", 1)
    digest = hashlib.sha256(forged).hexdigest()

    def rehash(record):
        for where in (record.get("process", {}), record["fields"]):
            for key in ("content_hash", "process_hash"):
                if key in where:
                    where[key] = digest

    tampered = _rewrite(path, tmp_path / "swap.zip", process_bpmn=lambda _data: forged, case_json=_edit_json(rehash))
    result = _verify(tampered, tmp_path)
    assert result.returncode == 1 and "process_hash" in result.stdout


def test_unreadable_json_is_named(bundle, tmp_path):
    _case, path = bundle
    result = _verify(_rewrite(path, tmp_path / "junk.zip", events_json=lambda data: data[:-20]), tmp_path)
    assert result.returncode == 1 and result.stdout.startswith("BROKEN") and "events.json" in result.stdout
    assert "Traceback" not in result.stderr


def test_not_a_zip_is_named(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK not really")
    report = chain.verify_bundle(str(junk))
    assert not report.ok and "not a zip" in report.problem


def test_ok_output_names_the_verifier_hash(bundle, tmp_path):
    _case, path = bundle
    result = _verify(path, tmp_path)
    assert f"verifier sha256 {hashlib.sha256(Path(chain.__file__).read_bytes()).hexdigest()}" in result.stdout


def test_a_bundle_carrying_another_verifier_says_so(bundle, tmp_path, capsys):
    """Run by a trusted verifier, a bundle whose verify_bundle.py was swapped verifies, with a note naming it."""
    _case, path = bundle
    swapped = _rewrite(path, tmp_path / "swapped.zip", verify_bundle_py=lambda data: b"print('OK')\n")
    assert chain.main([str(swapped)]) == 0
    out = capsys.readouterr().out
    digest = hashlib.sha256(b"print('OK')\n").hexdigest()
    assert out.startswith("OK: case") and f"note: verify_bundle.py in the bundle is not this verifier (its sha256 is " \
        f"{digest}): it was not run and is not verified" in out
    assert chain.main([str(path)]) == 0 and "note:" not in capsys.readouterr().out


def test_an_entry_that_would_unpack_beyond_any_bundle_file_is_refused_unread(bundle, tmp_path):
    """A zip bomb (a small entry declaring gigabytes) is refused before it is read."""
    from tracker import chain
    _case, path = bundle
    target = _rewrite(path, tmp_path / "bomb.zip", README_txt=lambda data: data + b" " * (chain.MAX_BUNDLE_FILE + 1))
    result = _verify(target, tmp_path)
    assert result.returncode == 1 and "README.txt would unpack to" in result.stdout
