"""Webhook receivers (GitHub, GitLab), mounted at ``/hooks/pipelines/`` by ``bastion.urls``."""

from django.urls import path

from bastion.pipelines import webhooks

app_name = "pipeline-hooks"

urlpatterns = [
    path("<slug:org>/<slug:pipeline>/github", webhooks.github, name="github"),
    path("<slug:org>/<slug:pipeline>/gitlab", webhooks.gitlab, name="gitlab"),
]
