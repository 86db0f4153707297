"""Clusters, queues, agent tokens, agents and jobs over /api/v1/ (for people and API tokens)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["jobs"])
