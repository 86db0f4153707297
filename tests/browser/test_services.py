"""Stored tests, environments and baselines: validation, scoping, audit, on the real database."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from PIL import Image

from bastion.browser import services
from bastion.browser.diff import Region
from bastion.browser.models import Baseline, StoredTest
from bastion.core.access import Principal
from bastion.core.models import AuditEvent, Role
from tests.factories import make_member, make_org, make_project, make_user

pytestmark = pytest.mark.django_db

LOGIN = {
    "name": "Login",
    "import_only": True,
    "steps": [{"goto": "/login"}, {"type": "#username", "value": "{{user}}"}],
}
CHECKOUT = {
    "name": "Checkout",
    "start_url": "/",
    "steps": [{"module": "login", "params": {"user": "ada"}}, {"click": "#buy"}],
}


def _png(color: str = "#3366cc", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def setup() -> tuple[Principal, object]:
    owner = make_user()
    org = make_org(owner)
    return Principal.of_user(owner), make_project(org)


def test_save_validates_versions_and_audits(setup: tuple[Principal, object]) -> None:
    principal, project = setup
    login = services.save_test(principal, project, LOGIN)
    assert (login.slug, login.version, login.import_only) == ("login", 1, True)
    checkout = services.save_test(principal, project, CHECKOUT)
    again = services.save_test(
        principal,
        project,
        {**CHECKOUT, "steps": [*CHECKOUT["steps"], {"log": "x"}]},
        slug="checkout",
    )
    assert again.pk == checkout.pk and again.version == 2
    actions = list(
        AuditEvent.objects.filter(action__startswith="browser.test").values_list(
            "action", "object_id"
        )
    )
    assert actions == [
        ("browser.test.create", str(login.pk)),
        ("browser.test.create", str(checkout.pk)),
        ("browser.test.update", str(checkout.pk)),
    ]
    assert [t.slug for t in services.tests_using_module(principal, login)] == ["checkout"]
    services.save_test(principal, project, {"name": "Nightly", "steps": [{"module": "checkout"}]})
    assert [t.slug for t in services.tests_using_module(principal, login)] == [
        "checkout",
        "nightly",
    ]


def test_invalid_definitions_change_nothing(setup: tuple[Principal, object]) -> None:
    principal, project = setup
    with pytest.raises(ValidationError) as bad_step:
        services.save_test(
            principal, project, {"name": "Bad", "steps": [{"action": "click", "name": "Buy"}]}
        )
    assert bad_step.value.message_dict["definition"] == [
        'step 1 "Buy" (click): field "target": required'
    ]
    with pytest.raises(ValidationError) as missing:
        services.save_test(principal, project, CHECKOUT)
    assert "module 'login' is not a test of project" in missing.value.message_dict["definition"][0]
    services.save_test(principal, project, {"name": "A", "steps": [{"log": "x"}]})
    services.save_test(principal, project, {"name": "B", "steps": [{"module": "a"}]})
    with pytest.raises(ValidationError, match="import cycle"):
        services.save_test(principal, project, {"name": "A", "steps": [{"module": "b"}]}, slug="a")
    assert StoredTest.objects.get(slug="a").version == 1
    assert StoredTest.objects.count() == 2


def test_reads_are_scoped_and_writes_need_a_role(setup: tuple[Principal, object]) -> None:
    principal, project = setup
    services.save_test(principal, project, LOGIN)
    stranger = Principal.of_user(make_user())
    with pytest.raises(Http404):
        services.get_test_for(stranger, project, "login")
    other_owner = make_user()
    other_project = make_project(make_org(other_owner))
    with pytest.raises(Http404):
        services.get_test_for(Principal.of_user(other_owner), project, "login")
    assert not services.tests_for(Principal.of_user(other_owner), other_project).exists()
    viewer = Principal.of_user(make_member(project.organization, Role.VIEWER))
    assert services.get_test_for(viewer, project, "login").slug == "login"
    with pytest.raises(PermissionDenied):
        services.save_test(viewer, project, LOGIN)
    member = Principal.of_user(make_member(project.organization, Role.MEMBER))
    with pytest.raises(PermissionDenied):
        services.create_environment(
            member, project, slug="prod", name="Prod", base_url="https://example.test"
        )


def test_environment_audit_names_variables_but_not_values(setup: tuple[Principal, object]) -> None:
    principal, project = setup
    env = services.create_environment(
        principal,
        project,
        slug="staging",
        name="Staging",
        base_url="https://staging.example.test",
        variables={"token": "abc-secret"},
    )
    row = AuditEvent.objects.get(action="browser.environment.create")
    assert row.changes["variables"] == ["token"] and "abc-secret" not in str(row.changes)
    assert list(services.environments_for(principal, project)) == [env]
    with pytest.raises(ValidationError):
        services.create_environment(principal, project, slug="bad", name="Bad", base_url="ftp://x")


def test_accepting_a_baseline_replaces_the_old_one_and_compares(
    setup: tuple[Principal, object],
) -> None:
    principal, project = setup
    test = services.save_test(principal, project, CHECKOUT | {"steps": [{"click": "#buy"}]})
    env = services.create_environment(
        principal, project, slug="staging", name="Staging", base_url="https://s.example.test"
    )
    first = services.accept_baseline(principal, test, _png(), environment=env)
    assert (first.viewport_width, first.viewport_height, first.name) == (64, 48, "final")
    second = services.accept_baseline(principal, test, _png("#cc3333"), environment=env)
    assert list(services.baselines_for(principal, test)) == [second]
    assert not Baseline.objects.filter(pk=first.pk).exists()
    row = AuditEvent.objects.filter(action="browser.baseline.accept").order_by("-seq").first()
    assert row is not None and row.changes["sha256"] == [first.sha256, second.sha256]
    same = services.compare_with_baseline(second, _png("#cc3333"))
    assert same.passed and same.changed_pixels == 0
    changed = services.compare_with_baseline(second, _png("#3366cc"))
    assert not changed.passed and changed.changed_pixels == 64 * 48
    masked = services.compare_with_baseline(second, _png("#3366cc"), exclude=[Region(0, 0, 64, 48)])
    assert masked.changed_pixels == 0
    with pytest.raises(ValidationError):
        services.accept_baseline(principal, test, b"not an image")
    viewer = Principal.of_user(make_member(project.organization, Role.VIEWER))
    with pytest.raises(PermissionDenied):
        services.accept_baseline(viewer, test, _png())
