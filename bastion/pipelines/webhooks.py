"""Builds from GitHub and GitLab webhooks (push, pull/merge request, tag), signature verified.

``POST /hooks/pipelines/<org>/<pipeline>/github`` checks ``X-Hub-Signature-256`` (HMAC-SHA256
of the raw body with the pipeline's webhook secret); ``.../gitlab`` checks ``X-Gitlab-Token``.
An unknown pipeline, or one without a secret, and a bad signature are all 404/401 and change
nothing. Events that start no build (a ping, a deleted branch, a closed merge request) get 202.
Parsing an event into a ``Trigger`` is a pure function per provider.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from bastion.core import crypto
from bastion.core.access import Principal
from bastion.pipelines import services
from bastion.pipelines.models import Pipeline

logger = logging.getLogger(__name__)
PR_ACTIONS = {"opened", "synchronize", "reopened"}
MR_ACTIONS = {"open", "update", "reopen"}


@dataclass(frozen=True)
class Trigger:
    branch: str
    commit: str
    message: str = ""
    env: dict[str, str] = field(default_factory=dict)
    # Kept on the build for ``if`` (``Build.origin``): the commit's author and the pull request.
    origin: dict[str, Any] = field(default_factory=dict)


def _ref(ref: str) -> tuple[str, str] | None:
    """("branch"|"tag", name) of a git ref."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix) :]
    return None


def _push(ref: str, commit: str, message: str, author: dict[str, str]) -> Trigger | None:
    found = _ref(ref)
    if found is None or not commit or set(commit) == {"0"}:  # a deleted branch or tag
        return None
    kind, name = found
    env = {"BUILDKITE_TAG": name} if kind == "tag" else {}
    return Trigger(branch=name, commit=commit, message=message, env=env, origin={"author": author})


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _get(data: Any, *path: str) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _author(name: Any, email: Any, username: Any) -> dict[str, str]:
    """The commit author as the provider said (unverified, as in Buildkite); empty parts left out."""
    parts = {"name": _str(name)[:200], "email": _str(email)[:200], "username": _str(username)[:200]}
    return {key: value for key, value in parts.items() if value}


def _pull_request(draft: Any, labels: Any, repository: Any) -> dict[str, Any]:
    names = [_str(label) for label in labels] if isinstance(labels, list) else []
    return {
        "draft": draft is True,
        "labels": [name[:200] for name in names if name][:100],
        "repository": _str(repository)[:500],
    }


def github_trigger(event: str, payload: dict[str, Any]) -> Trigger | None:
    if event == "push":
        if payload.get("deleted"):
            return None
        head = _get(payload, "head_commit")
        author = _author(
            _get(head, "author", "name"),
            _get(head, "author", "email"),
            _get(head, "author", "username"),
        )
        message = _str(_get(head, "message"))
        return _push(_str(payload.get("ref")), _str(payload.get("after")), message, author)
    if event == "pull_request" and payload.get("action") in PR_ACTIONS:
        pr = payload.get("pull_request") or {}
        number = str(_get(pr, "number") or payload.get("number") or "")
        labels = [_get(label, "name") for label in _get(pr, "labels") or [] if label]
        return Trigger(
            branch=_str(_get(pr, "head", "ref")),
            commit=_str(_get(pr, "head", "sha")),
            message=_str(_get(pr, "title")),
            env={
                "BUILDKITE_PULL_REQUEST": number,
                "BUILDKITE_PULL_REQUEST_BASE_BRANCH": _str(_get(pr, "base", "ref")),
            },
            origin={
                # A pull request event names its opener, not the head commit's author.
                "author": _author(None, None, _get(pr, "user", "login")),
                "pull_request": _pull_request(
                    _get(pr, "draft"), labels, _get(pr, "head", "repo", "clone_url")
                ),
            },
        )
    return None


def gitlab_trigger(event: str, payload: dict[str, Any]) -> Trigger | None:
    if event in ("Push Hook", "Tag Push Hook"):
        commits = payload.get("commits") if isinstance(payload.get("commits"), list) else []
        last = commits[-1] if commits else None
        message = _str(_get(last, "message"))
        commit = _str(payload.get("checkout_sha")) or _str(payload.get("after"))
        author = _author(
            _get(last, "author", "name"),
            _get(last, "author", "email"),
            payload.get("user_username"),
        )
        return _push(_str(payload.get("ref")), commit, message, author)
    attrs = payload.get("object_attributes") or {}
    if event == "Merge Request Hook" and _get(attrs, "action") in MR_ACTIONS:
        labels = [_get(label, "title") for label in _get(payload, "labels") or [] if label]
        draft = _get(attrs, "draft")
        return Trigger(
            branch=_str(_get(attrs, "source_branch")),
            commit=_str(_get(attrs, "last_commit", "id")),
            message=_str(_get(attrs, "title")),
            env={
                "BUILDKITE_PULL_REQUEST": str(_get(attrs, "iid") or ""),
                "BUILDKITE_PULL_REQUEST_BASE_BRANCH": _str(_get(attrs, "target_branch")),
            },
            origin={
                "author": _author(
                    _get(attrs, "last_commit", "author", "name"),
                    _get(attrs, "last_commit", "author", "email"),
                    _get(payload, "user", "username"),
                ),
                "pull_request": _pull_request(
                    draft if draft is not None else _get(attrs, "work_in_progress"),
                    labels,
                    _get(attrs, "source", "git_http_url"),
                ),
            },
        )
    return None


def _secret(pipeline: Pipeline) -> str | None:
    if not pipeline.webhook_secret:
        return None
    try:
        return crypto.decrypt(pipeline.webhook_secret)
    except crypto.DecryptionError:
        logger.error("pipeline %s: the webhook secret cannot be decrypted", pipeline.pk)
        return None


def github_signed(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def gitlab_signed(secret: str, header: str) -> bool:
    return hmac.compare_digest(secret.encode(), header.encode())


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


def _receive(request: HttpRequest, org: str, slug: str, provider: str) -> JsonResponse:
    pipeline = (
        Pipeline.objects.select_related("organization", "cluster")
        .filter(organization__slug=org, slug=slug)
        .first()
    )
    secret = _secret(pipeline) if pipeline is not None else None
    if pipeline is None or secret is None:
        return _error(404, "No such pipeline, or its webhooks are off.")
    body = request.body
    if provider == "github":
        signed = github_signed(secret, body, request.headers.get("X-Hub-Signature-256", ""))
        event = request.headers.get("X-GitHub-Event", "")
    else:
        signed = gitlab_signed(secret, request.headers.get("X-Gitlab-Token", ""))
        event = request.headers.get("X-Gitlab-Event", "")
    if not signed:
        return _error(401, "The webhook signature does not match.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return _error(400, "The body is not a JSON object.")
    parse = github_trigger if provider == "github" else gitlab_trigger
    trigger = parse(event, payload)
    if trigger is None:
        return JsonResponse(
            {"build": None, "detail": f"Event {event[:50]!r}: no build."}, status=202
        )
    principal = Principal.system(organization=pipeline.organization, what=f"webhook:{provider}")
    try:
        build = services.create_build(
            principal,
            pipeline,
            branch=trigger.branch,
            commit=trigger.commit or "HEAD",
            message=trigger.message[:10_000],
            env=trigger.env,
            source="webhook",
            origin=trigger.origin,
        )
    except ValidationError as exc:
        return JsonResponse({"detail": "Invalid event.", "errors": exc.message_dict}, status=400)
    return JsonResponse({"build": build.number, "state": build.state}, status=201)


@csrf_exempt
@require_POST
def github(request: HttpRequest, org: str, pipeline: str) -> JsonResponse:
    return _receive(request, org, pipeline, "github")


@csrf_exempt
@require_POST
def gitlab(request: HttpRequest, org: str, pipeline: str) -> JsonResponse:
    return _receive(request, org, pipeline, "gitlab")
