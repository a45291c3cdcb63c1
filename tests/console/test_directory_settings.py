"""Directory sign-in's settings from the environment (console/directory.py): off unless a server is
named; every bad value stops start-up with a message naming the variable."""

import pytest

from console import directory
from console.env import ConfigError
from tests.access.slapd import missing
from tests.conftest import need

BASE = {
    "AUTH_LDAP_SERVER_URI": "ldaps://dc1.corp.example ldaps://dc2.corp.example:636",
    "AUTH_LDAP_BIND_DN": "cn=svc-console,cn=Users,dc=corp,dc=example",
    "AUTH_LDAP_BIND_PASSWORD": "bind-secret",
    "AUTH_LDAP_USER_SEARCH_BASE": "dc=corp,dc=example",
    "AUTH_LDAP_GROUP_SEARCH_BASE": "dc=corp,dc=example",
    "AUTH_LDAP_OPERATOR_GROUP": "cn=Console Operators,cn=Users,dc=corp,dc=example",
}


@pytest.fixture(autouse=True)
def python_ldap():
    need(not any("python-ldap" in absent for absent in missing()), "python-ldap and django-auth-ldap")


def test_it_is_off_without_a_server():
    assert directory.ldap_settings({}) == {}
    assert directory.ldap_settings({"AUTH_LDAP_SERVER_URI": " ", "AUTH_LDAP_BIND_DN": "x"}) == {}


def test_it_reads_a_bind_user_and_search_configuration():
    import ldap

    config = directory.ldap_settings({**BASE, "AUTH_LDAP_TIMEOUT": "3", "AUTH_LDAP_GROUP_TYPE": "ActiveDirectory"})
    assert config["AUTH_LDAP_SERVER_URI"] == "ldaps://dc1.corp.example ldaps://dc2.corp.example:636"
    assert config["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert config["AUTH_LDAP_GROUP_SEARCH"].filterstr == "(objectClass=group)"
    assert type(config["AUTH_LDAP_GROUP_TYPE"]).__name__ == "NestedActiveDirectoryGroupType"
    assert config["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_NETWORK_TIMEOUT] == 3
    assert config["AUTH_LDAP_CONNECTION_OPTIONS"][ldap.OPT_X_TLS_REQUIRE_CERT] == ldap.OPT_X_TLS_DEMAND
    assert config["AUTH_LDAP_BIND_AS_AUTHENTICATING_USER"] is False
    assert config["AUTH_LDAP_VIEWER_GROUP"] == ""


def test_it_reads_a_direct_bind_with_a_user_principal_name():
    config = directory.ldap_settings(
        {
            "AUTH_LDAP_SERVER_URI": "ldap://dc1.corp.example",
            "AUTH_LDAP_START_TLS": "yes",
            "AUTH_LDAP_USER_DN_TEMPLATE": "%(user)s@corp.example",
            "AUTH_LDAP_USER_SEARCH_BASE": "dc=corp,dc=example",
            "AUTH_LDAP_USER_SEARCH_FILTER": "(sAMAccountName=%(user)s)",
            "AUTH_LDAP_GROUP_TYPE": "memberof",
            "AUTH_LDAP_ADMINISTRATOR_GROUP": "CN=Console Admins, CN=Users, DC=corp, DC=example",
        }
    )
    assert config["AUTH_LDAP_START_TLS"] is True
    assert config["AUTH_LDAP_BIND_AS_AUTHENTICATING_USER"] is True
    assert config["AUTH_LDAP_REFRESH_DN_ON_BIND"] is True
    assert config["AUTH_LDAP_USER_ATTRLIST"] == ["*", "memberOf"]


def test_settings_put_the_directory_before_local_accounts(settings):
    # Off by default: the test run's own settings name no directory.
    assert settings.AUTHENTICATION_BACKENDS == ["django.contrib.auth.backends.ModelBackend"]


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"AUTH_LDAP_SERVER_URI": "http://dc1.corp.example"}, "AUTH_LDAP_SERVER_URI"),
        ({"AUTH_LDAP_SERVER_URI": "ldap://dc1.corp.example:99999"}, "AUTH_LDAP_SERVER_URI"),
        ({"AUTH_LDAP_SERVER_URI": "ldap://"}, "AUTH_LDAP_SERVER_URI"),
        ({"AUTH_LDAP_START_TLS": "maybe"}, "AUTH_LDAP_START_TLS"),
        ({"AUTH_LDAP_START_TLS": "1"}, "AUTH_LDAP_START_TLS"),  # with ldaps://
        ({"AUTH_LDAP_CA_FILE": "/nonexistent/ca.pem"}, "AUTH_LDAP_CA_FILE"),
        ({"AUTH_LDAP_TIMEOUT": "0"}, "AUTH_LDAP_TIMEOUT"),
        ({"AUTH_LDAP_BIND_DN": "svc-console"}, "AUTH_LDAP_BIND_DN"),
        ({"AUTH_LDAP_BIND_DN": ""}, "AUTH_LDAP_BIND_PASSWORD"),
        ({"AUTH_LDAP_USER_SEARCH_FILTER": "(uid=admin)"}, "AUTH_LDAP_USER_SEARCH_FILTER"),
        ({"AUTH_LDAP_USER_SEARCH_FILTER": "(uid=%(user)s%d)"}, "AUTH_LDAP_USER_SEARCH_FILTER"),
        ({"AUTH_LDAP_USER_SEARCH_BASE": ""}, "AUTH_LDAP_SERVER_URI"),
        ({"AUTH_LDAP_USER_DN_TEMPLATE": "uid=admin,dc=corp"}, "AUTH_LDAP_USER_DN_TEMPLATE"),
        ({"AUTH_LDAP_GROUP_TYPE": "posix"}, "AUTH_LDAP_GROUP_TYPE"),
        ({"AUTH_LDAP_GROUP_SEARCH_BASE": ""}, "AUTH_LDAP_GROUP_TYPE"),
        ({"AUTH_LDAP_OPERATOR_GROUP": ""}, "AUTH_LDAP_SERVER_URI"),
        ({"AUTH_LDAP_VIEWER_GROUP": "Console Viewers"}, "AUTH_LDAP_VIEWER_GROUP"),
    ],
)
def test_it_rejects_a_bad_value_naming_the_variable(change, variable):
    with pytest.raises(ConfigError, match=rf"^{variable}\b") as refused:
        directory.ldap_settings({**BASE, **change})
    assert "bind-secret" not in str(refused.value)


def test_it_wants_a_search_base_with_a_user_principal_name_template():
    with pytest.raises(ConfigError, match=r"^AUTH_LDAP_USER_DN_TEMPLATE="):
        directory.ldap_settings(
            {
                "AUTH_LDAP_SERVER_URI": "ldap://dc1.corp.example",
                "AUTH_LDAP_USER_DN_TEMPLATE": "%(user)s@corp.example",
                "AUTH_LDAP_GROUP_TYPE": "memberof",
                "AUTH_LDAP_OPERATOR_GROUP": "cn=ops,dc=corp,dc=example",
            }
        )
