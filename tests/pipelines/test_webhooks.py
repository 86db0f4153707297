"""GitHub and GitLab webhooks through the whole HTTP stack: signatures, events, builds."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from django.test import Client

from bastion.core.models import AuditEvent
from bastion.pipelines import services
from bastion.pipelines.models import Build, Pipeline
from tests.jobs.helpers import World
from tests.pipelines.helpers import make_pipeline

YAML = """
steps:
  - command: echo tests
    key: tests
  - command: echo release
    key: release
    if: build.tag != null
  - command: echo review app
    key: review
    if: build.pull_request.id != null && build.pull_request.base_branch == "main"
"""


@pytest.fixture
def hooked(world: World) -> tuple[Pipeline, str]:
    pipeline = make_pipeline(world, YAML)
    return pipeline, services.rotate_webhook_secret(world.principal, pipeline)


def _url(pipeline: Pipeline, provider: str) -> str:
    return f"/hooks/pipelines/{pipeline.organization.slug}/{pipeline.slug}/{provider}"


def github(pipeline: Pipeline, secret: str, event: str, payload: Any, sign: bool = True) -> Any:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": event,
        "X-Hub-Signature-256": "sha256=" + (digest if sign else "0"),
    }
    return Client().post(
        _url(pipeline, "github"), body, content_type="application/json", headers=headers
    )


def github_push(author: dict[str, str]) -> dict[str, Any]:
    """A GitHub push of one commit by ``author`` to branch x."""
    return {"ref": "refs/heads/x", "after": "a" * 40,
            "head_commit": {"message": "m", "author": author}}  # fmt: skip


def github_draft_pull_request(labels: list[str]) -> dict[str, Any]:
    """GitHub's "opened" event of draft pull request 8 by bob, from a fork, into main."""
    return {"action": "opened", "pull_request": {
        "number": 8, "title": "T", "draft": True, "user": {"login": "bob"},
        "labels": [{"name": label} for label in labels],
        "head": {"ref": "t", "sha": "b" * 40, "repo": {"clone_url": "https://g.test/fork/a.git"}},
        "base": {"ref": "main"}}}  # fmt: skip


def gitlab(pipeline: Pipeline, token: str, event: str, payload: Any) -> Any:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": token}
    return Client().post(
        _url(pipeline, "gitlab"), json.dumps(payload), content_type="application/json",
        headers=headers,
    )  # fmt: skip


def test_github_push_pull_request_and_tag_create_builds(hooked: tuple[Pipeline, str]) -> None:
    pipeline, secret = hooked
    push = {"ref": "refs/heads/feature/x", "after": "a" * 40, "head_commit": {"message": "Fix"}}
    assert github(pipeline, secret, "push", push).status_code == 201
    pr = {"action": "opened", "number": 7, "pull_request": {
        "number": 7, "title": "Add", "head": {"ref": "topic", "sha": "b" * 40},
        "base": {"ref": "main"}}}  # fmt: skip
    assert github(pipeline, secret, "pull_request", pr).status_code == 201
    tag = {"ref": "refs/tags/v1.2.0", "after": "c" * 40}
    assert github(pipeline, secret, "push", tag).status_code == 201
    builds = list(Build.objects.filter(pipeline=pipeline).order_by("number"))
    assert [(b.branch, b.commit, b.source) for b in builds] == [
        ("feature/x", "a" * 40, "webhook"), ("topic", "b" * 40, "webhook"),
        ("v1.2.0", "c" * 40, "webhook"),
    ]  # fmt: skip
    assert builds[0].message == "Fix"
    assert builds[1].env == {
        "BUILDKITE_PULL_REQUEST": "7",
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main",
    }
    # Only the tag build runs the release step.
    assert {s.key: s.state for s in builds[0].steps.all()}["release"] == "skipped"
    assert {s.key: s.state for s in builds[2].steps.all()}["release"] != "skipped"
    # Only the pull request build runs the review step.
    assert [{s.key: s.state for s in b.steps.all()}["review"] for b in builds] == [
        "skipped", "running", "skipped",
    ]  # fmt: skip
    creators = AuditEvent.objects.filter(action="build.create").values_list(
        "actor_label", flat=True
    )
    assert set(creators) == {"webhook:github"}


def test_github_refuses_bad_signatures_and_ignores_other_events(
    hooked: tuple[Pipeline, str], world: World
) -> None:
    pipeline, secret = hooked
    push = {"ref": "refs/heads/main", "after": "a" * 40}
    assert github(pipeline, secret, "push", push, sign=False).status_code == 401
    assert github(pipeline, "other-secret", "push", push).status_code == 401
    assert github(pipeline, secret, "ping", {"zen": "hi"}).status_code == 202
    assert github(pipeline, secret, "push", {**push, "deleted": True}).status_code == 202
    closed = {"action": "closed", "pull_request": {"head": {"ref": "x", "sha": "b" * 40}}}
    assert github(pipeline, secret, "pull_request", closed).status_code == 202
    assert github(pipeline, secret, "push", ["not", "an", "object"]).status_code == 400
    assert not Build.objects.filter(pipeline=pipeline).exists()
    # A pipeline without a secret, and one of nobody, are not found.
    quiet = make_pipeline(world, YAML, slug="quiet")
    assert github(quiet, secret, "push", push).status_code == 404
    assert Client().get(_url(pipeline, "github")).status_code == 405
    # A rotated secret replaces the old one.
    fresh_secret = services.rotate_webhook_secret(world.principal, pipeline)
    assert github(pipeline, secret, "push", push).status_code == 401
    assert github(pipeline, fresh_secret, "push", push).status_code == 201
    assert AuditEvent.objects.filter(action="pipeline.webhook_secret").count() == 2
    stored = Pipeline.objects.get(pk=pipeline.pk).webhook_secret
    assert fresh_secret not in stored


def test_gitlab_push_tag_and_merge_request(hooked: tuple[Pipeline, str]) -> None:
    pipeline, secret = hooked
    push = {"ref": "refs/heads/main", "checkout_sha": "d" * 40, "commits": [{"message": "m1"}]}
    assert gitlab(pipeline, secret, "Push Hook", push).status_code == 201
    tag = {"ref": "refs/tags/v2", "checkout_sha": "e" * 40, "commits": []}
    assert gitlab(pipeline, secret, "Tag Push Hook", tag).status_code == 201
    mr = {"object_attributes": {"action": "open", "iid": 3, "source_branch": "feat",
          "target_branch": "main", "title": "MR", "last_commit": {"id": "f" * 40}}}  # fmt: skip
    assert gitlab(pipeline, secret, "Merge Request Hook", mr).status_code == 201
    assert gitlab(pipeline, "wrong", "Push Hook", push).status_code == 401
    deleted = {"ref": "refs/heads/gone", "after": "0" * 40, "checkout_sha": None}
    assert gitlab(pipeline, secret, "Push Hook", deleted).status_code == 202
    builds = list(Build.objects.filter(pipeline=pipeline).order_by("number"))
    assert [(b.branch, b.commit, b.env.get("BUILDKITE_TAG")) for b in builds] == [
        ("main", "d" * 40, None), ("v2", "e" * 40, "v2"), ("feat", "f" * 40, None),
    ]  # fmt: skip
    assert builds[0].message == "m1" and builds[2].env["BUILDKITE_PULL_REQUEST"] == "3"
    assert [{s.key: s.state for s in b.steps.all()}["review"] for b in builds] == [
        "skipped", "skipped", "running",
    ]  # fmt: skip


WHO = """
steps:
  - {command: echo, key: webhook, if: build.source == "webhook" && build.creator.id == null}
  - {command: echo, key: alice, if: build.author.email == "alice@example.test"}
  - {command: echo, key: alice-name, if: build.author.name == "Alice A"}
  - {command: echo, key: bob, if: build.author.username == "bob"}
  - {command: echo, key: draft, if: build.pull_request.draft == true}
  - {command: echo, key: ready, if: build.pull_request.draft == false}
  - {command: echo, key: deploy-label, if: build.pull_request.labels includes "deploy"}
  - {command: echo, key: fork, if: build.pull_request.repository =~ /fork/}
"""


def _ran(build: Build) -> set[str]:
    return {s.key for s in build.steps.all() if s.state != "skipped"}


def test_if_conditions_know_the_author_and_the_pull_request_details(world: World) -> None:
    pipeline = make_pipeline(world, WHO, slug="who")
    secret = services.rotate_webhook_secret(world.principal, pipeline)
    author = {"name": "Alice A", "email": "alice@example.test", "username": "bob"}
    assert github(pipeline, secret, "push", github_push(author)).status_code == 201
    pr = github_draft_pull_request(["deploy", "docs"])
    assert github(pipeline, secret, "pull_request", pr).status_code == 201
    gl_push = {"ref": "refs/heads/main", "checkout_sha": "c" * 40, "user_username": "carol",
               "commits": [{"message": "m", "author": author}]}  # fmt: skip
    assert gitlab(pipeline, secret, "Push Hook", gl_push).status_code == 201
    mr = {"user": {"username": "bob"}, "labels": [{"title": "ops"}],
          "object_attributes": {"action": "open", "iid": 4, "source_branch": "f",
          "target_branch": "main", "title": "MR", "draft": False,
          "source": {"git_http_url": "https://gl.test/team/a.git"},
          "last_commit": {"id": "d" * 40, "author": {"email": "alice@example.test"}}}}  # fmt: skip
    assert gitlab(pipeline, secret, "Merge Request Hook", mr).status_code == 201
    builds = list(Build.objects.filter(pipeline=pipeline).order_by("number"))
    assert [_ran(b) for b in builds] == [
        {"webhook", "alice", "alice-name", "bob"},
        {"webhook", "bob", "draft", "deploy-label", "fork"},
        {"webhook", "alice", "alice-name"},
        {"webhook", "alice", "bob", "ready"},
    ]
    assert builds[1].origin["pull_request"] == {
        "draft": True, "labels": ["deploy", "docs"], "repository": "https://g.test/fork/a.git",
    }  # fmt: skip
    # Odd shapes from a provider are ignored, not a crash.
    odd = {**pr, "pull_request": {**pr["pull_request"], "labels": "deploy", "user": [1]}}
    assert github(pipeline, secret, "pull_request", odd).status_code == 201
    assert _ran(Build.objects.get(pipeline=pipeline, number=5)) == {"webhook", "draft", "fork"}
