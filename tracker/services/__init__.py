"""Service functions: the only code that changes cases. They flush, never commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from workflows import Definition, Engine


@dataclass(frozen=True)
class Services:
    """What every service function needs, passed explicitly."""

    session: Session
    engine: Engine
    config: Mapping[str, Mapping[str, Any]]
    # Newest loaded version per process id.
    definitions: Mapping[str, Definition]
