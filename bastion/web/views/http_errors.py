"""The CSRF failure page (the 400/403/404/500 pages are the templates of the same names)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "web/errors/csrf.html", {"reason": reason}, status=403)
