"""The audit log page: filters, pagination, streamed CSV/JSON export and the chain status."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from bastion.core import audit
from bastion.core.models import AuditEvent, Organization
from bastion.web import audit_query
from bastion.web.forms import AuditFilterForm
from bastion.web.views._common import can, org_page, page, principal_of

PAGE_SIZE = 50


def _filter_from(request: HttpRequest) -> tuple[AuditFilterForm, audit_query.AuditFilter]:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        return form, audit_query.AuditFilter(
            actor=data["actor"].strip(),
            action=data["action"].strip(),
            object=data["object"].strip(),
            since=data["since"],
            until=data["until"],
        )
    return form, audit_query.AuditFilter()


def _events(
    request: HttpRequest, organization: Organization
) -> tuple[AuditFilterForm, audit_query.AuditFilter, QuerySet[AuditEvent]]:
    form, flt = _filter_from(request)
    events = audit_query.filtered(audit_query.events_for(principal_of(request), organization), flt)
    return form, flt, events


@org_page()
def audit_log(request: HttpRequest, organization: Organization) -> HttpResponse:
    form, flt, events = _events(request, organization)
    paginator = Paginator(events, PAGE_SIZE)
    page_obj = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "filter": flt,
        "page_obj": page_obj,
        "query": query.urlencode(),
        "chain": audit.verify_chain() if can(request, "admin") else None,
    }
    status = 400 if form.is_bound and not form.is_valid() else 200
    return page(request, "web/audit.html", context, section="audit", status=status)


def _filename(organization: Organization, extension: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return f"audit-{organization.slug}-{stamp}.{extension}"


def _bad_filter(form: AuditFilterForm) -> HttpResponse | None:
    """An export with an invalid filter must not silently export everything."""
    if form.is_bound and not form.is_valid():
        return JsonResponse({"detail": "Invalid filter.", "errors": form.errors}, status=400)
    return None


@org_page()
def audit_export_csv(request: HttpRequest, organization: Organization) -> HttpResponseBase:
    form, _, events = _events(request, organization)
    if (bad := _bad_filter(form)) is not None:
        return bad
    response = StreamingHttpResponse(
        audit_query.csv_lines(events), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(organization, "csv")}"'
    return response


@org_page()
def audit_export_json(request: HttpRequest, organization: Organization) -> HttpResponseBase:
    form, _, events = _events(request, organization)
    if (bad := _bad_filter(form)) is not None:
        return bad
    response = StreamingHttpResponse(
        audit_query.json_chunks(events), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(organization, "json")}"'
    return response
