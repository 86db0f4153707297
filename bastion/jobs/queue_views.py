"""The queue page (``/o/<org>/queues/``): what waits where, for how long, and who could take it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from bastion.core.models import Organization
from bastion.jobs.queues import WINDOW, queue_stats
from bastion.jobs.services import agents_for, jobs_for
from bastion.web.views._common import org_page, page, principal_of

POLL_S = 5


@org_page()
def queues(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    stats = queue_stats(jobs_for(principal, organization), agents_for(principal, organization))
    context = {"stats": stats, "window_min": int(WINDOW.total_seconds() // 60), "poll_s": POLL_S}
    return page(request, "jobs/queues.html", context, section="agents")
