"""Personal API tokens: made and revoked by their user on /account/tokens/, shown once, stored
hashed, audited without the secret; the browser session works too, with CSRF for POST."""

import hashlib
import re

import pytest
from django.test import Client

from api.models import ApiToken
from api.tokens import create_token
from audit.models import AuditEvent
from fabric.models import VirtualMachine
from tests.api.conftest import Api


def new_token(client, name="nightly drain") -> tuple[str, object]:
    response = client.post("/account/tokens/", {"name": name})
    assert response.status_code == 201
    secret = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
    return secret, response


@pytest.mark.django_db
def test_a_token_is_shown_once_stored_hashed_and_audited_without_the_secret(operator_client, operator_user):
    secret, response = new_token(operator_client)
    assert response["Cache-Control"] == "no-store"
    row = ApiToken.objects.get(user=operator_user)
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.values().get())
    # Shown once: the list shows the prefix only.
    page = operator_client.get("/account/tokens/").content.decode()
    assert row.prefix in page and secret not in page
    event = AuditEvent.objects.get(action="token.created")
    assert (event.username, event.target_name, event.details) == ("operator", "nightly drain", {"prefix": row.prefix})
    assert secret not in str(AuditEvent.objects.values_list())
    assert Api(secret).get("/hosts")[0] == 200


@pytest.mark.django_db
def test_a_revoked_token_stops_working_and_the_revocation_is_audited(operator_client, operator_user):
    secret, _ = new_token(operator_client)
    row = ApiToken.objects.get()
    assert operator_client.post(f"/account/tokens/{row.pk}/revoke/").status_code == 302
    status, body = Api(secret).get("/hosts")
    assert (status, body["code"]) == (401, "unauthenticated")
    assert AuditEvent.objects.filter(action="token.revoked", username="operator", target_name=row.name).count() == 1
    # Again: nothing changes, no second audit row.
    operator_client.post(f"/account/tokens/{row.pk}/revoke/")
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


@pytest.mark.django_db
def test_a_user_cannot_revoke_someone_elses_token(viewer_client, operator_user):
    row, secret = create_token(operator_user, "theirs")
    assert viewer_client.post(f"/account/tokens/{row.pk}/revoke/").status_code == 404
    assert Api(secret).get("/hosts")[0] == 200


@pytest.mark.django_db
def test_the_token_page_needs_sign_in_and_csrf(client, operator_user):
    assert client.get("/account/tokens/").status_code == 302  # to the login page
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator_user)
    assert strict.post("/account/tokens/", {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_nameless_token_is_refused(operator_client):
    assert operator_client.post("/account/tokens/", {"name": "  "}).status_code == 400
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_name_over_the_limit_is_refused_with_the_limit_never_cut(operator_client, operator_user):
    page = operator_client.get("/account/tokens/").content.decode()
    assert 'name="name"' in page and "maxlength" not in page  # a browser would cut at maxlength silently
    response = operator_client.post("/account/tokens/", {"name": "n" * 101})
    assert response.status_code == 400
    assert "at most 100 characters; this one has 101: shorten it." in response.content.decode()
    assert not ApiToken.objects.exists()
    assert operator_client.post("/account/tokens/", {"name": "n" * 100}).status_code == 201
    assert ApiToken.objects.get().name == "n" * 100


@pytest.mark.django_db
def test_the_command_refuses_a_name_over_the_limit(operator_user):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="at most 100 characters; this one has 120") as refused:
        call_command("create_api_token", "operator", "--name", "x" * 120)
    assert refused.value.returncode == 2
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer hvmc_0123456789_wrong", "Basic abc", "Bearer "])
def test_bad_tokens_are_401_in_the_error_shape(header):
    response = Client().get("/api/v1/hosts", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


@pytest.mark.django_db
def test_a_deactivated_users_token_stops_working(operator_user):
    _, secret = create_token(operator_user, "script")
    operator_user.is_active = False
    operator_user.save()
    assert Api(secret).get("/hosts")[0] == 401


@pytest.mark.django_db
def test_last_use_is_recorded(operator_user):
    row, secret = create_token(operator_user, "script")
    assert row.last_used_at is None
    Api(secret).get("/hosts")
    row.refresh_from_db()
    assert row.last_used_at is not None


@pytest.mark.django_db
def test_the_session_works_and_needs_the_csrf_token_to_change_anything(operator_user, demo_fabric):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator_user)
    assert browser.get("/api/v1/hosts").status_code == 200
    vm = VirtualMachine.objects.filter(state="running").first()
    response = browser.post("/api/v1/migrations", {"vm": vm.name}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    # With the token a page carries (any page's form), the same request goes through to the rules.
    page = browser.get("/account/tokens/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = browser.post(
        "/api/v1/migrations", {"vm": vm.name}, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert response.status_code in (201, 409), response.json()


@pytest.mark.django_db
def test_a_signed_in_user_without_a_role_gets_the_json_refusal(client, outsider_user):
    client.force_login(outsider_user)
    response = client.get("/api/v1/hosts")
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


@pytest.mark.django_db
def test_the_create_api_token_command_prints_a_working_token_once(operator_user):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_token", "operator", "--name", "cron", stdout=out)
    secret = out.getvalue().strip()
    assert Api(secret).get("/vms")[0] == 200
    assert AuditEvent.objects.filter(action="token.created", username="operator").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("persona", "expected"), [("anonymous", 302), ("outsider", 403), ("viewer", 201), ("operator", 201), ("admin", 201)]
)
def test_every_role_may_have_tokens_acting_with_that_role(client, persona_users, persona, expected):
    if persona != "anonymous":
        client.force_login(persona_users[persona])
    response = client.post("/account/tokens/", {"name": "script"})
    assert response.status_code == expected
    assert ApiToken.objects.count() == (1 if expected == 201 else 0)
    if expected == 201:
        secret = re.search(r'id="new-token">([^<]+)<', response.content.decode()).group(1)
        # The token can do what its user can: a viewer's reads, but starts nothing.
        assert Api(secret).get("/vms")[0] == 200
        assert Api(secret).post("/evacuations", {"host": "nowhere"})[0] == (403 if persona == "viewer" else 400)
