"""The agent API under /api/v1/agent/: register, poll, accept, heartbeat, log, finish, artifacts."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["agent"], auth=None)
