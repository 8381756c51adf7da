"""Flask commands: deploy definitions, load the demo, create users, verify audit chains, export case bundles."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from . import chain
from .bundle import build_bundle, file_name, verifier_sha256
from .db import get_session, init_db
from .models import Case, Department, Grid, Membership, Role, TokenScope, User
from .services.audit import VERIFY_BATCH, verify_chains
from .services.definitions import deploy_definition


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (deploy_command, demo_command, create_user_command, verify_audit_command, export_case_command,
                    create_program_account_command,
                    scheduler_command, create_token_command, revoke_token_command, set_password_command,
                    disable_user_command, enable_user_command, publish_open311_command,
                    import_sheet_command, verify_admin_trail_command, count_day_totals_command):
        app.cli.add_command(command)


@click.command("deploy")
@with_appcontext
def deploy_command() -> None:
    """Store every loaded BPMN definition version; report rejected files."""
    db = get_session()
    for definition in current_app.extensions["gridloop.definitions"].values():
        row = deploy_definition(db, definition)
        click.echo(f"{definition.process_id}: version {row.content_hash[:12]} (id {row.id})")
    db.commit()
    errors = current_app.extensions["gridloop.bpmn_errors"]
    for error in errors:
        click.echo(f"rejected: {error}", err=True)
    if errors:
        raise SystemExit(1)


@click.command("demo")
@with_appcontext
@click.option("--reset", is_flag=True, help="Drop and recreate every table first.")
def demo_command(reset: bool) -> None:
    """Load the demo community, people and about 50 cases at every stage of the loop."""
    from . import demo
    if reset:
        from .models import Base
        engine = current_app.extensions["gridloop.db"]
        Base.metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    init_db()
    db = get_session()
    from .services import tokens
    from .views.demo import reset as reset_clock
    if (was := reset_clock(db)):  # a fresh start of the demo is on the real time
        click.echo(f"Demo clock reset to the real time (it was {was} ahead).")
    if db.scalar(select(Case.id).limit(1)) is not None:
        db.commit()
        click.echo("Demo data already present (use --reset to start over). Logins (username / password):")
        logins = demo.present_logins(db)
    else:
        logins = demo.load(db)
        db.commit()
        fired = demo.catch_up(current_app._get_current_object())  # type: ignore[attr-defined]
        click.echo(f"Scheduler caught up: {fired} timers fired (reminders, supervision, escalation, missed visits).")
        click.echo("Demo data loaded. Logins (username / password):")
    for username, password, what in logins:
        click.echo(f"  {username:<12} {password:<14} {what}")
    hotline = db.scalar(select(User).where(User.username == "hotline"))
    if hotline is not None:
        # Residents' apps file through Open311 with it; it reads nothing on /api/v1 (see README, Filing). Only a
        # token's hash is stored, so each run issues one more (revoke old ones on hotline's profile or the CLI).
        _token, secret = tokens.create(db, hotline, "demo: Open311 apps", TokenScope.OPEN311)
        db.commit()
        click.echo(f"Open311 token of `hotline` (scope open311, shown once): {secret}")


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Display name, e.g. 王芳.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), help="Role to grant.")
@click.option("--grid", "grid_code", help="Grid code for member/leader roles.")
@click.option("--department", "department_code", help="Department code for department handlers.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--district", is_flag=True, help="With --role auditor: audit every community (the district).")
def create_user_command(username, display_name, password, role, grid_code, department_code, admin,
                        district) -> None:
    """Create a user, optionally with one role membership."""
    db = get_session()
    if db.scalar(select(User).where(User.username == username)):
        raise click.UsageError(f"user {username!r} already exists")
    from .errors import DomainError
    from .services import accounts
    user = User(username=username, display_name=display_name, is_admin=admin, password_hash="")
    try:
        accounts.set_password(db, user, password)  # the one password rule, as set-password applies it
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    if role:
        user.memberships.append(_membership(db, Role(role), grid_code, department_code, district))
    db.add(user)
    db.flush()
    _on_trail(db, "user.saved", user, {"username": (None, username), "display_name": (None, display_name),
                                       "is_admin": (None, admin), "role": (None, role)})
    db.commit()
    click.echo(f"Created user {username}.")


def _on_trail(db, action: str, user: User, changes: dict) -> None:
    """Put an account change made from the shell on the admin trail (by "system")."""
    from .services.admin import record
    record(db, None, action, f"user:{user.id}", changes)


@click.command("create-program-account")
@with_appcontext
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Display name, e.g. 12345 热线对接.")
@click.option("--grid", "grid_codes", multiple=True, help="Grid code it files cases in (repeat); default: every grid.")
@click.option("--scope", type=click.Choice([s.value for s in TokenScope]), default=TokenScope.OPEN311.value,
              show_default=True, help="Scope of the token issued with it.")
def create_program_account_command(username, display_name, grid_codes, scope) -> None:
    """Create a program's account (12345 hotline bridge, Open311 app): token only, never offered as a person."""
    from .services import tokens
    db = get_session()
    if db.scalar(select(User).where(User.username == username)):
        raise click.UsageError(f"user {username!r} already exists")
    grids = (db.scalars(select(Grid).where(Grid.code.in_(grid_codes))).all() if grid_codes
             else db.scalars(select(Grid).order_by(Grid.code)).all())
    if unknown := set(grid_codes) - {g.code for g in grids}:
        raise click.UsageError(f"--grid: no grid with code {', '.join(sorted(unknown))}")
    # No password logs it in: the hash is of a random secret nobody is told.
    user = User(username=username, display_name=display_name, is_program=True,
                password_hash=generate_password_hash(secrets.token_urlsafe(32)),
                memberships=[Membership(role=Role.GRID_MEMBER, grid_id=g.id) for g in grids])
    db.add(user)
    db.flush()
    _token, secret = tokens.create(db, user, f"{username}: program", TokenScope(scope))
    db.commit()
    click.echo(f"Created program account {username} (files cases in {len(grids)} grids; no password login).")
    click.echo(f"Its token (scope {scope}, shown once): {secret}")


def _membership(db, role: Role, grid_code: str | None, department_code: str | None,
                district: bool = False) -> Membership:
    """Build a membership, checking that its scope exists."""
    if role in (Role.GRID_MEMBER, Role.GRID_LEADER):
        grid = db.scalar(select(Grid).where(Grid.code == (grid_code or "")))
        if grid is None:
            raise click.UsageError(f"--grid: no grid with code {grid_code!r}")
        return Membership(role=role, grid_id=grid.id)
    if role == Role.DEPARTMENT_HANDLER:
        department = db.scalar(select(Department).where(Department.code == (department_code or "")))
        if department is None:
            raise click.UsageError(f"--department: no department with code {department_code!r}")
        return Membership(role=role, department_id=department.id)
    if role == Role.AUDITOR and district:
        return Membership(role=role)  # a district auditor: every community
    grid = db.scalar(select(Grid).where(Grid.code == (grid_code or ""))) if grid_code else None
    if grid is None:
        raise click.UsageError(f"--grid: no grid with code {grid_code!r}; {role.value} is scoped to the community "
                               f"of a grid (or, for an auditor, --district: every community)")
    return Membership(role=role, community_id=grid.community_id)


@click.command("verify-audit")
@with_appcontext
@click.argument("case_number", required=False)
def verify_audit_command(case_number: str | None) -> None:
    """Verify the audit hash chain of one case, or of all cases."""
    db = get_session()
    query = select(Case.id, Case.number)
    if case_number:
        query = query.where(Case.number == case_number)
    broken, last = 0, 0
    while batch := db.execute(query.where(Case.id > last).order_by(Case.id).limit(VERIFY_BATCH)).all():
        reports = verify_chains(db, [case_id for case_id, _number in batch])
        for case_id, number in batch:
            report = reports[case_id]
            if not report.ok:
                broken += 1
                click.echo(f"{number}: BROKEN at event {report.broken_seq}: {report.problem}")
            elif case_number:
                click.echo(f"{number}: intact, {report.events} events, chain head {report.head}")
        last = batch[-1][0]
    click.echo("all chains intact" if not broken else f"{broken} broken chain(s)")
    if broken:
        raise SystemExit(1)


@click.command("export-case")
@with_appcontext
@click.argument("case_number")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="File to write (default: case-NUMBER-bundle.zip in the current directory).")
def export_case_command(case_number: str, output: str | None) -> None:
    """Write a case's bundle (events, fields, BPMN, stdlib verifier); print its path, chain head and verifier hash.

    The bundle is written even when the chain does not verify (it is the evidence), but then the
    problem is printed and the exit status is 1.
    """
    db = get_session()
    case = db.scalar(select(Case).where(Case.number == case_number))
    if case is None:
        raise click.UsageError(f"no case numbered {case_number!r}")
    path = Path(output or file_name(case))
    path.write_bytes(build_bundle(db, case, exported_by="flask export-case"))
    report = chain.verify_bundle(str(path))
    click.echo(f"wrote {path}")
    click.echo(f"chain head {report.head}")
    click.echo(f"verifier sha256 {verifier_sha256()}")
    if not report.ok:
        where = f"event {report.broken_seq}: " if report.broken_seq else ""
        click.echo(f"BROKEN: {where}{report.problem}", err=True)
        raise SystemExit(1)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Fire what is due now, start today's visits, and exit.")
@with_appcontext
def scheduler_command(once: bool) -> None:
    """Run the scheduler (due timers, daily routine visits) as its own process.

    Use it when the web app runs as several workers (set GRIDLOOP_SCHEDULER_IN_WEB=false there).
    Several scheduler processes may run at once: every timer still fires exactly once.
    """
    import logging

    from . import jobs
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tracker").setLevel(logging.INFO)  # not SpiffWorkflow's per-task chatter
    _follow_reference_data(app, keep=not once)
    if once:
        from sqlalchemy.exc import OperationalError
        try:
            visits = jobs.start_visits(app)
            totals = jobs.tick(app)
            sent = jobs.deliver(app)
        except OperationalError as exc:
            click.echo(f"database busy or unavailable, nothing lost (the open batch rolled back); run again: "
                       f"{str(exc).splitlines()[0]}", err=True)
            raise SystemExit(1) from None
        click.echo(f"{visits} visits started; {totals.taken} timers due, {totals.fired} fired, "
                   f"{len(totals.failed)} failed, {totals.seconds:.3f} s")
        if sent.claimed:
            click.echo(f"{sent.claimed} messages taken, {sent.sent} sent, {sent.failed} failed")
        for failure in totals.failed:
            click.echo(f"failed: {failure}", err=True)
        return
    click.echo("Scheduler running (Ctrl-C to stop).")
    jobs.run_blocking(app)


def _follow_reference_data(app: Flask, keep: bool) -> None:
    """Read the categories and calendar days administrators keep in the database now, and (``keep``) every
    few seconds in a background thread: this process serves no requests, which would refresh them."""
    import threading
    import time

    from .services import admin

    def refresh() -> None:
        with app.app_context():
            admin.refresh(app, get_session(), force=True)

    def loop() -> None:
        while True:
            time.sleep(admin.REFRESH_SECONDS)
            try:
                refresh()
            except Exception:  # the database away for a moment: the next round tries again
                app.logger.warning("could not read categories and calendar days", exc_info=True)

    refresh()
    if keep:
        threading.Thread(target=loop, name="gridloop-reference", daemon=True).start()


@click.command("create-token")
@with_appcontext
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. the program using it.")
@click.option("--scope", required=True, type=click.Choice([s.value for s in TokenScope]),
              help="open311: file and follow Open311 requests only; read: GET only; full: all the user may do.")
@click.option("--expires-days", type=int, default=None,
              help="Refuse the token this many days from now (default: it lasts until revoked).")
def create_token_command(username: str, name: str, scope: str, expires_days: int | None) -> None:
    """Create an API token acting as USERNAME within SCOPE; print the secret once (it is stored hashed)."""
    from .errors import DomainError
    from .services import tokens
    db = get_session()
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.UsageError(f"no user {username!r}")
    try:
        token, secret = tokens.create(db, user, name, TokenScope(scope), expires_days)
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    db.commit()
    until = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
    click.echo(f"token {token.id} for {username} ({name}), scope {scope}{until}; copy it now, it is not shown again:")
    click.echo(secret)


@click.command("revoke-token")
@with_appcontext
@click.argument("token_id", type=int)
def revoke_token_command(token_id: int) -> None:
    """Revoke an API token by its id; programs using it get 401 from now on."""
    from .models import ApiToken
    db = get_session()
    token = db.get(ApiToken, token_id)
    if token is None:
        raise click.UsageError(f"no token {token_id}")
    if token.revoked_at is None:
        from .models import utcnow
        token.revoked_at = utcnow()
    db.commit()
    click.echo(f"token {token_id} ({token.name}) revoked")


def _user_named(db, username: str) -> User:
    """Return the user with this name or stop, naming it."""
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.UsageError(f"no user {username!r}")
    return user


@click.command("set-password")
@with_appcontext
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def set_password_command(username: str, password: str) -> None:
    """Give a user a new password; every session of theirs ends."""
    from .errors import DomainError
    from .services import accounts
    db = get_session()
    user = _user_named(db, username)
    try:
        revoked = accounts.set_password(db, user, password)
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    _on_trail(db, "user.password_set", user, {"api_tokens_revoked": (None, revoked)})
    db.commit()
    click.echo(f"Password of {username} changed; their sessions have ended and {revoked} API token(s) were revoked.")


@click.command("disable-user")
@with_appcontext
@click.argument("username")
def disable_user_command(username: str) -> None:
    """Disable a user: they cannot log in, their sessions end and their API tokens stop working."""
    _set_active(username, False)
    click.echo(f"{username} disabled; their sessions have ended.")


@click.command("enable-user")
@with_appcontext
@click.argument("username")
def enable_user_command(username: str) -> None:
    """Enable a disabled user again (they log in anew)."""
    _set_active(username, True)
    click.echo(f"{username} enabled.")


def _set_active(username: str, active: bool) -> None:
    """Enable or disable a user and commit."""
    from .services import accounts
    db = get_session()
    user = _user_named(db, username)
    if user.active != active:
        _on_trail(db, "user.enabled" if active else "user.disabled", user, {"active": (user.active, active)})
    accounts.set_active(user, active)
    db.commit()


@click.command("publish-open311")
@with_appcontext
@click.argument("username")
@click.option("--yes", is_flag=True, help="Publish them; without it, only list them.")
def publish_open311_command(username: str, yes: bool) -> None:
    """Publish through Open311 the older cases USERNAME (a program account) filed there.

    Before doors were recorded, anyone could pick the channel "Open311 app"; the upgrade made every
    older case private. Run this for the accounts Open311 apps used, never for staff.
    """
    from .errors import DomainError
    from .services.cases import publish_open311_cases
    db = get_session()
    try:
        cases = publish_open311_cases(db, _user_named(db, username))
    except DomainError as exc:
        raise click.UsageError(str(exc)) from None
    for case in cases:
        click.echo(f"{case.number}  {case.description[:40]}")
    if not yes:
        db.rollback()
        click.echo(f"{len(cases)} case(s) would be published; run again with --yes to publish them.")
        return
    db.commit()
    click.echo(f"{len(cases)} case(s) published through Open311; each change is on the case's audit chain.")


@click.command("import-sheet")
@with_appcontext
@click.argument("kind", type=click.Choice(["people", "buildings", "households"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Import it; without it, only check it and say what it would do.")
def import_sheet_command(kind: str, file: str, yes: bool) -> None:
    """Check a sheet (XLSX or CSV, the admin page's template) of people, buildings or households; with --yes
    import it, all or nothing. Every bad row and cell is named first; importing it again changes nothing."""
    import time

    from flask_babel import force_locale

    from .services import onboarding
    db = get_session()
    started = time.perf_counter()
    with force_locale("zh_CN"):
        try:
            sheet = onboarding.plan(db, kind, Path(file).read_bytes())
        except onboarding.SheetRefused as exc:
            raise click.UsageError(exc.localized()) from None
        for problem in sheet.problems:
            click.echo(f"第 {problem.row} 行 {problem.column}: {problem.localized()}", err=True)
    click.echo(f"{sheet.rows} rows: {len(sheet.inserts)} new, {len(sheet.updates)} changed, "
               f"{sheet.unchanged} unchanged, {len(sheet.grants)} roles to give; {len(sheet.problems)} problems")
    if sheet.problems:
        raise SystemExit(1)
    if not yes:
        click.echo("nothing written; run again with --yes to import")
        return
    result = onboarding.apply(db, None, sheet)
    db.commit()
    click.echo(f"imported in {time.perf_counter() - started:.2f} s: {result.created} new, {result.changed} changed, "
               f"{result.roles} roles given")
    for username, password in result.passwords:
        click.echo(f"temporary password of {username} (changed at the first login): {password}")


@click.command("verify-admin-trail")
@with_appcontext
def verify_admin_trail_command() -> None:
    """Verify the admin trail's hash chain; name the first broken event."""
    from .services.admin import verify_trail
    report = verify_trail(get_session())
    if not report.ok:
        click.echo(f"admin trail BROKEN at event {report.broken_seq}: {report.problem}")
        raise SystemExit(1)
    click.echo(f"admin trail intact, {report.events} events, head {report.head}")


@click.command("count-day-totals")
@with_appcontext
def count_day_totals_command() -> None:
    """Give every case its local day and count the numbers' day totals of every grid again from the cases
    (after changing [app] timezone, or loading cases around the app); (re)install their triggers."""
    from .services.facts import count_all_days, install_day_totals
    db = get_session()
    install_day_totals(db.connection())  # this release's definitions of the figures
    rows = count_all_days(db.connection(), current_app.extensions["gridloop.calendar"].zone)
    db.commit()
    click.echo(f"day totals counted: {rows} days of grids")
