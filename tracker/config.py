"""Read config.toml once, apply environment overrides, and check it."""

from __future__ import annotations

import copy
import datetime as dt
import os
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "GRIDLOOP_"

#: Known keys per section with their type; sections marked free take any key.
SCHEMA: dict[str, dict[str, type] | None] = {
    "app": {"secret_key": str, "database_url": str, "bpmn_dir": str, "default_locale": str,
            "page_size": int, "case_process": str, "timezone": str, "trusted_proxies": int,
            "public_base_url": str, "session_cookie_secure": bool, "session_lifetime_hours": float,
            "session_max_days": float,
            "hsts_seconds": int},
    "lanes": None,
    "loop": {"max_callback_attempts": int, "callback_by_other_member": bool},
    "dispatch": {"deadline_classes": dict, "departments": dict},
    "deadlines": {"emergency_hours": float, "utilities_hours": float, "general_days": int,
                  "complex_days": int, "sign_for_days": int, "green_channel_factor": float,
                  "reminder_at": float, "escalate_after_days": int, "due_soon_hours": float},
    "calendar": {"extra_holidays": list, "extra_workdays": list},
    "scheduler": {"in_web": bool, "interval_seconds": float, "batch_size": int, "visit_hour": int},
    "demo": {"clock_hook": bool},
    "duplicates": {"window_days": int, "similarity": float, "max_shown": int, "intake_key_days": int},
    "api": {"rate_limit": str, "login_rate_limit": str, "login_address_rate_limit": str, "ratelimit_storage": str,
            "heavy_rate_limit": str, "search_rate_limit": str,
            "ratelimit_enabled": bool,
            "open311_jurisdiction": str},
    "categories": None,
    "stats": {"extensions": str, "resolved_outcomes": list, "satisfied_weight": float, "basic_weight": float,
              "dissatisfied_weight": float, "office_hours": list, "trend_weeks": int},
    "hotspots": {"enabled": bool, "requests": int, "days": int},
    "reports": {"enabled": bool, "hour": int},
    "media": {"store": str, "max_file_mb": float, "max_files": int, "max_request_mb": float, "max_pixels": int,
              "display_px": int, "thumb_px": int},
    "delivery": {"smtp_host": str, "smtp_port": int, "smtp_from": str, "smtp_starttls": bool, "smtp_username": str,
                 "smtp_password": str, "webhook_url": str, "webhook_secret": str, "timeout_seconds": float,
                 "max_attempts": int, "retry_seconds": float, "lease_seconds": float, "batch_size": int},
    "public": {"recorder": str, "rate_limit": str, "status_rate_limit": str, "challenge_minutes": int,
               "locate_metres": float},
}
# (app.secret_key is checked when the app is created: see check_secret_key.)
REQUIRED = [("app", "database_url"), ("app", "case_process")]


class ConfigError(Exception):
    """The configuration is missing a key or holds a bad value."""


#: The example key config.toml ships with: published, so it signs nothing.
SHIPPED_SECRET_KEYS = frozenset({"dev-only-change-me"})
#: Shortest secret key accepted (a 32-byte random key written as hex is 64 characters).
MIN_SECRET_KEY_LENGTH = 32


def check_secret_key(config: Mapping[str, Any]) -> None:
    """Refuse a secret key anyone could know or guess: whoever holds it can sign a session as any user."""
    key = (config["app"].get("secret_key") or "").strip()
    if any(shipped in key for shipped in SHIPPED_SECRET_KEYS):
        problem = "is the example key shipped in config.toml, which anyone can read"
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        problem = f"is {'empty' if not key else f'only {len(key)} characters long'}"
    elif len(set(key)) < 12:
        problem = "is not random: it repeats a few characters"
    else:
        return
    raise ConfigError(
        f"app.secret_key {problem}: with it anyone can sign a session cookie and log in as any user. "
        f"Set GRIDLOOP_APP_SECRET_KEY to a random value of at least {MIN_SECRET_KEY_LENGTH} characters, "
        "the same on every machine that serves GridLoop, e.g. "
        "GRIDLOOP_APP_SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))'). "
        "(`make run` makes one for the demo in instance/secret_key.)")


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Load the TOML file, apply environment variables and overrides, and validate."""
    path = Path(path or os.environ.get("GRIDLOOP_CONFIG", ROOT / "config.toml"))
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found (set GRIDLOOP_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    _apply_environment(config, os.environ if environ is None else environ)
    for section, values in (overrides or {}).items():
        config.setdefault(section, {}).update(copy.deepcopy(values))
    _validate(config)
    return config


def _apply_environment(config: dict, environ: Mapping[str, str]) -> None:
    """Override known keys from GRIDLOOP_<SECTION>_<KEY> variables."""
    for section, keys in SCHEMA.items():
        for key, kind in (keys or {}).items():
            value = environ.get(f"{ENV_PREFIX}{section}_{key}".upper())
            if value is not None:
                config.setdefault(section, {})[key] = _coerce(f"{section}.{key}", value, kind)


def _coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a value to the key's type or fail naming the key."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, str):
            return int(value)
        if kind is bool and isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
        if kind is list and isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
    except ValueError:
        pass
    raise ConfigError(f"{name} must be {kind.__name__}, got {value!r}")


def _validate(config: dict) -> None:
    """Warn about unknown keys, fail on missing required keys and bad types."""
    for section, values in config.items():
        if section not in SCHEMA:
            warnings.warn(f"config: unknown section [{section}] ignored", stacklevel=3)
            continue
        keys = SCHEMA[section]
        for key in list(values):
            if keys is None:
                continue
            if key not in keys:
                warnings.warn(f"config: unknown key {section}.{key} ignored", stacklevel=3)
                continue
            values[key] = _coerce(f"{section}.{key}", values[key], keys[key])
    for section, key in REQUIRED:
        if not config.get(section, {}).get(key):
            raise ConfigError(f"missing required setting {section}.{key} in config.toml")
    if not config.get("lanes"):
        raise ConfigError("[lanes] must map at least one BPMN lane name to a role")
    for code, label in config.get("categories", {}).items():
        if not (isinstance(label, list) and len(label) == 2 and all(isinstance(x, str) for x in label)):
            raise ConfigError(f"categories.{code} must be [\"中文\", \"English\"], got {label!r}")
    if config.get("loop", {}).get("max_callback_attempts", 1) < 1:
        raise ConfigError("loop.max_callback_attempts must be at least 1")
    _validate_dispatch(config.get("dispatch", {}))
    _validate_duplicates(config.get("duplicates", {}))
    _validate_time(config)
    _validate_numbers(config)
    delivery = config.get("delivery", {})
    if delivery.get("webhook_url") and not delivery.get("webhook_secret"):
        raise ConfigError("delivery.webhook_secret must be set when delivery.webhook_url is: the receiver checks "
                          "each message's HMAC signature with it (set GRIDLOOP_DELIVERY_WEBHOOK_SECRET)")
    if delivery.get("webhook_url") and not delivery["webhook_url"].startswith(("http://", "https://")):
        raise ConfigError("delivery.webhook_url must start with http:// or https://")
    if delivery.get("max_attempts", 1) < 1:
        raise ConfigError("delivery.max_attempts must be at least 1")


def _validate_duplicates(section: Mapping[str, Any]) -> None:
    """Check the duplicate warning's settings; bad values fail at start, naming the key."""
    if section.get("window_days", 30) < 1:
        raise ConfigError("duplicates.window_days must be at least 1")
    if not 0 < section.get("similarity", 0.5) <= 1:
        raise ConfigError("duplicates.similarity must be more than 0 and at most 1")
    if section.get("max_shown", 5) < 1:
        raise ConfigError("duplicates.max_shown must be at least 1")
    if section.get("intake_key_days", 30) < 1:
        raise ConfigError("duplicates.intake_key_days must be at least 1 (a key must outlive the retries it guards)")


def _validate_dispatch(dispatch: dict) -> None:
    """Check the dispatch proposals: category codes mapped to a deadline class or a department code."""
    from .codes import DeadlineClass

    for code, value in dispatch.get("deadline_classes", {}).items():
        if value not in set(DeadlineClass):
            raise ConfigError(f"dispatch.deadline_classes.{code} must be one of {', '.join(DeadlineClass)}, "
                              f"got {value!r}")
    for code, value in dispatch.get("departments", {}).items():
        if not isinstance(value, str):
            raise ConfigError(f"dispatch.departments.{code} must be a department code (text), got {value!r}")


def _validate_time(config: dict) -> None:
    """Check deadlines, calendar and scheduler settings; bad values fail at start, naming the key."""
    from . import deadlines, workdays

    missing = [k for k in SCHEMA["deadlines"] if k not in config.get("deadlines", {})]
    if missing:
        raise ConfigError(f"missing setting deadlines.{missing[0]} in config.toml")
    try:
        deadlines.check(config["deadlines"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    calendar = config.setdefault("calendar", {})
    try:
        for key in ("extra_holidays", "extra_workdays"):
            calendar[key] = workdays.parse_days(f"calendar.{key}", calendar.get(key, []))
        workdays.WorkCalendar(config["app"].get("timezone", "Asia/Shanghai"),
                              calendar["extra_holidays"], calendar["extra_workdays"])
    except ValueError as exc:
        raise ConfigError(f"calendar: {exc}") from None
    except Exception as exc:  # an unknown time zone name
        raise ConfigError(f"app.timezone: {exc}") from None
    scheduler = config.setdefault("scheduler", {})
    if scheduler.get("interval_seconds", 30) <= 0:
        raise ConfigError("scheduler.interval_seconds must be more than 0")
    if scheduler.get("batch_size", 100) < 1:
        raise ConfigError("scheduler.batch_size must be at least 1")
    if not 0 <= scheduler.get("visit_hour", 6) <= 23:
        raise ConfigError("scheduler.visit_hour must be an hour of the day, 0 to 23")


def _validate_numbers(config: dict) -> None:
    """Check [stats], [hotspots] and [reports] (README "The numbers"); bad values fail at start, naming the key."""
    stats = config.setdefault("stats", {})
    if stats.get("extensions", "extended") not in ("extended", "original"):
        raise ConfigError(f"stats.extensions must be \"extended\" or \"original\", got {stats['extensions']!r}")
    outcomes = stats.get("resolved_outcomes", ["satisfied", "basic"])
    if not outcomes or any(o not in ("satisfied", "basic", "dissatisfied") for o in outcomes):
        raise ConfigError(f"stats.resolved_outcomes must list some of satisfied, basic, dissatisfied, got {outcomes!r}")
    for key in ("satisfied_weight", "basic_weight", "dissatisfied_weight"):
        if not 0 <= stats.get(key, 0) <= 1:
            raise ConfigError(f"stats.{key} must be from 0 to 1, got {stats[key]!r}")
    hours = stats.get("office_hours", ["09:00", "17:00"])
    try:
        opens, closes = (dt.time.fromisoformat(h) for h in hours)
    except (TypeError, ValueError):
        raise ConfigError(f"stats.office_hours must be two times like [\"09:00\", \"17:00\"], got {hours!r}") from None
    if opens >= closes:
        raise ConfigError(f"stats.office_hours must open before it closes, got {hours!r}")
    if not 1 <= stats.get("trend_weeks", 8) <= 53:
        raise ConfigError("stats.trend_weeks must be from 1 to 53")
    hotspots = config.setdefault("hotspots", {})
    if hotspots.get("requests", 3) < 2:
        raise ConfigError("hotspots.requests must be at least 2 (one request is no hotspot)")
    if hotspots.get("days", 7) < 1:
        raise ConfigError("hotspots.days must be at least 1")
    if not 0 <= config.setdefault("reports", {}).get("hour", 7) <= 23:
        raise ConfigError("reports.hour must be an hour of the day, 0 to 23")
