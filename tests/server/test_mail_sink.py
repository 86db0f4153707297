"""The SMTP sink receives real SMTP and files each message under its first recipient."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

import pytest

from bastion.browser.mail.sink import MailSink, prune_messages
from bastion.browser.models import MailMessage


@pytest.mark.django_db(transaction=True)
def test_messages_sent_over_smtp_are_stored_and_pruned() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = MailSink("127.0.0.1", port)
    sink.start()
    try:
        message = EmailMessage()
        message["From"] = "app@example.test"
        message["To"] = "Signup-7@inbox.bastion.test"
        message["Subject"] = "Confirm your account"
        message.set_content("Open https://127.0.0.1/confirm?code=123456")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
    finally:
        sink.stop()
    stored = MailMessage.objects.get()
    assert stored.inbox == "signup-7@inbox.bastion.test"
    assert stored.subject == "Confirm your account"
    assert b"code=123456" in bytes(stored.raw)
    assert prune_messages(retention_days=1) == 0
    MailMessage.objects.update(received_at=stored.received_at.replace(year=2020))
    assert prune_messages(retention_days=1) == 1
