"""Signing in and out: passwords, email as login, throttling, TOTP as a second step."""

from __future__ import annotations

import pyotp
import pytest
from django.conf import settings
from django.test import Client

from bastion.core import services
from bastion.core.context import Actor
from bastion.core.models import AuditEvent, LoginAttempt
from tests.factories import PASSWORD, make_org, make_user
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db


def _login(client: Client, username: str, password: str = PASSWORD, **extra: str) -> object:
    return client.post("/login/", {"username": username, "password": password, **extra})


def test_login_page_renders_and_pages_need_login() -> None:
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_login_with_username_or_email_lands_on_the_dashboard() -> None:
    user = make_user("alice")
    make_org(user, slug="wonderland")
    for login_name in ("alice", "Alice@Example.test"):
        client = Client()
        response = _login(client, login_name)
        assert response.status_code == 302
        assert client.get(response["Location"]).status_code == 302  # / -> dashboard
        assert client.get("/").url == "/o/wonderland/"
    assert AuditEvent.objects.filter(action="user.login", actor=user).count() == 2


def test_login_redirects_only_to_local_next() -> None:
    make_user("bob")
    assert _login(Client(), "bob", next="/account/")["Location"] == "/account/"
    assert _login(Client(), "bob", next="https://evil.example/")["Location"] == "/"


def test_wrong_password_and_unknown_user_get_the_same_answer() -> None:
    make_user("carol")
    wrong = _login(Client(), "carol", "not-the-password")
    unknown = _login(Client(), "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    assert b"That username or password is not right." in wrong.content
    assert b"That username or password is not right." in unknown.content
    assert "_auth_user_id" not in Client().session


def test_throttling_locks_out_after_repeated_failures_even_with_the_right_password() -> None:
    make_user("dave")
    client = Client()
    for _ in range(settings.CONFIG.login_max_failures):
        assert _login(client, "dave", "wrong-password-1").status_code == 400
    locked = _login(client, "dave", PASSWORD)
    assert locked.status_code == 429
    assert b"Too many failed sign-in attempts" in locked.content
    assert "_auth_user_id" not in client.session
    # An unknown name is throttled the same way (no user enumeration).
    for _ in range(settings.CONFIG.login_max_failures):
        _login(client, "ghost", "x")
    assert _login(client, "ghost", "x").status_code == 429
    assert LoginAttempt.objects.filter(username="dave", succeeded=False).count() == 5


def test_totp_login_needs_a_valid_code() -> None:
    user = make_user("erin")
    make_org(user, slug="erin-org")
    secret = services.begin_totp_setup(user)
    services.enable_totp(Actor.system("test"), user, secret, pyotp.TOTP(secret).now())
    client = Client()
    response = _login(client, "erin")
    assert response["Location"] == "/login/verify/"
    assert "_auth_user_id" not in client.session
    assert client.get("/o/erin-org/").status_code == 302  # not signed in yet
    bad = client.post("/login/verify/", {"code": "000000"})
    assert bad.status_code == 400 and b"That code is not right" in bad.content
    malformed = client.post("/login/verify/", {"code": "12ab"})
    assert malformed.status_code == 400
    good = client.post("/login/verify/", {"code": pyotp.TOTP(secret).now()})
    assert good.status_code == 302
    assert client.get("/o/erin-org/").status_code == 200


def test_totp_step_without_password_step_goes_back_to_login() -> None:
    response = Client().post("/login/verify/", {"code": "123456"})
    assert response.status_code == 302 and response["Location"] == "/login/"


def test_totp_failures_count_towards_the_lockout() -> None:
    user = make_user("frank")
    secret = services.begin_totp_setup(user)
    services.enable_totp(Actor.system("test"), user, secret, pyotp.TOTP(secret).now())
    client = Client()
    _login(client, "frank")
    for _ in range(settings.CONFIG.login_max_failures):
        client.post("/login/verify/", {"code": "000000"})
    locked = client.post("/login/verify/", {"code": pyotp.TOTP(secret).now()})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_logout_is_post_only() -> None:
    client = login_client(make_user())
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_pages_send_a_strict_content_security_policy() -> None:
    response = Client().get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert b"<script>" not in response.content and b"style=" not in response.content
