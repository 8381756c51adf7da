"""Log in and out, and switch the UI language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from ..db import get_session
from ..forms import LoginForm
from ..models import User

bp = Blueprint("auth", __name__)


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
        user = get_session().scalar(select(User).where(User.username == form.username.data.strip()))
        if user is not None and user.active and check_password_hash(user.password_hash, form.password.data):
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append(_("Wrong username or password."))
        return render_template("auth/login.html", form=form), 401
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    """Sign the user out (POST; CSRFProtect checks the token)."""
    lang = session.get("lang")
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
