from django.urls import include, path

from bastion.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("hooks/pipelines/", include("bastion.pipelines.webhook_urls")),
    path("", include("bastion.errors.urls")),
    path("", include("bastion.web.urls")),
]
