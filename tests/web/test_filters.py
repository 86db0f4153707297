"""Presentation filters: relative times, badge tones, audit change summaries."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from bastion.web.templatetags.bastion_ui import ago, changes_text, seconds_ago, tag_items, tone


def test_relative_times() -> None:
    now = timezone.now()
    assert ago(None) == "never"
    assert ago(now) == "just now"
    assert ago(now - timedelta(seconds=42)) == "42 s ago"
    assert ago(now - timedelta(minutes=5, seconds=3)) == "5 min ago"
    assert ago(now - timedelta(hours=3)) == "3 h ago"
    assert ago(now - timedelta(days=2, hours=1)) == "2 d ago"
    assert ago(now + timedelta(days=6, hours=23)) == "in 6 d"
    assert seconds_ago(3) == "3 s ago" and seconds_ago(-1) == "0 s ago"


def test_tones_tags_and_changes() -> None:
    assert tone("lost") == "red" and tone("idle") == "green" and tone("whatever") == "grey"
    assert tag_items({"queue": "deploy", "os": "linux"}) == ["os=linux", "queue=deploy"]
    assert tag_items(None) == []
    assert changes_text({"role": {"before": "member", "after": "admin"}}) == "role: member → admin"
    assert changes_text({"name": "x", "n": 1}) == "name: x; n: 1"
    assert changes_text({}) == ""
