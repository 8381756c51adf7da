"""Domain errors raised by services and turned into messages by views.

Messages are English templates marked with ``N_`` for extraction; views translate them with
``localized()`` so services stay free of Flask.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a message for translation without translating it here."""
    return message


class DomainError(Exception):
    """A request that cannot be carried out; the message tells the user why and what to do."""

    def __init__(self, template: str, *, field: str | None = None, **params: Any):
        self.template = template
        self.params = params
        self.field = field
        super().__init__(template % params if params else template)

    def localized(self) -> str:
        """Return the message in the current UI language."""
        from flask_babel import gettext
        return gettext(self.template, **self.params)


class NotFound(DomainError):
    """The object does not exist."""


class ConflictError(DomainError):
    """Someone else changed the case since the form was loaded."""


class InvalidInput(DomainError):
    """Input passed form validation but breaks a domain rule (e.g. handler not in the grid)."""
