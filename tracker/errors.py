"""Domain errors raised by services and turned into messages by views."""


class DomainError(Exception):
    """A request that cannot be carried out; the message tells the user why and what to do."""


class NotFound(DomainError):
    """The object does not exist."""


class ConflictError(DomainError):
    """Someone else changed the case since the form was loaded."""


class InvalidInput(DomainError):
    """Input passed form validation but breaks a domain rule (e.g. handler not in the grid)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field
