"""URL patterns of the browser-test pages, spliced into ``/o/<org>/`` by ``bastion.web.urls``."""

from django.urls import path

from bastion.web.views import browser as views

TEST = "browser/<slug:project>/tests/<slug:test>/"
RUN = "browser/<slug:project>/runs/<int:run_id>/"

patterns = [
    path("browser/", views.landing, name="browser"),
    path(TEST, views.test_detail, name="browser-test"),
    path("browser/<slug:project>/runs/new/", views.run_start, name="browser-run-start"),
    path(RUN, views.run_detail, name="browser-run"),
    path(RUN + "files/", views.run_files, name="browser-run-files"),
    path(RUN + "accept/", views.accept_baseline, name="browser-accept"),
]
