"""Reads of the deploys the error tracker knows (``Deploy`` rows, written by
``services.record_deploy``): the project page's recent deploys, and where an issue resolved
"in the next release" stands."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from bastion.core.models import Project
from bastion.errors.models import Deploy, Issue, IssueStatus, Resolution

RECENT = 10


def recent_deploys(project: Project, limit: int = RECENT) -> QuerySet[Deploy]:
    return Deploy.objects.filter(project=project).order_by("-deployed_at", "-pk")[:limit]


@dataclass(frozen=True)
class NextRelease:
    """For an issue resolved in the next release: the deploy that shipped it, if one did, and
    the last deploy before the resolution (the release still expected to show the error)."""

    shipped: Deploy | None
    previous: Deploy | None


def next_release(issue: Issue) -> NextRelease | None:
    if issue.status != IssueStatus.RESOLVED or issue.resolution != Resolution.NEXT_RELEASE:
        return None
    since = issue.status_changed_at
    if since is None:
        return NextRelease(None, None)
    deploys = Deploy.objects.filter(project_id=issue.project_id)
    shipped = (
        deploys.filter(deployed_at__gte=since)
        .exclude(release__in=issue.releases)
        .order_by("deployed_at", "pk")
        .first()
    )
    previous = deploys.filter(deployed_at__lt=since).order_by("-deployed_at", "-pk").first()
    return NextRelease(shipped, previous)


def release_deploys(issue: Issue) -> list[tuple[str, Deploy | None]]:
    """Each release the issue was seen in, with its first deploy if one is known."""
    first: dict[str, Deploy] = {}
    rows = Deploy.objects.filter(project_id=issue.project_id, release__in=issue.releases[:100])
    for deploy in rows.order_by("deployed_at", "pk"):
        first.setdefault(deploy.release, deploy)
    return [(release, first.get(release)) for release in issue.releases]
