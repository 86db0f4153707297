"""Build envelopes and events by hand for protocol tests."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bastion.errors.envelope import serialize_envelope


def event_payload(**fields: Any) -> dict[str, Any]:
    return {
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": "bad value 12",
                    "stacktrace": {
                        "frames": [
                            {
                                "module": "shop.views",
                                "function": "checkout",
                                "lineno": 10,
                                "in_app": True,
                            }
                        ]
                    },
                }
            ]
        },
        **fields,
    }


def envelope(
    payload: dict[str, Any] | None = None,
    event_id: str | None = None,
    extra_items: list[tuple[dict[str, Any], bytes]] | None = None,
    **headers: Any,
) -> tuple[str, bytes]:
    event_id = event_id or uuid.uuid4().hex
    items: list[tuple[dict[str, Any], bytes]] = []
    if payload is not None:
        items.append(({"type": "event"}, json.dumps(payload).encode()))
    items.extend(extra_items or [])
    return event_id, serialize_envelope({"event_id": event_id, **headers}, items)


def send_event(client: Any, setup: Any, **fields: Any) -> str:
    """Post one event (``event_payload(**fields)``) through the envelope endpoint; its id."""
    event_id, body = envelope(event_payload(**fields))
    response = client.generic(
        "POST",
        f"/api/{setup.project.pk}/envelope/",
        body,
        content_type="application/x-sentry-envelope",
        headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={setup.public_key}"},
    )
    assert response.status_code == 200, response.content
    return event_id
