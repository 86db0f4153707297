"""Email steps in real Chromium against the real SMTP sink: wait for a message to an address,
assert its subject and body, extract a code and a link, and open the link."""

from __future__ import annotations

import smtplib
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from bastion.browser.mail.sink import MailSink, read_mailbox
from tests.browser.conftest import Browser, explain, statuses

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sink() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    running = MailSink("127.0.0.1", port)
    running.start()
    yield port
    running.stop()


def _send_later(port: int, to: str, link: str) -> threading.Timer:
    """The application under test sends its confirmation a moment after the run started."""

    def send() -> None:
        message = EmailMessage()
        message["From"] = "app@example.test"
        message["To"] = to
        message["Subject"] = "Confirm your account"
        message.set_content(f"Your code is 482913.\nOr open {link} to confirm.\n")
        message.add_alternative(
            f'<p>Your code is <b>482913</b>. <a href="{link}">Confirm</a></p>', subtype="html"
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)

    timer = threading.Timer(0.7, send)
    timer.start()
    return timer


def test_wait_assert_extract_and_open_the_link(browser: Browser, sink: int) -> None:
    link = f"{browser.lab.url}/form?token=abc"
    timer = _send_later(sink, "Signup@Inbox.test", link)
    test = {
        "name": "confirm by email",
        "start_url": "/form",
        "steps": [
            {"wait_for_email": "signup@inbox.test", "timeout_ms": 15000},
            {"assert_email": "Confirm your account"},
            {"assert_email": "Your code is", "attribute": "body", "match": "contains"},
            {"store_email": "code", "attribute": "code"},
            {"store_email": "confirm", "attribute": "link", "value": "token="},
            {"assert_variable": "code", "value": "482913"},
            {"goto": "{{confirm}}"},
            {"assert_url": "token=abc", "match": "contains"},
            {"assert_email": "Welcome", "optional": True},
        ],
    }
    try:
        result = browser.run(test, mailbox=read_mailbox)
    finally:
        timer.join(timeout=10)
    assert result.passed, explain(result)
    assert statuses(result)[-1] == ("9", "assert_email", "failed")
    assert "email subject is 'Confirm your account'" in result.steps[-1].error


def test_no_email_in_time_and_no_mailbox_fail_with_a_reason(browser: Browser, sink: int) -> None:
    waits = {
        "name": "nothing arrives",
        "start_url": "/form",
        "steps": [{"wait_for_email": "nobody@inbox.test", "timeout_ms": 600}],
    }
    result = browser.run(waits, mailbox=read_mailbox)
    assert not result.passed
    assert result.steps[1].error == "no email to nobody@inbox.test within 600 ms"
    result = browser.run(waits)
    assert result.steps[1].error == "no mailbox is available to this run"
    early = {"name": "no wait", "start_url": "/form", "steps": [{"store_email": "x"}]}
    result = browser.run(early, mailbox=read_mailbox)
    assert result.steps[1].error == "no email yet: add a wait_for_email step first"
