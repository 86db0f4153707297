"""The account page: password change and two-factor setup with a real TOTP generator."""

from __future__ import annotations

import pyotp
import pytest
from django.test import Client

from bastion.core import services
from bastion.core.models import User
from bastion.web.views.account import SETUP_SECRET
from tests.factories import PASSWORD, make_user
from tests.web.conftest import login_client

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-much-longer-new-passphrase"


def test_change_password_keeps_the_session(owner_client: Client, world: object) -> None:
    response = owner_client.post(
        "/account/password/",
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
        follow=True,
    )
    assert "Your password was changed." in [str(m) for m in response.context["messages"]]
    assert owner_client.get("/account/").status_code == 200
    assert Client().login(username=response.context["user"].username, password=NEW_PASSWORD)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"current_password": "wrong", "new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"current_password": PASSWORD, "new_password": "password123"}, "new_password"),
        (
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": "different-passphrase",
            },
            "confirm_password",
        ),
    ],
)
def test_bad_password_change_changes_nothing(data: dict[str, str], field: str) -> None:
    user = make_user()
    client = login_client(user)
    data = {"confirm_password": data.get("new_password", ""), **data}
    response = client.post("/account/password/", data)
    assert response.status_code == 400
    assert response.context["password_form"].errors[field]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_enable_and_disable_two_factor() -> None:
    user = make_user()
    client = login_client(user)
    page = client.get("/account/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert b'src="data:image/svg+xml' in page.content
    secret = client.session[SETUP_SECRET]
    assert secret.encode() in page.content
    # A wrong code leaves it off.
    assert client.post("/account/2fa/enable/", {"code": "000000"}).status_code == 400
    assert not User.objects.get(pk=user.pk).totp_enabled
    response = client.post("/account/2fa/enable/", {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.totp_enabled and services.verify_totp(user, pyotp.TOTP(secret).now())
    assert SETUP_SECRET not in client.session
    # Turning it off needs a current code too.
    assert client.post("/account/2fa/disable/", {"code": "000000"}).status_code == 400
    assert User.objects.get(pk=user.pk).totp_enabled
    assert (
        client.post("/account/2fa/disable/", {"code": pyotp.TOTP(secret).now()}).status_code == 302
    )
    assert not User.objects.get(pk=user.pk).totp_enabled
