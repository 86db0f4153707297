"""URL patterns of the browser-test pages, spliced into ``/o/<org>/`` by ``bastion.web.urls``."""

from django.urls import path

from bastion.web.views import browser as views
from bastion.web.views import browser_editor as editor
from bastion.web.views import browser_suites as suites

PROJECT = "browser/<slug:project>/"
TEST = PROJECT + "tests/<slug:test>/"
RUN = PROJECT + "runs/<int:run_id>/"
SUITE = PROJECT + "suites/<slug:suite>/"
ENVIRONMENT = PROJECT + "environments/<slug:environment>/"

patterns = [
    path("browser/", views.landing, name="browser"),
    path(PROJECT + "tests/new/", editor.test_new, name="browser-test-new"),
    path(PROJECT + "tests/create/", editor.test_create, name="browser-test-create"),
    path(TEST, editor.test_detail, name="browser-test"),
    path(TEST + "steps/", editor.step_edit, name="browser-step-edit"),
    path(TEST + "settings/", editor.test_settings, name="browser-test-settings"),
    path(TEST + "secrets/", editor.test_secret, name="browser-test-secret"),
    path(TEST + "yaml/", editor.test_yaml, name="browser-test-yaml"),
    path(TEST + "yaml/save/", editor.test_yaml_save, name="browser-test-yaml-save"),
    path(TEST + "delete/", editor.test_delete, name="browser-test-delete"),
    path(TEST + "rerun/", editor.module_rerun, name="browser-module-rerun"),
    path(PROJECT + "suites/new/", suites.suite_new, name="browser-suite-new"),
    path(PROJECT + "suites/create/", suites.suite_create, name="browser-suite-create"),
    path(SUITE, suites.suite_detail, name="browser-suite"),
    path(SUITE + "edit/", suites.suite_edit, name="browser-suite-edit"),
    path(PROJECT + "environments/", suites.environments, name="browser-environments"),
    path(
        PROJECT + "environments/create/",
        suites.environment_create,
        name="browser-environment-create",
    ),
    path(ENVIRONMENT, suites.environment_detail, name="browser-environment"),
    path(ENVIRONMENT + "edit/", suites.environment_edit, name="browser-environment-edit"),
    path(ENVIRONMENT + "secrets/", suites.environment_secret, name="browser-environment-secret"),
    path(PROJECT + "runs/new/", views.run_start, name="browser-run-start"),
    path(RUN, views.run_detail, name="browser-run"),
    path(RUN + "files/", views.run_files, name="browser-run-files"),
    path(RUN + "accept/", views.accept_baseline, name="browser-accept"),
    path(RUN + "cancel/", suites.run_cancel, name="browser-run-cancel"),
]
