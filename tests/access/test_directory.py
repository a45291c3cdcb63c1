"""Directory sign-in against a real OpenLDAP server (tests/access/slapd.py): roles from directory
groups (nested too), set again at each sign-in, wrong passwords, an outage, local accounts, and an
Active Directory layout (sAMAccountName, memberOf)."""

from __future__ import annotations

import logging
import socket

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from access import Perm, can
from audit.models import AuditEvent
from tests.access import slapd as d
from tests.conftest import need
from utilities.roles import Role, role_of

pytestmark = pytest.mark.django_db

OPENLDAP = {
    "AUTH_LDAP_BIND_DN": d.BIND_DN,
    "AUTH_LDAP_BIND_PASSWORD": d.BIND_PASSWORD,
    "AUTH_LDAP_USER_SEARCH_BASE": d.PEOPLE,
    "AUTH_LDAP_GROUP_SEARCH_BASE": d.GROUPS,
    "AUTH_LDAP_VIEWER_GROUP": d.VIEWERS,
    "AUTH_LDAP_OPERATOR_GROUP": d.OPERATORS,
    "AUTH_LDAP_ADMINISTRATOR_GROUP": d.ADMINISTRATORS,
}
ACTIVE_DIRECTORY = {
    "AUTH_LDAP_BIND_DN": d.AD_BIND_DN,
    "AUTH_LDAP_BIND_PASSWORD": d.BIND_PASSWORD,
    "AUTH_LDAP_USER_SEARCH_BASE": d.AD_BASE,
    "AUTH_LDAP_USER_SEARCH_FILTER": "(sAMAccountName=%(user)s)",
    "AUTH_LDAP_GROUP_SEARCH_BASE": d.AD_BASE,
    # As an operator copies them from AD's tools: upper case, spaces after the commas.
    "AUTH_LDAP_VIEWER_GROUP": d.AD_VIEWERS.upper().replace(",", ", "),
    "AUTH_LDAP_OPERATOR_GROUP": d.AD_OPERATORS,
    "AUTH_LDAP_ADMINISTRATOR_GROUP": d.AD_ADMINISTRATORS,
}


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    absent = d.missing()
    need(not absent, "OpenLDAP's slapd and python-ldap (" + ", ".join(absent) + ")")
    with d.Slapd.start(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def directory(slapd, settings):
    """configure(**variables): the console's settings for these environment variables, as settings.py
    reads them, on the test's slapd."""
    from console import directory

    def configure(uri: str = slapd.uri, **variables: str) -> None:
        for name, value in directory.ldap_settings({"AUTH_LDAP_SERVER_URI": uri, **variables}).items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [directory.BACKEND, "django.contrib.auth.backends.ModelBackend"]

    configure(**OPENLDAP)
    return configure


def sign_in(client, username: str, password: str = d.PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def role(username: str) -> str | None:
    return role_of(User.objects.get(username=username))


def test_it_gives_a_member_of_the_operators_group_the_operator_role(client, directory):
    response = sign_in(client, "olga")
    assert response.status_code == 302
    assert role("olga") == Role.OPERATOR
    user = User.objects.get(username="olga")
    assert (user.first_name, user.last_name, user.email) == ("Olga", "Operator", "olga@contoso.test")
    assert not user.has_usable_password()  # the directory's user: never a local sign-in
    assert can(user, Perm.MIGRATE) and not can(user, Perm.MANAGE_HOSTS)  # the role's permissions
    assert AuditEvent.objects.filter(action="login", username="olga").exists()
    assert AuditEvent.objects.filter(action="user.roles_changed", target_name="olga").exists()


def test_it_gives_a_member_of_a_group_inside_the_administrators_group_the_administrator_role(client, directory):
    assert sign_in(client, "adam").status_code == 302
    assert role("adam") == Role.ADMINISTRATOR
    assert client.get(reverse("fabric:hosts")).status_code == 200


def test_it_gives_the_highest_role_of_several(client, directory):
    sign_in(client, "otto")
    assert role("otto") == Role.OPERATOR


def test_it_signs_in_a_user_in_no_console_group_without_a_role(client, directory):
    assert sign_in(client, "nobody").status_code == 302
    assert role("nobody") is None
    response = client.get(reverse("fabric:hosts"))
    assert response.status_code == 403
    assert "no role" in response.content.decode()


def test_it_follows_group_changes_at_each_sign_in(client, slapd, directory):
    olga = f"uid=olga,{d.PEOPLE}"
    sign_in(client, "olga")
    assert role("olga") == Role.OPERATOR
    slapd.remove_member(d.OPERATORS, olga)
    slapd.add_member(d.VIEWERS, olga)
    try:
        client.logout()
        sign_in(client, "olga")
        assert role("olga") == Role.VIEWER
        slapd.remove_member(d.VIEWERS, olga)
        client.logout()
        sign_in(client, "olga")
        assert role("olga") is None
    finally:
        slapd.add_member(d.OPERATORS, olga)
    client.logout()
    sign_in(client, "olga")
    assert role("olga") == Role.OPERATOR


def test_it_leaves_groups_that_are_no_roles_alone(client, directory):
    from django.contrib.auth.models import Group

    sign_in(client, "olga")
    user = User.objects.get(username="olga")
    user.groups.add(Group.objects.create(name="Night shift"))
    client.logout()
    sign_in(client, "olga")
    assert set(user.groups.values_list("name", flat=True)) == {"Operator", "Night shift"}


def test_it_refuses_a_directory_user_an_administrator_made_inactive(client, directory):
    sign_in(client, "olga")
    User.objects.filter(username="olga").update(is_active=False)
    client.logout()
    response = sign_in(client, "olga")
    assert response.status_code == 200
    assert "This account is inactive." in response.content.decode()


def test_it_refuses_a_wrong_password(client, directory):
    response = sign_in(client, "olga", "not-her-password")
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert not User.objects.filter(username="olga").exists()


def test_it_refuses_a_user_the_directory_does_not_know(client, directory):
    response = sign_in(client, "mallory")
    assert "correct username and password" in response.content.decode()
    assert not User.objects.filter(username="mallory").exists()


def test_it_says_the_directory_does_not_answer_and_local_accounts_still_sign_in(client, slapd, directory, admin_user):
    with slapd.down():
        response = sign_in(client, "olga")
        assert response.status_code == 200
        assert "The directory does not answer; local accounts can still sign in." in response.content.decode()
        german = client.post(
            reverse("login"), {"username": "olga", "password": d.PASSWORD}, headers={"accept-language": "de"}
        )
        assert "Der Verzeichnisdienst antwortet nicht" in german.content.decode()
        assert sign_in(client, "admin", "admin-pass-123").status_code == 302
    assert role("admin") == Role.ADMINISTRATOR


def test_it_gives_up_on_a_directory_that_accepts_and_never_answers(client, directory):
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen()  # connections complete in the kernel's backlog; nothing ever answers
        directory(uri=f"ldap://127.0.0.1:{hung.getsockname()[1]}", AUTH_LDAP_TIMEOUT="1", **OPENLDAP)
        response = sign_in(client, "olga")
    assert response.status_code == 200
    assert "The directory does not answer" in response.content.decode()


def test_it_says_the_directory_refused_its_query_when_the_bind_user_is_refused(client, directory, caplog):
    directory(**{**OPENLDAP, "AUTH_LDAP_BIND_PASSWORD": "wrong-bind-secret"})
    with caplog.at_level(logging.DEBUG):
        response = sign_in(client, "olga")
    assert "The directory refused the console&#x27;s query" in response.content.decode()
    assert "wrong-bind-secret" not in caplog.text  # the bind password is never logged


def test_it_never_takes_over_a_local_account(client, directory, django_user_model):
    django_user_model.objects.create_user("olga", password="local-pass-123")
    assert "correct username and password" in sign_in(client, "olga").content.decode()
    assert sign_in(client, "olga", "local-pass-123").status_code == 302
    assert role("olga") is None  # the directory's groups give a local account nothing


def test_it_signs_in_by_binding_as_the_user(client, directory):
    directory(
        AUTH_LDAP_USER_DN_TEMPLATE=f"uid=%(user)s,{d.PEOPLE}",
        AUTH_LDAP_GROUP_SEARCH_BASE=d.GROUPS,
        AUTH_LDAP_OPERATOR_GROUP=d.OPERATORS,
        AUTH_LDAP_ADMINISTRATOR_GROUP=d.ADMINISTRATORS,
    )
    assert "correct username and password" in sign_in(client, "olga", "wrong").content.decode()
    assert sign_in(client, "adam").status_code == 302
    assert role("adam") == Role.ADMINISTRATOR


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_it_signs_in_over_tls_with_the_directory_s_ca(client, slapd, directory, tls):
    uri = slapd.ldaps_uri if tls == "ldaps" else slapd.uri
    directory(uri=uri, AUTH_LDAP_START_TLS=str(tls == "starttls"), AUTH_LDAP_CA_FILE=str(slapd.ca_file), **OPENLDAP)
    assert sign_in(client, "olga").status_code == 302
    assert role("olga") == Role.OPERATOR


@pytest.mark.parametrize("tls", ["starttls", "ldaps"])
def test_it_does_not_trust_a_directory_certificate_from_another_ca(client, slapd, directory, tls, tmp_path):
    from fabric.emulator.tls import ensure_certificates

    other_ca = ensure_certificates(tmp_path, ["localhost"], ["127.0.0.1"])[0]
    uri = slapd.ldaps_uri if tls == "ldaps" else slapd.uri
    directory(uri=uri, AUTH_LDAP_START_TLS=str(tls == "starttls"), AUTH_LDAP_CA_FILE=str(other_ca), **OPENLDAP)
    response = sign_in(client, "olga")
    assert response.status_code == 200
    assert "The directory does not answer, or its certificate is not trusted" in response.content.decode()
    assert not User.objects.filter(username="olga").exists()


@pytest.mark.parametrize("group_type", ["activedirectory", "memberof"])
def test_it_signs_in_with_an_active_directory_layout(client, directory, group_type):
    directory(AUTH_LDAP_GROUP_TYPE=group_type, **ACTIVE_DIRECTORY)
    for name, expected in (
        ("aadmin", Role.ADMINISTRATOR),  # through Tier0 Admins, a group inside Console Admins
        ("ooperator", Role.OPERATOR),
        ("vviewer", Role.VIEWER),
        ("nnobody", None),
    ):
        assert sign_in(client, name).status_code == 302, name
        assert role(name) == expected, name
        client.logout()
    assert "correct username and password" in sign_in(client, "aadmin", "wrong").content.decode()


def test_passwords_are_never_logged_nor_audited(client, directory, caplog):
    wrong = "Wr0ng-Directory-Pa55"
    with caplog.at_level(logging.DEBUG):
        sign_in(client, "olga")
        client.logout()
        sign_in(client, "olga", wrong)
    trail = repr(list(AuditEvent.objects.values()))
    for secret in (d.PASSWORD, d.BIND_PASSWORD, wrong):
        assert secret not in caplog.text
        assert secret not in trail
