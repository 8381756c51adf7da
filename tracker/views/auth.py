"""Log in and out, and switch the UI language."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField

from ..db import get_session
from ..errors import N_, DomainError
from ..forms import TOKEN_SCOPE_NAMES, LoginForm, TokenForm, add_service_error, build_command
from ..models import utcnow
from ..services import accounts, admin, tokens
from ..services.commands import ChangePassword, CreateToken

bp = Blueprint("auth", __name__)
#: What Flask-Login flashes on the way to the login page; translated when flashed (web.py's localize_callback).
LOGIN_MESSAGE = N_("Please log in to access this page.")


def _safe_next(target: str | None) -> str:
    """Only follow redirects to paths on this site."""
    if target and not urlsplit(target).netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("inbox.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and sign the user in."""
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(get_session(), form.username.data, form.password.data)
        if user is not None:
            lang = session.get("lang")
            session.clear()
            session.permanent = True  # ends after [app] session_lifetime_hours without a request
            session["login_at"] = int(time.time())  # and [app] session_max_days after the login
            if lang:
                session["lang"] = lang
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append(_("Wrong username or password."))
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign the user out everywhere (POST; CSRFProtect checks the token): saved cookies stop working."""
    lang = session.get("lang")
    accounts.end_sessions(current_user)
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/lang/<code>")
def set_language(code: str):
    """Switch the UI language and go back."""
    if code in ("zh_CN", "en"):
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    """My account: API tokens for programs acting as me (a scope, an optional expiry; shown once, revocable)."""
    db = get_session()
    form = TokenForm()
    secret = None
    command = build_command(form, CreateToken) if form.is_submitted() else None
    if command is not None:
        try:
            _token, secret = tokens.issue(db, current_user, command)
        except DomainError as exc:
            db.rollback()
            add_service_error(form, exc)
        else:
            form = TokenForm(formdata=None)
    status = 422 if form.errors else 200
    return render_template("auth/profile.html", form=form, secret=secret, tokens=tokens.of(db, current_user),
                           revoke_form=FlaskForm(), scopes=TOKEN_SCOPE_NAMES, now=utcnow()), status


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    """Revoke one of my API tokens: programs using it get 401 from now on."""
    if not FlaskForm().validate_on_submit():
        return redirect(url_for("auth.profile"))
    try:
        token = tokens.revoke(get_session(), current_user, token_id)
    except DomainError:
        abort(404)
    flash(_("Token %(name)s revoked.", name=token.name), "success")
    return redirect(url_for("auth.profile"))


# -- my password ---------------------------------------------------------------------------------------

class PasswordForm(FlaskForm):
    """Change my password: the current one, the new one twice (ChangePassword's rules)."""

    current_password = PasswordField(_l("Current password"))
    new_password = PasswordField(_l("New password"))
    confirm_password = PasswordField(_l("New password again"))


#: Pages a person who must choose a new password may still reach.
_OPEN_WHILE_FORCED = {"auth.password", "auth.logout", "auth.set_language", "auth.login", "static"}


def forced_password_change() -> Response | None:
    """After an administrator reset the password, every page leads to choosing a new one first (web.py calls
    this after it ended sessions past their age: loading the person earlier would keep such a session)."""
    if request.blueprint in ("api", "open311") or request.endpoint in _OPEN_WHILE_FORCED or "_user_id" not in session:
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        return redirect(url_for("auth.password"))
    return None


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    """Change my own password (the current one required); my other sessions end, this one goes on."""
    form = PasswordForm()
    if form.is_submitted():
        command = build_command(form, ChangePassword)
        if command is not None:
            db = get_session()
            try:
                admin.change_own_password(db, current_user, command.current_password, command.new_password)
            except DomainError as exc:
                db.rollback()
                add_service_error(form, exc)
            else:
                login_user(current_user._get_current_object())  # the new session generation: stay signed in here
                flash(_("Your password is changed; your other sessions have ended."), "success")
                return redirect(url_for("auth.profile"))
    return render_template("auth/password.html", form=form,
                           forced=current_user.must_change_password), 422 if form.errors or form.form_errors else 200
