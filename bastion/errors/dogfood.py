"""Dogfood: Bastion reports its own unhandled server exceptions to one of its own projects.

One setting, ``BASTION_DOGFOOD_DSN`` (the DSN ``bastion project dsn ORG/PROJECT`` prints, or
another Bastion's), turns on the real sentry-sdk with its Django integration in every process
that loads Django (web, worker, scheduler).

Loop guard: an exception raised while Bastion ingests an event must not be reported to the
same ingest, which might fail again, and so on. ``guard`` drops every event that comes from
the ingest path (the request was ``/api/<id>/envelope/`` or ``/store/``, a frame or the logger
is one of the ingest modules), and a per-process budget caps what is sent at all.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from sentry_sdk._types import Event

logger = logging.getLogger(__name__)

INGEST_PATH = re.compile(r"/api/[^/]+/(?:envelope|store)/?$")
INGEST_MODULES = (
    "bastion.errors.ingest",
    "bastion.errors.store",
    "bastion.errors.committer",
    "bastion.errors.envelope",
    "bastion.errors.encoding",
    "bastion.errors.normalize",
    "bastion.errors.scrubbing",
    "bastion.errors.grouping",
    "bastion.errors.auth",
    "bastion.errors.views",
    "bastion.errors.wsgi_shortcut",
    "bastion.errors.journal",
    "bastion.errors.alerts",
    "sentry_sdk",
)
EVENTS_PER_MINUTE = 60


class Budget:
    """At most ``limit`` events per minute from this process (a fixed one-minute window)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.dropped = 0
        self._lock = threading.Lock()
        self._window = 0
        self._count = 0

    def take(self, now: float | None = None) -> bool:
        window = int((time.time() if now is None else now) // 60)
        with self._lock:
            if window != self._window:
                self._window, self._count = window, 0
            if self._count >= self.limit:
                self.dropped += 1
                return False
            self._count += 1
            return True


budget = Budget(EVENTS_PER_MINUTE)


def _request_path(event: dict[str, Any]) -> str:
    request = event.get("request")
    url = request.get("url") if isinstance(request, dict) else None
    return str(url or "").split("?", 1)[0]


def _modules(event: dict[str, Any]) -> list[str]:
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    modules = []
    for value in values or []:
        frames = ((value or {}).get("stacktrace") or {}).get("frames") or []
        modules += [str(frame.get("module") or "") for frame in frames if isinstance(frame, dict)]
    return modules


def from_ingest(event: dict[str, Any]) -> bool:
    """Whether the event was raised (or logged) on the ingest path."""
    if INGEST_PATH.search(_request_path(event)):
        return True
    names = [*_modules(event), str(event.get("logger") or "")]
    return any(name.startswith(INGEST_MODULES) for name in names if name)


def guard(event: Event, hint: dict[str, Any]) -> Event | None:
    """sentry-sdk's ``before_send``: drop events of the ingest path and those over budget."""
    if from_ingest(cast(dict[str, Any], event)):
        return None
    if not budget.take():
        return None
    return event


def _release() -> str:
    try:
        return f"bastion@{metadata.version('bastion')}"
    except metadata.PackageNotFoundError:
        return "bastion@dev"


def private_sdk_options() -> dict[str, Any]:
    """``sentry_sdk.init`` options that keep local variables, cookies, user data and bodies out of
    events, for SDK 2.x (``send_default_pii``, ``include_local_variables``) and 3.x, which replaced
    both with ``data_collection``. Locals may hold secrets; server-side scrubbing is a second line."""
    import sentry_sdk

    if int(sentry_sdk.VERSION.split(".", 1)[0]) < 3:
        return {"send_default_pii": False, "include_local_variables": False}
    return {
        "data_collection": {
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_bodies": [],
            "stack_frame_variables": False,
        }
    }


def setup(dsn: str) -> bool:
    """Start reporting to ``dsn`` (nothing when it is empty); whether reporting is on."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[
            DjangoIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        auto_enabling_integrations=False,
        traces_sample_rate=None,
        # Only errors: a server has no release-health sessions, and client reports would be
        # one more ingest request per process for nothing.
        send_client_reports=False,
        auto_session_tracking=False,
        before_send=guard,
        **private_sdk_options(),
        release=_release(),
    )
    logger.info("reporting server exceptions to the dogfood project")
    return True
