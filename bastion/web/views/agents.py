"""Agents (live state, polled by htmx), recent jobs, and a job's detail with its log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from bastion.core.access import Principal
from bastion.core.models import Organization, Role
from bastion.jobs.log_render import render_log
from bastion.jobs.models import Agent, Job, JobLogChunk
from bastion.jobs.services import agents_for, get_job_for, jobs_for
from bastion.web.views._common import org_action, org_page, page, principal_of

# The page shows the tail of very long logs; the full log stays available to the API.
LOG_TAIL_CHUNKS = 2000
AGENT_POLL_S = 3
LOG_POLL_S = 2


@dataclass(frozen=True)
class AgentRow:
    agent: Agent
    heartbeat_age_s: int


def _age_s(moment: datetime | None, now: datetime) -> int:
    return max(0, int((now - moment).total_seconds())) if moment else 0


def _agent_rows(principal: Principal, organization: Organization) -> list[AgentRow]:
    now = timezone.now()
    agents = agents_for(principal, organization).order_by("cluster__name", "name")
    return [AgentRow(agent, _age_s(agent.last_heartbeat_at, now)) for agent in agents]


@org_page()
def agents(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    context = {
        "rows": _agent_rows(principal, organization),
        "recent_jobs": list(jobs_for(principal, organization).order_by("-created_at")[:25]),
        "poll_s": AGENT_POLL_S,
    }
    return page(request, "web/agents/index.html", context, section="agents")


@org_page()
def agents_live(request: HttpRequest, organization: Organization) -> HttpResponse:
    principal = principal_of(request)
    context = {
        "rows": _agent_rows(principal, organization),
        "recent_jobs": list(jobs_for(principal, organization).order_by("-created_at")[:25]),
        "poll_s": AGENT_POLL_S,
    }
    return page(request, "web/agents/_live.html", context, section="agents")


def _job_in(request: HttpRequest, organization: Organization, job_id: int) -> Job:
    job = get_job_for(principal_of(request), job_id)
    if job.organization_id != organization.pk:
        raise Http404("No such job.")
    return job


def _log_context(job: Job) -> dict[str, object]:
    # One chunk more than shown tells whether the log is longer, without a count per refresh.
    newest = JobLogChunk.objects.filter(job=job).order_by("-seq").values_list("data", flat=True)
    chunks = list(newest[: LOG_TAIL_CHUNKS + 1])
    log = "".join(reversed(chunks[:LOG_TAIL_CHUNKS]))
    return {
        "job": job,
        "log_sections": render_log(log) if log else [],
        "log_is_tail": len(chunks) > LOG_TAIL_CHUNKS,
        "poll_s": LOG_POLL_S,
    }


@org_page()
def job_detail(request: HttpRequest, organization: Organization, job_id: int) -> HttpResponse:
    job = _job_in(request, organization, job_id)
    context = _log_context(job)
    context["artifacts"] = list(job.artifacts.order_by("path"))
    return page(request, "web/agents/job.html", context, section="agents")


@org_page()
def job_log(request: HttpRequest, organization: Organization, job_id: int) -> HttpResponse:
    job = _job_in(request, organization, job_id)
    return page(request, "web/agents/_job_live.html", _log_context(job), section="agents")


@org_action(Role.MEMBER)
def job_cancel(request: HttpRequest, organization: Organization, job_id: int) -> HttpResponse:
    job = _job_in(request, organization, job_id)
    from bastion.jobs import dispatch  # written alongside; imported when first needed

    if job.is_finished:
        messages.info(request, f"Job {job.pk} had already finished ({job.get_state_display()}).")
    else:
        try:
            dispatch.cancel_job(principal_of(request), job)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Cancellation of job {job.pk} requested.")
    return redirect("web:job", org=organization.slug, job_id=job.pk)
