"""Sentry ingest URLs; mounted at the site root so a DSN's ``/api/<id>/envelope/`` works."""

from django.urls import path, re_path

from bastion.errors import alert_pages, audit_pages, grouping_pages, pages, views

app_name = "errors"

urlpatterns = [
    path("api/<str:project_id>/envelope/", views.envelope, name="envelope"),
    path("api/<str:project_id>/store/", views.store, name="store"),
    # A DSN with a path prefix (reverse-proxy mount) makes SDKs post to /<prefix>/api/<id>/...
    re_path(r"^.+/api/(?P<project_id>[^/]+)/envelope/$", views.envelope),
    re_path(r"^.+/api/(?P<project_id>[^/]+)/store/$", views.store),
    # Pages, under the web UI's /o/<org>/ scheme (the module landing /o/<org>/errors/ is web's).
    path("o/<slug:org>/errors/<slug:project>/", pages.issues, name="issues"),
    path("o/<slug:org>/errors/<slug:project>/issues/bulk/", pages.issues_bulk, name="issues-bulk"),
    path("o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/", pages.issue, name="issue"),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/status/",
        pages.issue_status,
        name="issue-status",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/review/",
        pages.issue_review,
        name="issue-review",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/assign/",
        pages.issue_assign,
        name="issue-assign",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/comments/",
        pages.issue_comment,
        name="issue-comment",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/comments/<int:comment_id>/delete/",
        pages.issue_comment_delete,
        name="issue-comment-delete",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/review-coverage/",
        audit_pages.review_coverage,
        name="review-coverage",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/review-coverage/digest/",
        alert_pages.digest_save,
        name="review-digest",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/alerts/",
        alert_pages.alert_settings,
        name="alert-settings",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/alerts/save/",
        alert_pages.alert_settings_save,
        name="alert-settings-save",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/fingerprint-rules/",
        grouping_pages.fingerprint_rules,
        name="fingerprint-rules",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/fingerprint-rules/save/",
        grouping_pages.fingerprint_rules_save,
        name="fingerprint-rules-save",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/ignore-rules/",
        audit_pages.ignore_rules,
        name="ignore-rules",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/ignore-rules/new/",
        audit_pages.ignore_rule_create,
        name="ignore-rule-create",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/ignore-rules/<int:rule_id>/",
        audit_pages.ignore_rule,
        name="ignore-rule",
    ),
    path(
        "o/<slug:org>/errors/<slug:project>/ignore-rules/<int:rule_id>/enabled/",
        audit_pages.ignore_rule_enabled,
        name="ignore-rule-enabled",
    ),
]
