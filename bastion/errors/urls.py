"""Sentry ingest URLs; mounted at the site root so a DSN's ``/api/<id>/envelope/`` works."""

from django.urls import path, re_path

from bastion.errors import pages, views

app_name = "errors"

urlpatterns = [
    path("api/<str:project_id>/envelope/", views.envelope, name="envelope"),
    path("api/<str:project_id>/store/", views.store, name="store"),
    # A DSN with a path prefix (reverse-proxy mount) makes SDKs post to /<prefix>/api/<id>/...
    re_path(r"^.+/api/(?P<project_id>[^/]+)/envelope/$", views.envelope),
    re_path(r"^.+/api/(?P<project_id>[^/]+)/store/$", views.store),
    # Pages, under the web UI's /o/<org>/ scheme (the module landing /o/<org>/errors/ is web's).
    path("o/<slug:org>/errors/<slug:project>/", pages.issues, name="issues"),
    path("o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/", pages.issue, name="issue"),
    path(
        "o/<slug:org>/errors/<slug:project>/issues/<int:issue_id>/status/",
        pages.issue_status,
        name="issue-status",
    ),
]
