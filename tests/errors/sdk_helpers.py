"""Run the real sentry-sdk against a DSN, one isolated client per block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk


@contextmanager
def sentry_client(dsn: str, **options: Any) -> Iterator[None]:
    """Install a real sentry-sdk client for the block; flush and close it after.

    The block runs in fresh, empty isolation and current scopes: the SDK keeps scopes per
    process across ``init`` calls, so a tag, user or attachment one test set would otherwise
    ride on every later test's events in the same worker."""
    sentry_sdk.init(
        dsn=dsn,
        default_integrations=False,
        auto_enabling_integrations=False,
        traces_sample_rate=None,
        **options,
    )
    try:
        with sentry_sdk.isolation_scope() as isolation, sentry_sdk.new_scope() as current:
            isolation.clear()
            current.clear()
            yield
    finally:
        client = sentry_sdk.get_client()
        transport = client.transport
        client.flush(timeout=10)
        client.close(timeout=10)
        # close() stops the worker but keeps its keep-alive sockets: close them too, so the
        # server's request threads end now and not at interpreter exit.
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "clear"):
            pool.clear()
        sentry_sdk.init(dsn=None, default_integrations=False)
