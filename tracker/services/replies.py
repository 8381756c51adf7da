"""Reply templates (常用语): a grid's leaders keep them; one click puts one into a reply, result or callback note.

A template's text may hold ``{name}`` (the resident's name) and ``{number}`` (the case number); they are
filled in when the template is inserted (``fill``). Any other text in braces stays as written.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..errors import N_, InvalidInput, NotFound
from ..models import Grid, ReplyTemplate, User, utcnow
from ..permissions import Permission, require
from . import Services
from .commands import SaveReplyTemplate

#: The placeholders a template's text may hold, and what fills each.
PLACEHOLDERS = ("{name}", "{number}")


def fill(text: str, name: str = "", number: str = "") -> str:
    """Return a template's text with the resident's name and the case number put in (plain replacement)."""
    return text.replace("{name}", name).replace("{number}", number)


def _grid(session: Session, actor: User, grid_id: int) -> Grid:
    """Return a grid the actor leads, or refuse."""
    grid = session.get(Grid, grid_id)
    if grid is None:
        raise InvalidInput(N_("Choose the grid the template is for."), field="grid_id")
    require(actor, Permission.GRID_MANAGE, grid)
    return grid


def _check_category(svc: Services, category: str) -> None:
    """Refuse a category that is not configured (empty: every category)."""
    if category and category not in svc.config["categories"]:
        raise InvalidInput(N_("Unknown category %(code)s; choose one from the list."), field="category",
                           code=category)


def create_template(svc: Services, actor: User, command: SaveReplyTemplate) -> ReplyTemplate:
    """Add a reply template to a grid the actor leads."""
    _grid(svc.session, actor, command.grid_id)
    _check_category(svc, command.category)
    template = ReplyTemplate(grid_id=command.grid_id, category=command.category, use=command.use,
                             title=command.title, text=command.text, created_by_id=actor.id, updated_at=utcnow())
    svc.session.add(template)
    svc.session.flush()
    return template


def get_template(svc: Services, actor: User, template_id: int) -> ReplyTemplate:
    """Load a template of a grid the actor leads (NotFound, PermissionDenied)."""
    template = svc.session.get(ReplyTemplate, template_id)
    if template is None:
        raise NotFound(N_("No such reply template."))
    _grid(svc.session, actor, template.grid_id)
    return template


def update_template(svc: Services, actor: User, template_id: int, command: SaveReplyTemplate) -> ReplyTemplate:
    """Change a template; moving it to another grid needs leading both."""
    template = get_template(svc, actor, template_id)
    _grid(svc.session, actor, command.grid_id)
    _check_category(svc, command.category)
    template.grid_id, template.category, template.use = command.grid_id, command.category, command.use
    template.title, template.text, template.updated_at = command.title, command.text, utcnow()
    svc.session.flush()
    return template


def delete_template(svc: Services, actor: User, template_id: int) -> None:
    """Delete a template of a grid the actor leads."""
    svc.session.delete(get_template(svc, actor, template_id))
    svc.session.flush()


__all__ = ["PLACEHOLDERS", "create_template", "delete_template", "fill", "get_template", "update_template"]
