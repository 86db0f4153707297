from django.urls import path

from bastion.web import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
