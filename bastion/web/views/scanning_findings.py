"""Finding pages beyond the basics in ``scanning``: entering a manual finding (with evidence
attachments), downloading an attachment, marking a manual finding fixed or reopened, and
retesting one finding. Views parse and delegate; reads go through ``scanning.access``."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path

from bastion.core.models import Organization, Role
from bastion.jobs.services import clusters_for
from bastion.scanning import access, lifecycle, manual
from bastion.scanning.models import Finding, Target
from bastion.scanning.sla import SEVERITIES
from bastion.web.views._common import apply_errors, can, org_action, org_page, page, principal_of

MAX_FILES = 10


class ManualFindingForm(forms.Form):
    title = forms.CharField(max_length=300)
    severity = forms.ChoiceField(choices=[(s, s.title()) for s in SEVERITIES], initial="medium")
    type = forms.CharField(
        max_length=60, initial="manual", help_text="Lower-case, e.g. idor or business-logic."
    )
    cwe = forms.CharField(max_length=20, required=False, label="CWE", help_text="e.g. CWE-639")
    owasp = forms.ChoiceField(
        choices=[("", "—"), *((c, c) for c in manual.OWASP_TOP_10_2021)],
        required=False,
        label="OWASP Top 10 (2021)",
    )
    url = forms.CharField(max_length=2000, label="URL")
    method = forms.ChoiceField(choices=[(m, m) for m in manual.METHODS], initial="GET")
    parameter = forms.CharField(max_length=500, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    evidence = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="Request/response excerpts, steps to reproduce.",
    )
    remediation = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


def _target(request: HttpRequest, organization: Organization, target_id: int) -> Target:
    return access.get_target_for(principal_of(request), target_id, organization=organization)


def _finding(request: HttpRequest, organization: Organization, finding_id: int) -> Finding:
    return access.get_finding_for(principal_of(request), finding_id, organization=organization)


def _to_finding(organization: Organization, finding: Finding) -> HttpResponse:
    return redirect("web:finding", org=organization.slug, finding_id=finding.pk)


def _manual_page(
    request: HttpRequest, target: Target, form: ManualFindingForm, status: int = 200
) -> HttpResponse:
    context = {"target": target, "form": form, "max_files": MAX_FILES}
    return page(request, "scanning/manual_finding.html", context, section="scanning", status=status)


@org_page()
def manual_new(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    target = _target(request, organization, target_id)
    initial = {"url": target.base_url}
    return _manual_page(request, target, ManualFindingForm(initial=initial))


def _attach_all(request: HttpRequest, finding: Finding) -> list[str]:
    problems = []
    for upload in request.FILES.getlist("files")[:MAX_FILES]:
        try:
            manual.add_attachment(principal_of(request), finding, upload)
        except ValidationError as exc:
            problems.append(f"{upload.name}: {' '.join(exc.messages)}")
    return problems


@org_action(Role.MEMBER)
def manual_create(request: HttpRequest, organization: Organization, target_id: int) -> HttpResponse:
    target = _target(request, organization, target_id)
    form = ManualFindingForm(request.POST)
    if not form.is_valid():
        return _manual_page(request, target, form, status=400)
    try:
        finding = manual.create_manual_finding(
            principal_of(request), target, manual.ManualFindingInput(**form.cleaned_data)
        )
    except ValidationError as exc:
        apply_errors(form, exc)
        return _manual_page(request, target, form, status=400)
    for problem in _attach_all(request, finding):
        messages.error(request, problem)
    messages.success(request, f"Finding #{finding.pk} recorded.")
    return _to_finding(organization, finding)


@org_action(Role.MEMBER)
def attachment_add(
    request: HttpRequest, organization: Organization, finding_id: int
) -> HttpResponse:
    finding = _finding(request, organization, finding_id)
    if not request.FILES.getlist("files"):
        messages.error(request, "Choose a file to attach.")
    for problem in _attach_all(request, finding):
        messages.error(request, problem)
    return _to_finding(organization, finding)


@org_page()
def attachment_download(
    request: HttpRequest, organization: Organization, finding_id: int, attachment_id: int
) -> HttpResponseBase:
    finding = _finding(request, organization, finding_id)
    return manual.attachment_response(manual.get_attachment_or_404(finding, attachment_id))


@org_action(Role.MEMBER)
def manual_state(request: HttpRequest, organization: Organization, finding_id: int) -> HttpResponse:
    finding = _finding(request, organization, finding_id)
    try:
        manual.set_manual_state(principal_of(request), finding, request.POST.get("state", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _to_finding(organization, finding)


@org_action(Role.MEMBER)
def retest(request: HttpRequest, organization: Organization, finding_id: int) -> HttpResponse:
    principal = principal_of(request)
    finding = _finding(request, organization, finding_id)
    cluster = clusters_for(principal, organization).filter(name=request.POST.get("cluster")).first()
    if cluster is None:
        messages.error(request, "Choose a cluster whose agents run the retest.")
        return _to_finding(organization, finding)
    try:
        scan = lifecycle.start_retest(principal, finding, cluster)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return _to_finding(organization, finding)
    messages.success(request, f"Retest queued as scan #{scan.pk}.")
    return redirect("web:scan", org=organization.slug, scan_id=scan.pk)


def finding_extras(request: HttpRequest, finding: Finding) -> dict[str, object]:
    """What the finding page shows beyond the basics (``scanning.finding_detail``)."""
    organization = finding.target.project.organization
    return {
        "attachments": list(finding.attachments.all()),
        "retests": list(finding.retests.order_by("-created_at")[:10]),
        "retest_clusters": clusters_for(principal_of(request), organization)
        if can(request, Role.MEMBER) and finding.source == "scan"
        else [],
        "description": (finding.details or {}).get("description", ""),
    }


# Spliced into ``/o/<org>/`` by ``bastion.web.urls``.
patterns = [
    path("scanning/targets/<int:target_id>/findings/new/", manual_new, name="finding-new"),
    path("scanning/targets/<int:target_id>/findings/", manual_create, name="finding-manual-create"),
    path(
        "scanning/findings/<int:finding_id>/attachments/",
        attachment_add,
        name="finding-attachment-add",
    ),
    path(
        "scanning/findings/<int:finding_id>/attachments/<int:attachment_id>/",
        attachment_download,
        name="finding-attachment",
    ),
    path("scanning/findings/<int:finding_id>/state/", manual_state, name="finding-state"),
    path("scanning/findings/<int:finding_id>/retest/", retest, name="finding-retest"),
]
