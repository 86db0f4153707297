"""Lightning: safe, non-intrusive, about a minute at most. No attack payloads, only inert
canaries; GET/HEAD/OPTIONS/TRACE only; the landing page and the pages it links to."""

from __future__ import annotations

from bastion.scanning.engine.context import LinkExplorer
from bastion.scanning.engine.http import HttpLimits
from bastion.scanning.engine.profiles import Profile

PROFILE = Profile(
    name="lightning",
    description="TLS, headers, cookies, CORS, exposed files and quick canary probes; under 60 s",
    explorer=lambda: LinkExplorer(max_pages=20),
    limits=HttpLimits(
        connect_timeout_s=5.0,
        read_timeout_s=8.0,
        request_total_s=15.0,
        max_body_bytes=2_000_000,
        max_redirects=5,
        max_requests=400,
        rate_per_s=0.0,
        concurrency=8,
    ),
    time_budget_s=60.0,
    check_time_budget_s=45.0,
    check_concurrency=8,
)
