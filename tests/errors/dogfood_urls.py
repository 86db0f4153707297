"""Bastion's URLs plus ``/test-boom/``, which raises: an unhandled server exception."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bastion.urls import urlpatterns as bastion_urlpatterns


class DogfoodBoom(RuntimeError):
    pass


def boom(request: HttpRequest) -> HttpResponse:
    raise DogfoodBoom(f"dogfood test {request.GET.get('n', '')}")


urlpatterns = [path("test-boom/", boom), *bastion_urlpatterns]
