"""Login (password, then TOTP when enabled), throttling and logout."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from bastion.core import services
from bastion.core.middleware import request_ip
from bastion.core.models import User
from bastion.web.forms import LoginForm, TotpForm

PENDING_USER = "bastion_2fa_user"
PENDING_SINCE = "bastion_2fa_since"
PENDING_NEXT = "bastion_2fa_next"
# The password step stays valid for this long while the user fetches their code.
PENDING_TTL_S = 300
GENERIC_FAILURE = "That username or password is not right."
LOCKED_OUT = (
    "Too many failed sign-in attempts. Wait a few minutes, then try again; "
    "if you forgot your password, ask an administrator of your organization."
)


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return str(settings.LOGIN_REDIRECT_URL)


def _resolve_username(login_name: str) -> str:
    """People may type their email; authenticate() wants the username."""
    if "@" in login_name:
        user = User.objects.filter(email__iexact=login_name).only("username").first()
        if user is not None:
            return user.username
    return login_name


def _finish_login(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    services.record_login(user.username, request_ip(request), True, user)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect(next_url)


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            login_name = form.cleaned_data["username"].strip()
            username = _resolve_username(login_name)
            ip = request_ip(request)
            if services.login_locked_out(username, ip):
                form.add_error(None, LOCKED_OUT)
                status = 429
            else:
                user = authenticate(
                    request, username=username, password=form.cleaned_data["password"]
                )
                if not isinstance(user, User):
                    services.record_login(username, ip, False)
                    form.add_error(None, GENERIC_FAILURE)
                elif user.totp_enabled:
                    request.session[PENDING_USER] = user.pk
                    request.session[PENDING_SINCE] = time.time()
                    request.session[PENDING_NEXT] = next_url
                    return redirect("web:login-2fa")
                else:
                    return _finish_login(request, user, next_url)
    return render(request, "web/auth/login.html", {"form": form, "next": next_url}, status=status)


def _pending_user(request: HttpRequest) -> User | None:
    user_id = request.session.get(PENDING_USER)
    since = float(request.session.get(PENDING_SINCE, 0))
    if user_id is None or time.time() - since > PENDING_TTL_S:
        return None
    return User.objects.filter(pk=user_id, is_active=True).first()


@require_http_methods(["GET", "POST"])
def login_2fa_view(request: HttpRequest) -> HttpResponse:
    user = _pending_user(request)
    if user is None:
        messages.info(request, "Sign in with your password first.")
        return redirect("web:login")
    form = TotpForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        ip = request_ip(request)
        if services.login_locked_out(user.username, ip):
            form.add_error(None, LOCKED_OUT)
            status = 429
        elif form.is_valid():
            if services.verify_totp(user, form.cleaned_data["code"]):
                next_url = str(request.session.get(PENDING_NEXT) or settings.LOGIN_REDIRECT_URL)
                for key in (PENDING_USER, PENDING_SINCE, PENDING_NEXT):
                    request.session.pop(key, None)
                return _finish_login(request, user, next_url)
            services.record_login(user.username, ip, False)
            form.add_error("code", "That code is not right. Codes change every 30 seconds.")
    return render(request, "web/auth/login_2fa.html", {"form": form}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponseRedirect:
    logout(request)
    messages.success(request, "You are signed out.")
    return redirect("web:login")
