"""The SMTP sink: every address at any domain is an inbox; messages are stored, never relayed.

Bastion's own notifications land here on a single machine, and browser tests read the
messages their runs trigger (sign-up confirmations, password resets) from it.
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bastion.browser.mail.addresses import token_of, tokens_of
from bastion.browser.models import MailMessage, MailToken
from bastion.browser.runner.mailbox import Email

logger = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def _header(value: object, limit: int = 998) -> str:
    return str(value or "")[:limit]


def store_message(mail_from: str, recipients: list[str], raw: bytes) -> MailMessage:
    """Parse just enough of the message to index it, and keep the raw bytes."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        message = _create(mail_from, recipients, raw, parsed)
    finally:
        # The sink's worker threads outlive requests: do not leave their connections open
        # (a caller on the main thread keeps its own, and may be inside a transaction).
        if threading.current_thread() is not threading.main_thread():
            connection.close()
    logger.info("mail sink stored message %s for %s", message.pk, message.inbox)
    return message


def _owner(recipients: list[str]) -> MailToken | None:
    """The run whose address is among the recipients (the first one), if any."""
    tokens = tokens_of(recipients, settings.CONFIG.mail_domain)
    if not tokens:
        return None
    found = {
        t.token: t
        for t in MailToken.objects.filter(token__in=tokens).select_related("run__project")
    }
    return next((found[t] for t in tokens if t in found), None)


def _create(
    mail_from: str, recipients: list[str], raw: bytes, parsed: email.message.Message
) -> MailMessage:
    owner = _owner(recipients)
    # Filed under the run's address when it has one, else under the first recipient.
    inbox = next(
        (
            r
            for r in recipients
            if owner is not None and token_of(r, settings.CONFIG.mail_domain) == owner.token
        ),
        recipients[0] if recipients else "",
    )
    return MailMessage.objects.create(
        organization_id=owner.run.project.organization_id if owner is not None else None,
        run=owner.run if owner is not None else None,
        mail_from=mail_from[:320],
        recipients=[r.lower() for r in recipients],
        inbox=inbox.lower()[:320],
        subject=_header(parsed.get("Subject")),
        message_id=_header(parsed.get("Message-ID")),
        size=len(raw),
        raw=raw,
    )


def prune_messages(retention_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted, _ = MailMessage.objects.filter(received_at__lt=cutoff).delete()
    return deleted


class SinkHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        await sync_to_async(store_message, thread_sensitive=False)(
            str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos], raw
        )
        return "250 Message accepted for delivery"


@dataclass
class MailSink:
    host: str
    port: int
    controller: Controller | None = None

    def start(self) -> int:
        """Start listening in a background thread (aiosmtpd needs a fixed port, not 0)."""
        self.controller = Controller(
            SinkHandler(),
            hostname=self.host,
            port=self.port,
            data_size_limit=MAX_MESSAGE_BYTES,
            ready_timeout=10,
        )
        self.controller.start()
        return self.port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def serve_forever(host: str, port: int, stop: threading.Event) -> None:
    sink = MailSink(host, port)
    bound = sink.start()
    logger.info("mail sink listening on %s:%s", host, bound)
    try:
        stop.wait()
    finally:
        sink.stop()


# -- reading (what email steps see) -----------------------------------------------------------
READ_LIMIT = 20


def _parts(parsed: email.message.EmailMessage) -> tuple[str, str]:
    text = html = ""
    for kind in ("plain", "html"):
        part = parsed.get_body(preferencelist=(kind,))
        if part is not None and part.get_content_type() == f"text/{kind}":
            try:
                content = str(part.get_content())
            except (LookupError, UnicodeDecodeError):
                content = part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]
            if kind == "plain":
                text = content
            else:
                html = content
    return text, html


def to_email(message: MailMessage) -> Email:
    parsed = email.message_from_bytes(bytes(message.raw), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    text, html = _parts(parsed)
    return Email(
        to=message.inbox,
        mail_from=message.mail_from,
        subject=message.subject,
        text=text,
        html=html,
        received_at=message.received_at.timestamp(),
    )


def read_mailbox(address: str, since: float) -> list[Email]:
    """The messages filed under ``address`` received after ``since`` (epoch s), newest first;
    a ``Mailbox`` for the browser runner. Safe to call from worker threads."""
    cutoff = datetime.fromtimestamp(since, tz=UTC)
    try:
        rows = list(
            MailMessage.objects.filter(inbox=address.lower(), received_at__gte=cutoff).order_by(
                "-received_at"
            )[:READ_LIMIT]
        )
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()
    return [to_email(row) for row in rows]
