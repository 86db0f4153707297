"""Run the real sentry-sdk against a DSN, one isolated client per block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sentry_sdk


@contextmanager
def sentry_client(dsn: str, **options: Any) -> Iterator[None]:
    """Install a real sentry-sdk client for the block; flush and close it after."""
    sentry_sdk.init(
        dsn=dsn,
        default_integrations=False,
        auto_enabling_integrations=False,
        traces_sample_rate=None,
        **options,
    )
    try:
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
