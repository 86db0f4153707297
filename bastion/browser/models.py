"""Browser testing. For now: the messages caught by the built-in SMTP sink (the fake inbox)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class MailMessage(models.Model):
    """One message delivered to the SMTP sink, as received (raw) plus the fields we search on."""

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    mail_from = models.CharField(max_length=320, blank=True, default="")
    recipients = models.JSONField(default=list)
    # First recipient, lower-cased: the inbox the message is filed under.
    inbox = models.CharField(max_length=320, db_index=True)
    subject = models.CharField(max_length=998, blank=True, default="")
    message_id = models.CharField(max_length=998, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    raw = models.BinaryField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.subject!r} to {self.inbox}"
