"""Single sign-on against a real OpenID Provider (tests/access/oidc_idp: panva's certified
oidc-provider on loopback): the authorization code flow with PKCE end to end, roles from the groups
claim set again at each sign-in, local accounts never taken over, and every failure (provider down,
provider refusing, a token from another issuer, an expired or forged callback) told on the sign-in
page, audited, never an error page."""

from __future__ import annotations

import html
import logging

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from access import Perm, can
from audit.models import AuditEvent
from tests.access import oidc_idp as idp
from tests.conftest import need
from utilities.roles import Role, role_of

pytestmark = pytest.mark.django_db

ACCOUNTS = {
    "olga": idp.account("olga", ["console-operators", "hr-staff"]),  # the mapped group, other case
    "adam": idp.account("adam", ["console-viewers", "console-admins"]),
    "nobody": idp.account("nobody", ["hr-staff"]),
    "admin": idp.account("admin", ["console-admins"]),  # the local break-glass account's name
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    absent = idp.missing()
    need(not absent, "the test OpenID provider (" + ", ".join(absent) + ")")
    with idp.Provider.start(tmp_path_factory.mktemp("idp"), ACCOUNTS) as server:
        yield server


@pytest.fixture
def sso(provider, settings):
    """configure(**overrides): the console's settings for the provider's variables, as settings.py
    reads them."""
    from console import oidc

    def configure(**overrides: str) -> None:
        for name, value in oidc.oidc_settings(provider.environment(**overrides)).items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [oidc.BACKEND, "django.contrib.auth.backends.ModelBackend"]

    configure()
    return configure


def to_callback(client, provider, login: str, password: str = idp.PASSWORD) -> str:
    """The sign-in button, then the provider's part: the URL the provider sends the browser back to."""
    response = client.get(reverse("oidc_authentication_init"))
    assert response.status_code == 302
    return provider.sign_in(response["Location"], login, password)


def sign_in(client, provider, login: str):
    callback = to_callback(client, provider, login)
    return client.get(callback.removeprefix("http://testserver"), follow=True)


def role(username: str) -> str | None:
    return role_of(User.objects.get(username=username))


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def test_it_signs_in_with_the_provider_and_gives_the_role_of_the_groups_claim(client, provider, sso):
    response = sign_in(client, provider, "olga")
    assert response.redirect_chain[-1][0] == reverse("fabric:hosts")
    assert response.status_code == 200
    user = User.objects.get(username="olga")
    assert role("olga") == Role.OPERATOR
    assert (user.first_name, user.last_name, user.email) == ("Olga", "Tester", "olga@contoso.test")
    assert not user.has_usable_password()  # the provider's user: never a local sign-in
    assert can(user, Perm.MIGRATE) and not can(user, Perm.MANAGE_HOSTS)
    assert AuditEvent.objects.filter(action="login", username="olga").exists()


def test_the_sign_in_page_offers_the_provider_and_sends_the_browser_there_with_pkce(client, provider, sso):
    page = client.get(reverse("login") + "?next=/jobs/")
    assert "Sign in with Contoso ID" in page_text(page)
    assert reverse("oidc_authentication_init") + "?next=/jobs/" in page_text(page)
    response = client.get(reverse("oidc_authentication_init"), {"next": "/jobs/"})
    location = response["Location"]
    assert location.startswith(provider.issuer + "/auth?")
    assert "code_challenge_method=S256" in location and "client_id=hyperv-console" in location
    callback = provider.sign_in(location, "olga")
    response = client.get(callback.removeprefix("http://testserver"))
    assert response["Location"] == "/jobs/"  # back where the user was going


def test_it_gives_the_highest_role_of_several_groups(client, provider, sso):
    sign_in(client, provider, "adam")
    assert role("adam") == Role.ADMINISTRATOR


def test_a_user_in_no_mapped_group_signs_in_without_a_role(client, provider, sso):
    response = sign_in(client, provider, "nobody")
    assert role("nobody") is None
    assert response.status_code == 403 and "no role" in page_text(response)


def test_roles_follow_group_changes_at_each_sign_in(client, provider, sso):
    sign_in(client, provider, "olga")
    assert role("olga") == Role.OPERATOR
    try:
        provider.set_groups("olga", ["console-viewers"])
        client.logout()
        sign_in(client, provider, "olga")
        assert role("olga") == Role.VIEWER
        provider.set_groups("olga", [])
        client.logout()
        sign_in(client, provider, "olga")
        assert role("olga") is None
    finally:
        provider.set_groups("olga", ACCOUNTS["olga"]["claims"]["groups"])


def test_groups_can_come_from_another_claim(client, provider, sso):
    # As Entra ID's app roles arrive in `roles`: the groups claim (olga's says operator) is not read.
    sso(OIDC_GROUPS_CLAIM="email", OIDC_VIEWER_GROUP="OLGA@contoso.test")
    sign_in(client, provider, "olga")
    assert role("olga") == Role.VIEWER


def test_a_local_account_is_never_taken_over_and_still_signs_in_with_its_password(client, provider, sso):
    User.objects.create_superuser("admin", "admin@example.test", "break-glass-pass-123")
    response = sign_in(client, provider, "admin")
    assert "_auth_user_id" not in client.session
    assert "belongs to a local account" in page_text(response)
    assert User.objects.get(username="admin").has_usable_password()
    failure = AuditEvent.objects.get(action="login_failed")
    assert failure.details["problem"] == "local_account" and failure.details["username"] == "admin"
    assert failure.username == ""  # so the local account's lockout does not count it
    response = client.post(reverse("login"), {"username": "admin", "password": "break-glass-pass-123"})
    assert response.status_code == 302 and client.session["_auth_user_id"]


def test_a_provider_that_went_down_gives_a_clear_message_and_local_sign_in_works(client, provider, sso, tmp_path):
    other = idp.Provider.start(tmp_path, ACCOUNTS)
    try:
        sso(**{k: v for k, v in other.environment().items() if k.startswith("OIDC_OP_")})
        callback = to_callback(client, other, "olga")
    finally:
        other.stop()  # after the browser came back, before the console fetches the token
    response = client.get(callback.removeprefix("http://testserver"), follow=True)
    assert response.status_code == 200
    assert "Contoso ID does not answer; local accounts can still sign in." in page_text(response)
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.get(action="login_failed").details["problem"] == "unreachable"


def test_a_provider_refusing_the_client_is_said_and_the_secret_is_never_logged(client, provider, sso, caplog):
    sso(OIDC_RP_CLIENT_SECRET="a-wrong-secret-nobody-must-see")
    with caplog.at_level(logging.DEBUG):
        response = sign_in(client, provider, "olga")
    assert "refused the console's request" in page_text(response)
    assert "_auth_user_id" not in client.session
    assert "a-wrong-secret-nobody-must-see" not in caplog.text
    assert not User.objects.filter(username="olga").exists()


def test_an_id_token_from_another_issuer_is_refused(client, provider, sso):
    sso(OIDC_OP_ISSUER="https://login.example.test/other-tenant/")
    response = sign_in(client, provider, "olga")
    assert "failed the console's checks" in page_text(response)
    assert "_auth_user_id" not in client.session


def test_a_forged_or_expired_callback_changes_nothing(client, provider, sso):
    client.get(reverse("oidc_authentication_init"))  # a state in this session, but not this one
    response = client.get(reverse("oidc_authentication_callback"), {"code": "x", "state": "forged"}, follow=True)
    assert response.status_code == 200
    assert "The sign-in expired or was started elsewhere" in page_text(response)
    assert "_auth_user_id" not in client.session
    response = client.get(reverse("oidc_authentication_callback"), {"error": "access_denied"}, follow=True)
    assert "Contoso ID did not sign you in." in page_text(response)
    assert not User.objects.exclude(username="").filter(last_login__isnull=False).exists()


def test_the_password_form_never_reaches_the_provider_backend(client, provider, sso):
    User.objects.create_user("olga", password="local-pass-12345")
    response = client.post(reverse("login") + "?code=x&state=y", {"username": "olga", "password": "wrong"})
    assert response.status_code == 200 and "_auth_user_id" not in client.session


def test_single_sign_on_is_off_by_default(client):
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback")).status_code == 404
    assert "Sign in with" not in page_text(client.get(reverse("login")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"OIDC_RP_CLIENT_SECRET": ""}, "OIDC_RP_CLIENT_SECRET"),
        ({"OIDC_OP_TOKEN_ENDPOINT": "http://idp.example.test/token"}, "https:// URL"),
        ({"OIDC_OP_JWKS_ENDPOINT": ""}, "give OIDC_OP_JWKS_ENDPOINT"),
        ({"OIDC_RP_SIGN_ALGO": "HS256"}, "OIDC_RP_SIGN_ALGO"),
        ({"OIDC_RP_SCOPES": "email profile"}, "must include openid"),
        ({"OIDC_VIEWER_GROUP": "", "OIDC_OPERATOR_GROUP": "", "OIDC_ADMINISTRATOR_GROUP": ""}, "at least one"),
    ],
)
def test_a_bad_setting_names_the_variable(change, message):
    from console import oidc
    from console.env import ConfigError

    good = {
        "OIDC_RP_CLIENT_ID": "console",
        "OIDC_RP_CLIENT_SECRET": "secret",
        "OIDC_OP_ISSUER": "https://idp.example.test",
        **{name: f"https://idp.example.test/{name.lower()}" for name in oidc.ENDPOINTS},
        "OIDC_OPERATOR_GROUP": "ops",
    }
    assert oidc.oidc_settings(good)["OIDC_RP_SIGN_ALGO"] == "RS256"
    with pytest.raises(ConfigError, match=message):
        oidc.oidc_settings({**good, **change})
