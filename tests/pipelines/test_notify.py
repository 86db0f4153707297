"""``notify:`` of pipelines and steps: parsed in Buildkite's forms, sent when the build (or step)
finishes through core notifications — email through the real SMTP sink, webhooks and Slack hooks
to a real loopback receiver — only when their ``if:`` holds, and what cannot be sent is written
on the build by name."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from bastion.browser.models import MailMessage
from bastion.core import notifications
from bastion.core.models import AuditEvent, NotificationChannel, NotificationDelivery
from bastion.pipelines import services
from bastion.pipelines.models import Annotation, BuildState
from bastion.pipelines.notices import MANAGED_PREFIX
from tests.errors.receivers import smtp_to_sink
from tests.jobs.helpers import World
from tests.pipelines.helpers import Runner, fresh, make_pipeline
from tests.receivers import webhook_receiver

pytestmark = pytest.mark.django_db


def _yaml(hook: str) -> str:
    return f"""
notify:
  - email: "dev@acme.test"
    if: build.state == "failed"
  - email: "happy@acme.test"
    if: build.state == "passed"
  - webhook: "{hook}"
  - slack: "#ops"
  - slack:
      channels: ["#nobody"]
  - github_commit_status:
      context: ci
steps:
  - command: exit 1
    key: tests
    notify:
      - webhook: "{hook}/step"
        if: step.state == "failed"
"""


# Committed transactions: the SMTP sink stores mail from its own thread and connection, which
# in-memory SQLite's shared cache would lock out of tables the test's open transaction wrote.
@pytest.mark.django_db(transaction=True)
def test_a_failed_build_notifies_its_file_and_subscribed_channels_once_each(
    world: World, runner: Runner
) -> None:
    with webhook_receiver() as receiver, smtp_to_sink():
        # An org Slack-compatible channel named "ops", also subscribed to failed builds: the
        # file's `slack: "#ops"` and the subscription send it one message, not two.
        notifications.create_channel(
            world.principal, world.org, name="ops", kind="slack", target=receiver.url + "/ops",
            topics=["pipelines.build.failed"],
        )  # fmt: skip
        pipeline = make_pipeline(world, _yaml(receiver.url))
        assert "not supported" in " ".join(services.check_yaml(pipeline.yaml).warnings)
        build = services.create_build(world.principal, pipeline, message="nightly")
        runner.run(exit_status=1)
        assert fresh(build).state == BuildState.FAILED
        received = receiver.wait_for(3)
    by_path = {r.path: r for r in received}
    assert sorted(by_path) == ["/hook", "/hook/ops", "/hook/step"]
    assert len(received) == 3
    hook = by_path["/hook"]
    assert hook.headers["x-bastion-event"] == "pipelines.build.failed"
    body = hook.json
    assert body["data"]["state"] == "failed" and body["data"]["failed_steps"] == ["tests"]
    assert body["url"].endswith(f"/o/{world.org.slug}/pipelines/app/builds/1/")
    assert body["subject"] == "Build app#1 failed: nightly"
    assert by_path["/hook/step"].json["topic"] == "pipelines.step.failed"
    assert "app#1 failed" in json.loads(by_path["/hook/ops"].body)["text"]
    (mail,) = MailMessage.objects.all()
    assert mail.recipients == ["dev@acme.test"]  # not happy@: its `if` is false
    assert mail.subject == "[Bastion] Build app#1 failed: nightly"
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"sent"}
    # What could not be sent is on the build, by name.
    note = Annotation.objects.get(build=build, context="notify")
    assert "`github_commit_status` notifications are not supported" in note.body
    assert "slack #nobody: no Slack-compatible channel" in note.body
    # The file's email and webhook targets that applied became channels the pipeline manages,
    # audited (happy@'s `if` never held: no channel for it).
    managed = NotificationChannel.objects.filter(name__startswith=MANAGED_PREFIX)
    assert sorted(managed.values_list("kind", flat=True)) == ["email", "webhook", "webhook"]
    assert AuditEvent.objects.filter(action="notification_channel.create").count() == 4


@pytest.mark.django_db(transaction=True)
def test_a_passed_build_sends_only_what_applies_and_a_disabled_target_stays_quiet(
    world: World, runner: Runner
) -> None:
    with webhook_receiver() as receiver, smtp_to_sink():
        yaml = f"""
notify:
  - email: "happy@acme.test"
    if: build.state == "passed"
  - webhook: "{receiver.url}"
    if: build.state != "passed"
steps:
  - command: "true"
"""
        pipeline = make_pipeline(world, yaml)
        services.create_build(world.principal, pipeline)
        runner.run(exit_status=0)
        assert receiver.wait_for(1, timeout_s=0.5) == []
        (mail,) = MailMessage.objects.all()
        assert mail.recipients == ["happy@acme.test"]
        assert mail.subject == "[Bastion] Build app#1 passed"
        # An administrator disables the managed channel: the next build sends nothing.
        channel = NotificationChannel.objects.get(kind="email")
        notifications.set_channel_enabled(world.principal, channel, False)
        services.create_build(world.principal, pipeline)
        runner.run(exit_status=0)
        assert MailMessage.objects.count() == 1


def test_an_if_that_fails_at_run_time_is_reported_and_the_build_still_finishes(
    world: World, runner: Runner
) -> None:
    yaml = 'notify:\n  - email: "a@acme.test"\n    if: build.branch =~ "main"\nsteps:\n  - command: x\n'
    build = services.create_build(world.principal, make_pipeline(world, yaml))
    runner.run(exit_status=0)
    assert fresh(build).state == BuildState.PASSED
    note = Annotation.objects.get(build=build, context="notify")
    assert "its `if` cannot be evaluated" in note.body
    assert not NotificationDelivery.objects.exists()


@pytest.mark.parametrize(
    ("notify", "problem"),
    [
        ('- email: "not-an-address"', "is not an email address"),
        ('- webhook: "ftp://example.test/x"', "is not an http(s) URL"),
        ('- slack: "ops channel"', 'neither "#channel" nor a hook URL'),
        ('- email: "a@b.test"\n    if: "build.state =="', "`if` does not parse"),
    ],
)
def test_bad_notify_entries_are_refused_by_name(world: World, notify: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_pipeline(world, f"notify:\n  {notify}\nsteps:\n  - command: x\n")
    assert problem in " ".join(caught.value.message_dict["yaml"])
