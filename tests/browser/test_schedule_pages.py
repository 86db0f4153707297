"""The suite page's Schedules section: add, edit (bad input refused, nothing changed) and delete
a schedule; the next runs are shown in the schedule's time zone; viewers see, never change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bastion.browser import services
from bastion.browser.models import SuiteSchedule
from bastion.core.models import Role
from tests.factories import make_member, make_project
from tests.jobs.helpers import World
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db


def test_add_edit_and_delete_a_schedule_on_the_suite_page() -> None:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    services.save_test(world.principal, project, {"name": "home", "start_url": "/", "steps": []})
    services.create_environment(
        world.principal, project, slug="prod", name="Production", base_url="http://127.0.0.1:9"
    )
    services.create_suite(world.principal, project, slug="smoke", tests=["home"])
    kwargs = {"org": world.org.slug, "project": "shop", "suite": "smoke"}
    suite_url = reverse("web:browser-suite", kwargs=kwargs)
    client = login_client(world.owner)
    assert "Not scheduled" in client.get(suite_url).content.decode()

    form = {"cron": "15 6 * * 1", "timezone": "Asia/Tokyo", "environment": "prod", "enabled": "1"}
    added = client.post(reverse("web:browser-schedule-create", kwargs=kwargs), form)
    assert added.status_code == 302 and added["Location"] == suite_url
    row = SuiteSchedule.objects.select_related("schedule", "environment").get()
    assert (row.schedule.cron, row.schedule.timezone, row.environment.slug) == (
        "15 6 * * 1",
        "Asia/Tokyo",
        "prod",
    )
    page = client.get(suite_url).content.decode()
    assert "15 6 * * 1" in page and "Production" in page and page.count("Mon ") >= 3
    assert "06:15 JST" in page

    edit = reverse("web:browser-schedule-edit", kwargs={**kwargs, "suite_schedule_id": row.pk})
    refused = client.post(edit, {**form, "cron": "not cron"}, follow=True)
    assert "Schedule not saved" in refused.content.decode()
    row.schedule.refresh_from_db()
    assert row.schedule.cron == "15 6 * * 1"
    client.post(edit, {"cron": "0 */4 * * *", "timezone": "UTC", "environment": ""})
    row.refresh_from_db()
    row.schedule.refresh_from_db()
    assert (row.schedule.cron, row.schedule.enabled, row.environment_id) == (
        "0 */4 * * *",
        False,
        None,
    )

    viewer = login_client(make_member(world.org, Role.VIEWER))
    assert "0 */4 * * *" in viewer.get(suite_url).content.decode()
    assert viewer.post(edit, form).status_code == 403
    delete = reverse("web:browser-schedule-delete", kwargs={**kwargs, "suite_schedule_id": row.pk})
    assert viewer.post(delete).status_code == 403
    assert client.post(delete).status_code == 302
    assert not SuiteSchedule.objects.exists()
