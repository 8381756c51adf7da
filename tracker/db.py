"""Own the database engine and the per-request session; register init-db."""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TypeVar

import click
from flask import Flask, current_app, g, request
from flask.cli import with_appcontext
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, instance_path: str) -> Engine:
    """Create the SQLAlchemy engine; SQLite gets WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_absolute():
            Path(instance_path).mkdir(parents=True, exist_ok=True)
            parsed = parsed.set(database=str(Path(instance_path) / database))
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Turn on WAL and foreign keys, and let SQLAlchemy control transactions."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


#: Whether the current unit of work may write. Web reads (GET) set it False; everything else writes.
write_intent: ContextVar[bool] = ContextVar("gridloop_write_intent", default=True)


def _sqlite_begin_immediate(connection) -> None:
    """Begin a SQLite transaction: writers take the lock up front, readers read a WAL snapshot.

    A writer that began deferred would fail mid-transaction if another wrote first; taking the
    lock at BEGIN makes writers queue (busy_timeout) instead. Readers must not take it, or every
    page view would wait behind every other request.
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write_intent.get() else "BEGIN")


def init_app(app: Flask) -> None:
    """Attach the engine and session factory to the app and register commands."""
    engine = make_engine(app.config["DATABASE_URL"], app.instance_path)
    app.extensions["gridloop.db"] = engine
    app.extensions["gridloop.sessionmaker"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)
    app.before_request(_declare_intent)
    app.teardown_request(_reset_intent)
    app.cli.add_command(init_db_command)
    app.cli.add_command(migrate_command)


def get_session() -> Session:
    """Return this request's (or job's) session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["gridloop.sessionmaker"]()
    return g.db_session


T = TypeVar("T")


def read_while_streaming(chunks: Iterator[T]) -> Iterator[T]:
    """Produce a streamed response body as a reader.

    The request's teardown runs before a streamed body is produced: it closes the request's
    session and resets the intent to writing. The body must therefore call ``get_session()``
    itself (a fresh session, closed by the stream's own teardown) and read without SQLite's
    write lock, or one long download would block every writer.
    """
    write_intent.set(False)
    yield from chunks


def _declare_intent() -> None:
    """Mark safe-method requests as read-only for the SQLite transaction mode."""
    write_intent.set(request.method not in ("GET", "HEAD", "OPTIONS"))


def _reset_intent(_exc: BaseException | None = None) -> None:
    """Code outside requests (commands, jobs) writes by default."""
    write_intent.set(True)


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and close the session."""
    session = g.pop("db_session", None)
    if session is not None:
        try:
            session.rollback()
        finally:
            session.close()


def init_db() -> None:
    """Bring the schema to the newest migration (creating it on an empty database)."""
    from .migrate import upgrade
    upgrade(current_app.extensions["gridloop.db"])


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the database tables (Alembic upgrade to head)."""
    init_db()
    click.echo("Initialized the database.")


@click.command("migrate")
@click.argument("revision", default="head")
@with_appcontext
def migrate_command(revision: str) -> None:
    """Upgrade the database schema to REVISION (default: head)."""
    from .migrate import upgrade
    upgrade(current_app.extensions["gridloop.db"], revision)
    click.echo(f"Database at {revision}.")
