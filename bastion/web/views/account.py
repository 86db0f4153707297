"""The user's own account: password and two-factor authentication."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from bastion.core import services
from bastion.web.forms import PasswordChangeForm, TotpForm
from bastion.web.views._common import apply_errors, current_user, no_store, page, principal_of

SETUP_SECRET = "bastion_totp_setup_secret"  # noqa: S105 (a session key name)


def _account(
    request: HttpRequest,
    *,
    password_form: PasswordChangeForm | None = None,
    totp_form: TotpForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    context: dict[str, object] = {
        "password_form": password_form or PasswordChangeForm(),
        "totp_form": totp_form or TotpForm(),
    }
    if not user.totp_enabled:
        secret = request.session.get(SETUP_SECRET)
        if not secret:
            secret = services.begin_totp_setup(user)
            request.session[SETUP_SECRET] = secret
        uri = services.totp_uri(user, secret)
        context["totp_secret"] = secret
        context["totp_qr"] = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    return no_store(page(request, "web/account.html", context, section="account", status=status))


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return _account(request)


@login_required
@require_POST
def password_change(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = PasswordChangeForm(request.POST)
    if form.is_valid():
        if not user.check_password(form.cleaned_data["current_password"]):
            form.add_error("current_password", "That is not your current password.")
        else:
            try:
                services.change_password(
                    principal_of(request).actor, user, form.cleaned_data["new_password"]
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error("new_password", message)
            else:
                update_session_auth_hash(request, user)
                messages.success(request, "Your password was changed.")
                return redirect("web:account")
    return _account(request, password_form=form, status=400)


@login_required
@require_POST
def totp_enable(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = TotpForm(request.POST)
    secret = request.session.get(SETUP_SECRET)
    if user.totp_enabled:
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("web:account")
    if form.is_valid() and secret:
        try:
            services.enable_totp(
                principal_of(request).actor, user, secret, form.cleaned_data["code"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            request.session.pop(SETUP_SECRET, None)
            messages.success(
                request, "Two-factor authentication is on. You will need a code at every sign-in."
            )
            return redirect("web:account")
    return _account(request, totp_form=form, status=400)


@login_required
@require_POST
def totp_disable(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = TotpForm(request.POST)
    if not user.totp_enabled:
        return redirect("web:account")
    if form.is_valid() and services.verify_totp(user, form.cleaned_data["code"]):
        services.disable_totp(principal_of(request).actor, user)
        messages.success(request, "Two-factor authentication is off.")
        return redirect("web:account")
    if form.is_valid():
        form.add_error("code", "That code is not right.")
    return _account(request, totp_form=form, status=400)
