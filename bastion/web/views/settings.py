"""Organization settings: projects, members and invitations, API tokens, clusters."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from bastion.core import services
from bastion.core.access import api_tokens_for, members_for, projects_for
from bastion.core.models import Invitation, Membership, Organization, Role, role_at_least
from bastion.jobs import services as jobs
from bastion.jobs.models import Cluster
from bastion.web.forms import (
    AgentTokenForm,
    ApiTokenForm,
    ClusterForm,
    InviteForm,
    OrganizationNameForm,
    ProjectForm,
    QueueForm,
    RoleForm,
    expiry_from_days,
)
from bastion.web.views._common import (
    apply_errors,
    can,
    no_store,
    org_action,
    org_page,
    page,
    principal_of,
)

# --- organization and projects ------------------------------------------------------------------


def _general(
    request: HttpRequest,
    organization: Organization,
    form: ProjectForm,
    status: int = 200,
    org_form: OrganizationNameForm | None = None,
) -> HttpResponse:
    context = {
        "projects": list(projects_for(principal_of(request), organization)),
        "form": form,
        "org_form": org_form or OrganizationNameForm(initial={"name": organization.name}),
        "tab": "general",
    }
    return page(request, "web/settings/general.html", context, section="settings", status=status)


@org_page()
def general(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _general(request, organization, ProjectForm())


@org_action(Role.ADMIN)
def organization_rename(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = OrganizationNameForm(request.POST)
    if form.is_valid():
        try:
            services.rename_organization(
                principal_of(request), organization, name=form.cleaned_data["name"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Organization renamed to {organization.name}.")
            return redirect("web:settings", org=organization.slug)
    return _general(request, organization, ProjectForm(), status=400, org_form=form)


@org_action(Role.ADMIN)
def project_create(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ProjectForm(request.POST)
    if form.is_valid():
        try:
            project = services.create_project(
                principal_of(request),
                organization,
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Project {project.name} created.")
            return redirect("web:settings", org=organization.slug)
    return _general(request, organization, form, status=400)


# --- members and invitations -------------------------------------------------------------------


def _members(
    request: HttpRequest,
    organization: Organization,
    form: InviteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    principal = principal_of(request)
    invitations: list[Invitation] = []
    if can(request, Role.ADMIN):
        invitations = [
            invitation
            for invitation in Invitation.objects.filter(
                organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
            ).order_by("-created_at")
            if invitation.is_pending
        ]
    own = getattr(request, "bastion_role", None) or Role.VIEWER
    members = list(members_for(principal, organization))
    grantable = [(value, label) for value, label in Role.choices if role_at_least(own, value)]
    form = form or InviteForm()
    form.fields["role"].choices = grantable  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "members": members,
        # Admins manage people up to their own rank; the actions enforce it either way.
        "manageable": {m.pk for m in members if role_at_least(own, m.role)},
        "invitations": invitations,
        "form": form,
        "roles": grantable,
        "tab": "members",
    }
    return page(request, "web/settings/members.html", context, section="settings", status=status)


@org_page()
def members(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _members(request, organization)


@org_action(Role.ADMIN)
def invite(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            issued = services.invite_member(
                principal_of(request),
                organization,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(
                request,
                f"Invitation emailed to {issued.invitation.email} as "
                f"{issued.invitation.get_role_display().lower()}. The link is valid for 7 days.",
            )
            return redirect("web:members", org=organization.slug)
    return _members(request, organization, form, status=400)


def _membership(request: HttpRequest, organization: Organization, membership_id: int) -> Membership:
    membership = members_for(principal_of(request), organization).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member.")
    return membership


@org_action(Role.ADMIN)
def member_role(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    membership = _membership(request, organization, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the roles in the list.")
        return _members(request, organization, status=400)
    try:
        services.change_member_role(principal_of(request), membership, form.cleaned_data["role"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _members(request, organization, status=400)
    messages.success(
        request, f"{membership.user.username} is now {membership.get_role_display().lower()}."
    )
    return redirect("web:members", org=organization.slug)


@org_action(Role.ADMIN)
def member_remove(
    request: HttpRequest, organization: Organization, membership_id: int
) -> HttpResponse:
    membership = _membership(request, organization, membership_id)
    try:
        services.remove_member(principal_of(request), membership)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _members(request, organization, status=400)
    messages.success(request, f"{membership.user.username} was removed from {organization.name}.")
    return redirect("web:members", org=organization.slug)


@org_action(Role.ADMIN)
def invitation_revoke(
    request: HttpRequest, organization: Organization, invitation_id: int
) -> HttpResponse:
    invitation = Invitation.objects.filter(organization=organization, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    services.revoke_invitation(principal_of(request), invitation)
    messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return redirect("web:members", org=organization.slug)


# --- API tokens -------------------------------------------------------------------------------


def _tokens(
    request: HttpRequest,
    organization: Organization,
    form: ApiTokenForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "tokens": list(
            api_tokens_for(principal_of(request), organization).select_related("created_by")
        ),
        "form": form or ApiTokenForm(),
        "now": timezone.now(),
        "tab": "tokens",
    }
    return page(request, "web/settings/tokens.html", context, section="settings", status=status)


@org_page(Role.ADMIN)
def tokens(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _tokens(request, organization)


@org_action(Role.ADMIN)
def token_create(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            issued = services.create_api_token(
                principal_of(request),
                organization,
                name=form.cleaned_data["name"],
                role=form.cleaned_data["role"],
                expires_at=expiry_from_days(form.cleaned_data["expires"]),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"API token {issued.token.name} created.")
            context = {
                "title": "API token created",
                "secret": issued.plaintext,
                "what": f"API token “{issued.token.name}” ({issued.token.get_role_display()})",
                "usage": f"Authorization: Bearer {issued.plaintext}",
                "back_url_name": "web:tokens",
                "tab": "tokens",
            }
            return no_store(
                page(request, "web/settings/secret_once.html", context, section="settings")
            )
    return _tokens(request, organization, form, status=400)


@org_action(Role.ADMIN)
def token_revoke(request: HttpRequest, organization: Organization, token_id: int) -> HttpResponse:
    token = api_tokens_for(principal_of(request), organization).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    services.revoke_api_token(principal_of(request), token)
    messages.success(request, f"API token {token.name} revoked; it stops working now.")
    return redirect("web:tokens", org=organization.slug)


# --- clusters, queues and agent tokens --------------------------------------------------------


def _clusters(
    request: HttpRequest,
    organization: Organization,
    form: ClusterForm | None = None,
    status: int = 200,
) -> HttpResponse:
    clusters = jobs.clusters_for(principal_of(request), organization).prefetch_related(
        "queues", "agents"
    )
    context = {"clusters": list(clusters), "form": form or ClusterForm(), "tab": "clusters"}
    return page(request, "web/settings/clusters.html", context, section="settings", status=status)


@org_page()
def clusters(request: HttpRequest, organization: Organization) -> HttpResponse:
    return _clusters(request, organization)


@org_action(Role.ADMIN)
def cluster_create(request: HttpRequest, organization: Organization) -> HttpResponse:
    form = ClusterForm(request.POST)
    if form.is_valid():
        try:
            cluster = jobs.create_cluster(
                principal_of(request),
                organization,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Cluster {cluster.name} created with a default queue.")
            return redirect("web:cluster", org=organization.slug, cluster=cluster.name)
    return _clusters(request, organization, form, status=400)


def _cluster_page(
    request: HttpRequest,
    cluster: Cluster,
    *,
    queue_form: forms.Form | None = None,
    token_form: forms.Form | None = None,
    status: int = 200,
) -> HttpResponse:
    principal = principal_of(request)
    agent_tokens = (
        list(jobs.agent_tokens_for(principal, cluster)) if can(request, Role.ADMIN) else []
    )
    context = {
        "cluster": cluster,
        "queues": list(cluster.queues.order_by("key")),
        "agents": list(jobs.agents_for(principal, cluster.organization).filter(cluster=cluster)),
        "agent_tokens": agent_tokens,
        "queue_form": queue_form or QueueForm(),
        "token_form": token_form or AgentTokenForm(),
        "now": timezone.now(),
        "tab": "clusters",
    }
    return page(request, "web/settings/cluster.html", context, section="settings", status=status)


@org_page()
def cluster_detail(request: HttpRequest, organization: Organization, cluster: str) -> HttpResponse:
    found = jobs.get_cluster_for(principal_of(request), organization, cluster)
    return _cluster_page(request, found)


@org_action(Role.ADMIN)
def queue_create(request: HttpRequest, organization: Organization, cluster: str) -> HttpResponse:
    found = jobs.get_cluster_for(principal_of(request), organization, cluster)
    form = QueueForm(request.POST)
    if form.is_valid():
        try:
            queue = jobs.create_queue(
                principal_of(request),
                found,
                key=form.cleaned_data["key"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Queue {queue.key} created.")
            return redirect("web:cluster", org=organization.slug, cluster=found.name)
    return _cluster_page(request, found, queue_form=form, status=400)


@org_action(Role.ADMIN)
def agent_token_create(
    request: HttpRequest, organization: Organization, cluster: str
) -> HttpResponse:
    found = jobs.get_cluster_for(principal_of(request), organization, cluster)
    form = AgentTokenForm(request.POST)
    if form.is_valid():
        try:
            issued = jobs.create_agent_token(
                principal_of(request),
                found,
                description=form.cleaned_data["description"],
                expires_at=expiry_from_days(form.cleaned_data["expires"]),
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Agent token for cluster {found.name} created.")
            context = {
                "title": "Agent token created",
                "secret": issued.plaintext,
                "what": f"Agent registration token for cluster “{found.name}”",
                "usage": f"bastion agent start --server URL --token {issued.plaintext} "
                "--tags queue=default",
                "back_url_name": "web:cluster",
                "cluster": found,
                "tab": "clusters",
            }
            return no_store(
                page(request, "web/settings/secret_once.html", context, section="settings")
            )
    return _cluster_page(request, found, token_form=form, status=400)


@org_action(Role.ADMIN)
def agent_token_revoke(
    request: HttpRequest, organization: Organization, cluster: str, token_id: int
) -> HttpResponse:
    principal = principal_of(request)
    found = jobs.get_cluster_for(principal, organization, cluster)
    token = jobs.agent_tokens_for(principal, found).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such agent token.")
    jobs.revoke_agent_token(principal, token)
    messages.success(request, "Agent token revoked; agents cannot register with it any more.")
    return redirect("web:cluster", org=organization.slug, cluster=found.name)
