"""What alert evaluation costs ingest: the same batches of prepared events (30 distinct issues,
64 events per batch, environment production) stored with ``store_batch`` with the alert hook
replaced by a no-op, then with the real hook and a webhook channel subscribed to ``errors.*``
(deliveries are queued as tasks, not sent). Each run stores into its own fresh project, so both
create their 30 issues. Fresh SQLite database in a temporary folder.

    .venv/bin/python bench/alerts.py [--batches 100]

Ends with ``RESULT alerts events_per_s_off=... events_per_s_on=... overhead_pct=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

BATCH = 64
ISSUES = 30


def _setup() -> None:
    os.environ["BASTION_DATA_DIR"] = tempfile.mkdtemp(prefix="bastion-bench-alerts-")
    os.environ.pop("BASTION_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bastion.settings"
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _writes(key: Any, count: int) -> list[Any]:
    from bastion.errors.ingest import prepare_event
    from bastion.errors.store import PendingWrite

    writes = []
    for n in range(count):
        payload = {
            "platform": "python",
            "level": "error",
            "environment": "production",
            "user": {"id": str(n % 50)},
            "exception": {
                "values": [
                    {
                        "type": f"Error{n % ISSUES}",
                        "value": f"failure {n}",
                        "stacktrace": {
                            "frames": [{"module": "shop.views", "function": "f", "in_app": True}]
                        },
                    }
                ]
            },
        }
        now = datetime.now(tz=UTC)
        event = prepare_event(json.dumps(payload).encode(), uuid.uuid4(), key, now, None)
        writes.append(PendingWrite(project_id=key.project_id, received_at=now, event=event))
    return writes


def _run(label: str, batches: int, hook_on: bool) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bastion.core import services
    from bastion.core.access import Principal
    from bastion.core.models import Organization
    from bastion.errors import alerts
    from bastion.errors.services import create_dsn_key
    from bastion.errors.store import store_batch

    principal = Principal.system("bench")
    org = Organization.objects.get(slug="bench")
    project = services.create_project(principal, org, slug=label, name=label)
    key = create_dsn_key(principal, project)
    writes = _writes(key, batches * BATCH)
    real_hook = alerts.after_store
    if not hook_on:
        alerts.after_store = lambda *args: None  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        for i in range(batches - 1):
            store_batch(writes[i * BATCH : (i + 1) * BATCH])
        with CaptureQueriesContext(connection) as last:
            store_batch(writes[(batches - 1) * BATCH :])
        elapsed = time.perf_counter() - started
    finally:
        alerts.after_store = real_hook
    return len(writes) / elapsed, len(last.captured_queries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args(argv)
    _setup()
    from bastion.core import services
    from bastion.core.access import Principal
    from bastion.core.notifications import create_channel
    from bastion.errors.models import Event

    principal = Principal.system("bench")
    org = services.create_organization(principal.actor, name="Bench", slug="bench", owner=None)
    create_channel(
        principal, org, name="hook", kind="webhook", target="http://127.0.0.1:9/hook",
        topics=["errors.*"], secret="bench-secret",
    )  # fmt: skip
    runs = {}
    for label, hook_on in (("off", False), ("on", True), ("off-again", False), ("on-again", True)):
        runs[label] = _run(label, args.batches, hook_on=hook_on)
    from bastion.core.models import NotificationDelivery

    print(f"{'alert hook':<12}{'events/s':>12}{'queries in a steady batch':>28}")
    for label, (rate, queries) in runs.items():
        print(f"{label:<12}{rate:>12.0f}{queries:>28}")
    off = (runs["off"][0] + runs["off-again"][0]) / 2
    on = (runs["on"][0] + runs["on-again"][0]) / 2
    overhead = 100.0 * (off - on) / off
    print(
        f"events stored: {Event.objects.count()}, alerts queued: {NotificationDelivery.objects.count()}"
    )
    print(
        f"RESULT alerts events_per_s_off={off:.0f} events_per_s_on={on:.0f} overhead_pct={overhead:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
