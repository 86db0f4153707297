"""A test's history: pass rate over finished runs, and flakiness (failed, then passed unchanged)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from bastion.browser import services
from bastion.browser.history import history_of
from bastion.browser.models import BrowserRun
from bastion.core.access import Principal
from bastion.core.models import Project
from tests.factories import make_org, make_project, make_user

pytestmark = pytest.mark.django_db


def _run(project: Project, minutes: int, status: str, version: int) -> BrowserRun:
    when = timezone.now() - timedelta(minutes=minutes)
    return BrowserRun.objects.create(
        project=project,
        status=status,
        versions={"login": version},
        results=[{"slug": "login", "test": "Login", "status": status, "steps": []}],
        created_at=when,
        finished_at=when,
    )


def test_pass_rate_and_flakiness_follow_the_versions() -> None:
    owner = make_user()
    principal = Principal.of_user(owner)
    project = make_project(make_org(owner))
    test = services.save_test(principal, project, {"name": "Login", "steps": [{"log": "x"}]})
    assert history_of(principal, test).pass_rate is None

    _run(project, 30, "failed", 1)
    _run(project, 20, "passed", 2)  # fixed by a change: not flaky
    history = history_of(principal, test)
    assert (history.runs, history.passed, history.pass_rate, history.flaky) == (2, 1, 50.0, False)

    _run(project, 10, "failed", 2)
    _run(project, 5, "passed", 2)  # the same version failed, then passed: flaky
    BrowserRun.objects.create(project=project, versions={"login": 2})  # unfinished: not counted
    history = history_of(principal, test)
    assert [e.status for e in history.entries] == ["passed", "failed", "passed", "failed"]
    assert (history.pass_rate, history.flaky) == (50.0, True)

    stranger = Principal.of_user(make_user())
    with pytest.raises((Http404, PermissionDenied)):  # not a member: nothing is shown
        history_of(stranger, test)
