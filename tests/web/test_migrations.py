"""Alembic migrations: from empty to head they build exactly the models' schema; upgrades keep data."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tracker.migrate import downgrade, upgrade
from tracker.models import Base


def _fresh_url(request, tmp_path, file: str = "empty") -> str:
    """Return an empty database on the selected backend (``file`` names it on SQLite)."""
    from tests.conftest import BACKEND, _numbers
    if BACKEND == "postgresql":
        cluster = request.getfixturevalue("pg_cluster")
        name = f"empty_{next(_numbers)}"
        cluster.execute(f"CREATE DATABASE {name}")
        return cluster.url(name)
    return f"sqlite:///{tmp_path / f'{file}.sqlite3'}"


def test_migrations_from_empty_match_the_models(request, tmp_path):
    engine = create_engine(_fresh_url(request, tmp_path))
    upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    assert diff == []


def _checks(engine) -> dict[str, set[tuple[str, str]]]:
    """Return each table's named CHECK constraints as (name, SQL text) pairs."""
    found = inspect(engine)
    return {table: {(c["name"], c["sqltext"]) for c in found.get_check_constraints(table)}
            for table in found.get_table_names() if table != "alembic_version"}


def test_migrations_from_empty_give_the_models_check_constraints(request, tmp_path):
    """compare_metadata does not compare CHECK constraints: each coded column's value list is compared here."""
    migrated = create_engine(_fresh_url(request, tmp_path))
    upgrade(migrated)
    modelled = create_engine(_fresh_url(request, tmp_path, "modelled"))
    Base.metadata.create_all(modelled)
    try:
        assert _checks(migrated) == _checks(modelled)
        assert "ck_case_channel" in {name for name, _ in _checks(migrated)["case"]}
    finally:
        migrated.dispose()
        modelled.dispose()


def _head() -> str:
    """Return the newest revision (the migration files are numbered)."""
    from pathlib import Path
    return max(p.name[:4] for p in (Path(__file__).parents[2] / "migrations" / "versions").glob("[0-9]*.py"))


def test_upgrade_across_a_schema_change_keeps_the_data(request, tmp_path):
    engine = create_engine(_fresh_url(request, tmp_path))
    upgrade(engine, "0001")
    assert "ix_case_grid_created" not in {i["name"] for i in inspect(engine).get_indexes("case")}
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO community (id, name) VALUES (1, '旧社区')"))
        connection.execute(text("INSERT INTO grid (id, community_id, code, name) VALUES (1, 1, 'G1', '一网格')"))
    upgrade(engine)
    names = {i["name"] for i in inspect(engine).get_indexes("case")}
    assert {"ix_case_grid_created", "ix_case_status_created"} <= names
    with engine.connect() as connection:
        assert connection.execute(text("SELECT name FROM grid WHERE code = 'G1'")).scalar() == "一网格"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()
    downgrade(engine, "0001")
    assert "ix_case_grid_created" not in {i["name"] for i in inspect(engine).get_indexes("case")}
    engine.dispose()


def test_upgrade_compresses_existing_workflow_states_and_cases_keep_running(app, db, login, request, tmp_path):
    """A case recorded on schema 0002 (JSON text state) continues after the upgrade to 0003."""
    import json
    import zlib

    from tests.conftest import dispatch, intake, latest_case, open_task
    login("member_a").submit("/cases/new", intake(db))
    case = latest_case(db)
    engine = app.extensions["gridloop.db"]
    state = db.execute(text('SELECT workflow_state FROM "case" WHERE id = :i'), {"i": case.id}).scalar()
    downgrade(engine, "0002")
    stored = db.execute(text('SELECT workflow_state FROM "case" WHERE id = :i'), {"i": case.id}).scalar()
    assert json.loads(stored) == json.loads(zlib.decompress(state))
    upgrade(engine)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    assert open_task(db, case.id).name == "handle_member"


def test_backfill_stamps_existing_tasks_as_live_stamping_does(app, db, login):
    """Tasks and chain heads of cases from before 0006 get the event numbers the app would have given."""
    from sqlalchemy import select

    from tests.conftest import dispatch, intake, latest_case, open_task
    from tracker.models import Case, Task
    for _ in range(2):
        login("member_a").submit("/cases/new", intake(db))
        case = latest_case(db)
        dispatch(login("leader_a"), db, case.id)
        login("member_a").submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "修好了"})
    live = db.execute(select(Task.id, Task.opened_seq, Task.closed_seq).order_by(Task.id)).all()
    heads = db.execute(select(Case.id, Case.audit_head).order_by(Case.id)).all()
    assert all(row.opened_seq for row in live) and len(live) == 8
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0005")
    upgrade(engine)
    db.expire_all()
    assert db.execute(select(Task.id, Task.opened_seq, Task.closed_seq).order_by(Task.id)).all() == live
    assert db.execute(select(Case.id, Case.audit_head).order_by(Case.id)).all() == heads


def _file_through_open311(app, db, secret: str):
    """File a request through Open311 with a token; return the case."""
    from tests.conftest import building_id, latest_case
    filed = app.test_client().post("/open311/v2/requests.json", data={
        "api_key": secret, "service_code": "property_repair", "description": "楼道灯不亮",
        "address_id": str(building_id(db, "GA"))})
    assert filed.status_code == 201
    return latest_case(db)


def test_upgrade_to_0010_puts_the_door_on_every_chain_and_keeps_older_cases_private(app, db, login, monkeypatch):
    """Before 0010 any member could pick the channel "Open311 app": older cases become private, on their chains,
    until `flask publish-open311` publishes those a program account filed."""
    from sqlalchemy import select

    from tests.conftest import intake, latest_case, user_id
    from tracker.chain import AUDITED
    from tracker.models import AuditEvent, User
    from tracker.services import tokens
    from tracker.services.audit import verify_chain
    secret = tokens.create(db, db.get(User, user_id(db, "member_a")), "app", scope="open311")[1]
    db.commit()
    recent = _file_through_open311(app, db, secret)  # opened since 0010: its chain names its door
    with monkeypatch.context() as old_code:  # cases opened before 0010 recorded no door
        old_code.setattr("tracker.services.audit.AUDITED", tuple(f for f in AUDITED if f != "intake"))
        older = _file_through_open311(app, db, secret)
        login("leader_a").submit("/cases/new", intake(db, description="独居老人，家中有困难"))
        forged = latest_case(db)
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0009")
    db.execute(text('UPDATE "case" SET channel = \'open311\' WHERE id = :i'), {"i": forged.id})
    upgrade(engine)
    doors = dict(db.execute(text('SELECT id, intake FROM "case"')).all())
    assert (doors[recent.id], doors[older.id], doors[forged.id]) == ("open311", "web", "web")

    def public() -> list[str]:
        return [r["service_request_id"] for r in app.test_client().get("/open311/v2/requests.json").get_json()]

    def last_action(case_id: int) -> str:
        return db.scalars(select(AuditEvent.action).where(AuditEvent.case_id == case_id)
                          .order_by(AuditEvent.seq.desc())).first()

    assert public() == [recent.number]
    assert last_action(older.id) == "audit.intake_recorded"
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["publish-open311", "member_a"])
    assert older.number in listed.output and "1 case(s) would be published" in listed.output
    assert public() == [recent.number]
    assert runner.invoke(args=["publish-open311", "member_a", "--yes"]).exit_code == 0
    assert sorted(public()) == sorted([recent.number, older.number])
    assert last_action(older.id) == "case.intake_corrected"
    staff = runner.invoke(args=["publish-open311", "leader_a", "--yes"])
    assert staff.exit_code != 0 and "leader_a never had an API token" in staff.output
    with app.app_context():
        from tracker.db import get_session
        assert all(verify_chain(get_session(), case.id).ok for case in (recent, older))
        assert not verify_chain(get_session(), forged.id).ok  # its channel was changed behind the chain


def _rows(db, table: str) -> list[dict]:
    """Return a table's rows as plain mappings, in key order (read with SQL, not the models)."""
    return [dict(row) for row in db.execute(text(f'SELECT * FROM "{table}" ORDER BY id')).mappings()]


def _add_household(db, care_group: str) -> None:
    """Insert a household of grid A with ``care_group`` through SQL."""
    from tests.conftest import building_id
    db.execute(text("INSERT INTO household (grid_id, building_id, address_detail, head_name, phone, care_group, note) "
                    "SELECT grid_id, id, '1单元101', '王奶奶', '', :c, '' FROM building WHERE id = :b"),
               {"c": care_group, "b": building_id(db)})


def test_upgrade_to_0011_refuses_values_outside_the_codes_and_names_them(app, db, login):
    """Rows holding other values stop the upgrade with a message naming table, column and values; nothing changes."""
    from tests.conftest import intake, latest_case, open_task
    login("member_a").submit("/cases/new", intake(db))
    case_id = latest_case(db).id  # read before the downgrade: the row's newer columns are gone after it
    task_id = open_task(db, case_id).id
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0010")
    db.execute(text('UPDATE "case" SET channel = \'fax\', outcome = \'happy\' WHERE id = :i'), {"i": case_id})
    db.execute(text("UPDATE task SET form_key = 'legacy_form' WHERE id = :t"), {"t": task_id})
    _add_household(db, "elderly")
    _add_household(db, "elderly")
    with pytest.raises(CommandError) as refused:
        upgrade(engine)
    message = str(refused.value)
    assert "case.channel: 'fax' (1 row); allowed: 'walk_in', 'phone'" in message
    assert "case.outcome: 'happy' (1 row)" in message
    assert "task.form_key: 'legacy_form' (1 row)" in message
    assert "household.care_group: 'elderly' (2 rows); allowed: '', 'elderly_alone'" in message
    assert "case.urgency" not in message and "UPDATE" in message
    assert db.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0010"
    assert db.execute(text('SELECT channel FROM "case" WHERE id = :i'), {"i": case_id}).scalar() == "fax"
    db.execute(text('UPDATE "case" SET channel = \'phone\', outcome = NULL WHERE id = :i'), {"i": case_id})
    db.execute(text("UPDATE task SET form_key = 'dispatch' WHERE id = :t"), {"t": task_id})
    db.execute(text("UPDATE household SET care_group = 'elderly_alone'"))
    upgrade(engine)
    assert db.execute(text("SELECT version_num FROM alembic_version")).scalar() == _head()


def test_upgrade_to_0011_keeps_good_data_and_then_checks_it(app, db, login):
    """A database holding only codes upgrades unchanged, its cases go on, and other values are refused after."""
    from tests.conftest import dispatch, intake, latest_case, open_task
    login("member_a").submit("/cases/new", intake(db, channel="hotline_12345", urgency="urgent"))
    case = latest_case(db)
    assert dispatch(login("leader_a"), db, case.id).status_code == 302
    _add_household(db, "")
    _add_household(db, "migrant")
    engine = app.extensions["gridloop.db"]
    downgrade(engine, "0010")
    before = {table: _rows(db, table) for table in ("case", "task", "household", "membership", "audit_event")}
    upgrade(engine)
    # Later revisions add columns (0015: the numbers' facts); the columns there before keep their values.
    after = {table: [{k: row[k] for k in (before[table][0] if before[table] else row)} for row in _rows(db, table)]
             for table in before}
    assert after == before
    handled = login("member_a").submit(f"/tasks/{open_task(db, case.id).id}", {"handle_action": "done", "text": "修好了"})
    assert handled.status_code == 302 and open_task(db, case.id).form_key == "callback"
    with pytest.raises(IntegrityError):
        db.execute(text('UPDATE "case" SET urgency = \'URGENT\' WHERE id = :i'), {"i": case.id})
    with pytest.raises(IntegrityError):
        db.execute(text("UPDATE household SET care_group = 'elderly'"))
