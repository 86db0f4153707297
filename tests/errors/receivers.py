"""Alert receivers for the errors tests, on top of the shared loopback receivers
(``tests.receivers``): webhook requests by path, and Django's SMTP backend pointed at the sink."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import override_settings

from tests.receivers import Received, WebhookReceiver, smtp_sink, webhook_receiver

__all__ = ["WebhookReceiver", "hook_url", "received_at", "smtp_to_sink", "webhook_receiver"]


def hook_url(receiver: WebhookReceiver, path: str) -> str:
    return f"http://127.0.0.1:{receiver.port}{path}"


def received_at(receiver: WebhookReceiver, path: str) -> list[Received]:
    return [r for r in receiver.requests if r.path == path]


@contextmanager
def smtp_to_sink() -> Iterator[int]:
    """Bastion's SMTP sink on a free loopback port, and Django sending real SMTP to it."""
    with (
        smtp_sink() as port,
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
        ),
    ):
        yield port
