"""The real-HTTP client and gunicorn runner now live in ``bench.webclient`` (bench imports nothing from tests)."""

from bench.webclient import ROOT, Gunicorn, Reply, WebUser, form_fields, free_port

__all__ = ["ROOT", "Gunicorn", "Reply", "WebUser", "form_fields", "free_port"]
