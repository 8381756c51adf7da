"""Service functions: the only code that changes cases. They flush, never commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from workflows import Definition, Engine

from ..workdays import WorkCalendar


@dataclass(frozen=True)
class Services:
    """What every service function needs, passed explicitly."""

    session: Session
    engine: Engine
    config: Mapping[str, Mapping[str, Any]]
    # Newest loaded version per process id.
    definitions: Mapping[str, Definition]
    calendar: WorkCalendar


def for_app(app: Flask, session: Session) -> Services:
    """Return the services of ``app`` working in ``session`` (requests, the scheduler, the CLI)."""
    return Services(session, app.extensions["gridloop.engine"], app.config["GRIDLOOP"],
                    app.extensions["gridloop.definitions"], app.extensions["gridloop.calendar"])
