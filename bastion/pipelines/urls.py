"""URL patterns of the pipelines pages, spliced into ``/o/<org>/`` by ``bastion.web.urls``."""

from django.urls import path

from bastion.pipelines import policy_views, schedule_views, secret_views, views

BUILD = "pipelines/<slug:pipeline>/builds/<int:number>/"

patterns = [
    path("pipelines/", views.pipelines, name="pipelines"),
    path("pipelines/<slug:pipeline>/", views.pipeline_detail, name="pipeline"),
    path("pipelines/<slug:pipeline>/builds/", views.build_create, name="build-create"),
    path(BUILD, views.build_detail, name="build"),
    path(BUILD + "live/", views.build_live, name="build-live"),
    path(BUILD + "artifacts/", views.build_artifacts, name="build-artifacts"),
    path(BUILD + "cancel/", views.build_cancel, name="build-cancel"),
    path(BUILD + "unblock/", views.build_unblock, name="build-unblock"),
    path(BUILD + "retry/", views.build_retry, name="build-retry"),
    path(
        "settings/clusters/<slug:cluster>/pipeline-policy/",
        policy_views.update,
        name="cluster-policy",
    ),
    path(
        "settings/clusters/<slug:cluster>/secrets/",
        secret_views.save,
        name="cluster-secrets",
    ),
    path(
        "settings/clusters/<slug:cluster>/secrets/<str:key>/delete/",
        secret_views.delete,
        name="cluster-secret-delete",
    ),
    *schedule_views.patterns,
]
