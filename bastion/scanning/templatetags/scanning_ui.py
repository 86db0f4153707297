"""Small display helpers for the scanning pages."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString

from bastion.scanning import evidence
from bastion.scanning.models import Finding

register = template.Library()

SEVERITY_TONES = {
    "critical": "red",
    "high": "red",
    "medium": "amber",
    "low": "blue",
    "info": "grey",
}
STATE_TONES = {
    "new": "violet",
    "open": "amber",
    "reopened": "red",
    "fixed": "green",
    "queued": "grey",
    "running": "blue",
    "finished": "green",
    "failed": "red",
    "canceled": "grey",
}


@register.filter
def severity_tone(severity: str) -> str:
    return SEVERITY_TONES.get(severity, "grey")


@register.filter
def scan_tone(state: str) -> str:
    return STATE_TONES.get(state, "grey")


@register.simple_tag
def highlight_evidence(text: str, finding: Finding) -> SafeString:
    """``text`` (a request or response excerpt) with the finding's evidence marked."""
    return evidence.highlight(text, finding.evidence, finding.details)


@register.filter
def has_evidence_match(text: str, finding: Finding) -> bool:
    return evidence.needle_in(text, finding.evidence, finding.details) is not None
