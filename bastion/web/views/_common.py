"""Helpers every page uses: who is asking, which organization, rendering, and form errors."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from urllib.parse import quote

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from bastion.core.access import Principal, get_organization_for
from bastion.core.models import Organization, Role, User, role_at_least

P = ParamSpec("P")
OrgView = Callable[Concatenate[HttpRequest, Organization, P], HttpResponseBase]
UrlView = Callable[..., HttpResponseBase]


def current_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User), "login_required runs first"
    return user


def principal_of(request: HttpRequest) -> Principal:
    return Principal.of_user(current_user(request))


def web_login_required(view: UrlView) -> UrlView:
    """``login_required``, except that an htmx poll from an expired session asks the browser
    to load the login page instead of swapping it into a fragment of the current page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.headers.get("HX-Request") and not request.user.is_authenticated:
            response = HttpResponse(status=401)
            response["HX-Redirect"] = f"{settings.LOGIN_URL}?next={quote(request.path)}"
            return response
        return login_required(view)(request, *args, **kwargs)

    return wrapper


def _bind_org(request: HttpRequest, slug: str, minimum: str) -> Organization:
    principal = principal_of(request)
    organization = get_organization_for(principal, slug, minimum)
    request.bastion_org = organization  # type: ignore[attr-defined]
    request.bastion_role = principal.role_in(organization)  # type: ignore[attr-defined]
    return organization


def org_page(minimum: str = Role.VIEWER) -> Callable[[OrgView[P]], UrlView]:
    """A GET page inside ``/o/<org>/``; the organization is resolved through the scoped helper."""

    def decorate(view: OrgView[P]) -> UrlView:
        @web_login_required
        @require_GET
        @wraps(view)
        def wrapper(
            request: HttpRequest, org: str, *args: P.args, **kwargs: P.kwargs
        ) -> HttpResponseBase:
            return view(request, _bind_org(request, org, minimum), *args, **kwargs)

        wrapper.bastion_action = False  # type: ignore[attr-defined]
        return wrapper

    return decorate


def org_action(minimum: str = Role.ADMIN) -> Callable[[OrgView[P]], UrlView]:
    """A POST endpoint inside ``/o/<org>/`` that changes state.

    The role check runs before any input is looked at, so a viewer gets 403 whatever they send.
    """

    def decorate(view: OrgView[P]) -> UrlView:
        @web_login_required
        @require_POST
        @wraps(view)
        def wrapper(
            request: HttpRequest, org: str, *args: P.args, **kwargs: P.kwargs
        ) -> HttpResponseBase:
            return view(request, _bind_org(request, org, minimum), *args, **kwargs)

        wrapper.bastion_action = True  # type: ignore[attr-defined]
        wrapper.bastion_minimum_role = minimum  # type: ignore[attr-defined]
        return wrapper

    return decorate


def page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    section: str = "",
    status: int = 200,
) -> HttpResponse:
    ctx = dict(context or {})
    ctx.setdefault("section", section)
    return render(request, template, ctx, status=status)


def can(request: HttpRequest, minimum: str) -> bool:
    role = getattr(request, "bastion_role", None)
    return role is not None and role_at_least(role, minimum)


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a domain ValidationError next to the matching fields (or on top of the form)."""
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            target = field if field in form.fields else None
            for message in messages:
                form.add_error(target, message)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def no_store(response: HttpResponse) -> HttpResponse:
    """For pages that show a secret once: never cache them anywhere."""
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
