"""Accepting an invitation: as the signed-in user, or by signing up first."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from bastion.core import services
from bastion.core.context import Actor
from bastion.core.models import User
from bastion.web.forms import SignupForm
from bastion.web.views._common import apply_errors


def _signup_and_accept(token: str, username: str, email: str, password: str) -> User:
    """Both or neither: a failed acceptance leaves no orphan account behind."""
    with transaction.atomic():
        user, _ = services.create_user(
            Actor.system(f"invitation-signup:{username[:50]}"),
            username=username,
            email=email,
            password=password,
        )
        services.accept_invitation(Actor.for_user(user), user, token)
    return user


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    found = services.find_pending_invitation(token)
    if found is None:
        return render(request, "web/invitation_invalid.html", status=404)
    user = request.user
    signed_in = isinstance(user, User) and user.is_authenticated
    form = SignupForm(
        request.POST if request.method == "POST" and not signed_in else None,
        initial={"email": found.email},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if isinstance(user, User) and user.is_authenticated:
            try:
                services.accept_invitation(Actor.for_user(user), user, token)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, f"Welcome to {found.organization.name}!")
                return redirect("web:dashboard", org=found.organization.slug)
        elif form.is_valid():
            try:
                new_user = _signup_and_accept(
                    token,
                    form.cleaned_data["username"],
                    form.cleaned_data["email"],
                    form.cleaned_data["password"],
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    apply_errors(form, exc)
                else:  # the password validators raise a plain list
                    for message in exc.messages:
                        form.add_error("password", message)
            else:
                login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome to {found.organization.name}!")
                return redirect("web:dashboard", org=found.organization.slug)
    context = {
        "invitation": found,
        "form": form,
        "signed_in": signed_in,
        "login_url": f"{reverse('web:login')}?next={request.path}",
    }
    return render(request, "web/invitation.html", context, status=status)
