"""The one NinjaAPI under /api/v1/: authentication, error mapping, and the mounted routers."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, URLResolver, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.schema import OpenAPISchema
from ninja.parser import Parser
from ninja.security import APIKeyCookie, HttpBearer
from ninja.types import DictStrAny

from bastion.core.access import Principal
from bastion.core.schemas import ErrorOut
from bastion.core.services import authenticate_api_token

logger = logging.getLogger(__name__)


class ApiTokenAuth(HttpBearer):
    """``Authorization: Bearer bstapi_...`` — an organization-scoped API token."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal | None:
        api_token = authenticate_api_token(token)
        return Principal.of_token(api_token) if api_token is not None else None


class SessionAuth(APIKeyCookie):
    """The browser session of a logged-in user; CSRF is checked for unsafe methods."""

    param_name = "sessionid"

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a session cookie this scheme does not apply: the caller gets 401 (no or bad
        # token), not a CSRF 403. With one, an unsafe method needs a valid CSRF token.
        if self.param_name not in request.COOKIES:
            return None
        return super()._get_key(request)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            return Principal.of_user(user)
        return None


class UnsupportedMediaType(Exception):
    """A JSON operation received a body of another content type (mapped to 415)."""


class NulCharacter(ValueError):
    """Input holds U+0000, which no text column can store (PostgreSQL refuses it)."""


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class JsonOnlyParser(Parser):
    """Bodies of JSON operations must say they are JSON; anything else is 415, not a guess."""

    def parse_body(self, request: HttpRequest) -> DictStrAny:
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(content_type or "(none)")
        data = super().parse_body(request)
        if _has_nul(data):
            raise NulCharacter("NUL characters (U+0000) are not allowed in input.")
        return data


def _refuse_nul_in_url(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            return _error(request, 400, "NUL characters (U+0000) are not allowed in input.")
        return view(request, *args, **kwargs)

    return guarded


_ERROR_DESCRIPTIONS = {
    400: "Invalid input: `errors` says which fields and why.",
    401: "No valid token or session (missing, unknown, expired or revoked).",
    403: "Your role is too low for this, or the CSRF check failed.",
    404: "No such object in your organizations.",
    413: "Request body too large.",
    415: "The body is not `application/json`.",
}


class BastionAPI(NinjaAPI):
    """The NinjaAPI whose OpenAPI document also declares the errors that ``_error`` produces
    for every operation (they come from this module's handlers, not from each router)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: DictStrAny | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        _declare_errors(schema)
        return schema

    def _get_urls(self) -> list[URLResolver | URLPattern]:
        urls = super()._get_urls()
        for url in urls:
            if isinstance(url, URLPattern):
                url.callback = _refuse_nul_in_url(url.callback)
        # Last: anything under /api/v1/ that no operation matched (an unknown path, or a
        # non-numeric id where a number is expected) is a JSON 404 like every other error.
        urls.append(re_path(r"^.*$", _no_such_endpoint, name="api-not-found"))
        return urls


@csrf_exempt
def _no_such_endpoint(request: HttpRequest) -> HttpResponse:
    return _error(request, 404, f"No such endpoint: {request.method} {request.path}.")


def _declare_errors(schema: OpenAPISchema) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            codes: set[int] = set()
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(400)
            if operation.get("security"):
                codes |= {401, 403, 404}
            if "requestBody" in operation:
                codes |= {413, 415}
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(
                    str(code),
                    {
                        "description": _ERROR_DESCRIPTIONS[code],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ErrorOut"}
                            }
                        },
                    },
                )


api = BastionAPI(
    title="Bastion API",
    version="1",
    description="Scanning, browser tests, pipelines and error tracking. Authenticate with an "
    "API token: `Authorization: Bearer bstapi_...`.",
    auth=[ApiTokenAuth(), SessionAuth()],
    parser=JsonOnlyParser(),
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, detail: str, errors: Any = None) -> HttpResponse:
    """The one error body of the API: ``{"detail": "...", "errors": ... or null}``."""
    return api.create_response(request, {"detail": detail, "errors": errors}, status=status)


@api.exception_handler(DjangoValidationError)
def _django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return _error(request, 400, "Invalid input.", errors=errors)


@api.exception_handler(NinjaValidationError)
def _ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return _error(request, 400, "Invalid input.", errors=exc.errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "Authentication required: a valid, unexpired, unrevoked token.")


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or "Not allowed.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "Not found.")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "Request body too large.")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, UnsupportedMediaType):
        return _error(request, 415, f"Send JSON with Content-Type: application/json, not {cause}.")
    if isinstance(cause, NulCharacter):
        return _error(request, 400, str(cause))
    if isinstance(cause, ValueError) and exc.status_code == 400:
        # ninja's "Cannot parse request body": say what was wrong, without echoing the body.
        return _error(request, 400, "The request body is not valid JSON.", errors=[str(cause)])
    response = _error(request, exc.status_code, str(exc))
    if exc.status_code == 429:
        response["Retry-After"] = "1"
    return response


def _mount_routers() -> None:
    from bastion.core.api import router as core_router
    from bastion.jobs.agent_api import router as agent_router
    from bastion.jobs.api import router as jobs_router

    api.add_router("/", core_router)
    api.add_router("/", "bastion.core.notifications_api.router")
    api.add_router("/", jobs_router)
    api.add_router("/agent", agent_router)
    api.add_router("/", "bastion.errors.api.router")
    api.add_router("/", "bastion.errors.alerts_api.router")
    api.add_router("/", "bastion.errors.collaboration_api.router")
    api.add_router("/", "bastion.pipelines.api.router")
    api.add_router("/", "bastion.pipelines.policy_api.router")
    api.add_router("/", "bastion.pipelines.secret_api.router")
    api.add_router("/", "bastion.browser.api.router")
    api.add_router("/", "bastion.browser.manage_api.router")
    api.add_router("/", "bastion.scanning.api.router")
    api.add_router("/", "bastion.scanning.manual_api.router")


_mount_routers()
