"""Directory sign-in (LDAP, Active Directory) from the environment: the AUTH_LDAP_* settings of
django-auth-ldap, and the three directory groups that give the console's roles. Off (no settings)
unless AUTH_LDAP_SERVER_URI is set; README "Directory sign-in" documents each variable.

python-ldap and django-auth-ldap are imported only when it is on: they build against OpenLDAP's
headers (requirements-ldap.txt), and a console without a directory needs neither."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from console.env import ConfigError, parse_bool, parse_choice, parse_file, parse_int

BACKEND = "access.directory.DirectoryBackend"
ROLE_SETTINGS = ("AUTH_LDAP_VIEWER_GROUP", "AUTH_LDAP_OPERATOR_GROUP", "AUTH_LDAP_ADMINISTRATOR_GROUP")
# Where each kind of directory keeps its groups, and how they name their members.
GROUP_TYPES = ("groupofnames", "activedirectory", "memberof")
GROUP_FILTERS = {
    "groupofnames": "(objectClass=groupOfNames)",
    "activedirectory": "(objectClass=group)",
    "memberof": "(objectClass=*)",  # not searched: the user's and the groups' memberOf say it all
}


def _text(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def _server_uri(name: str, raw: str) -> str:
    uris = raw.split()
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(
                f"{name}={raw!r}: give ldap://host[:port] or ldaps://host[:port] (several separated by spaces)"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise ConfigError(f"{name}={raw!r} has an invalid port") from None
    return " ".join(uris)


def _dn(name: str, raw: str) -> str:
    import ldap.dn

    if raw and not ldap.dn.is_dn(raw):
        raise ConfigError(f"{name}={raw!r} is not a distinguished name (e.g. cn=ops,ou=groups,dc=corp,dc=example)")
    return raw


def _with_user(name: str, raw: str, example: str) -> str:
    if "%(user)s" not in raw:
        raise ConfigError(f"{name}={raw!r} must contain %(user)s where the sign-in name goes, e.g. {example}")
    try:
        raw % {"user": "x"}
    except (KeyError, ValueError, TypeError):
        raise ConfigError(f"{name}={raw!r}: only %(user)s may follow a % (write %% for a percent sign)") from None
    return raw


def ldap_settings(environ: Mapping[str, str]) -> dict:
    """The AUTH_LDAP_* settings (and AUTHENTICATION_BACKENDS' directory backend) for the environment;
    {} when AUTH_LDAP_SERVER_URI is unset. Raises ConfigError naming the variable on a bad value."""
    raw_uri = _text(environ, "AUTH_LDAP_SERVER_URI")
    if not raw_uri:
        return {}
    uri = _server_uri("AUTH_LDAP_SERVER_URI", raw_uri)
    try:
        import ldap
        from django_auth_ldap.config import (
            LDAPSearch,
            NestedActiveDirectoryGroupType,
            NestedGroupOfNamesType,
        )

        from access.directory_types import NestedMemberOfGroupType
    except ImportError:
        raise ConfigError(
            "AUTH_LDAP_SERVER_URI is set but python-ldap and django-auth-ldap are not installed: "
            "apt-get install libldap2-dev libsasl2-dev gcc python3-dev, then make setup (requirements-ldap.txt)"
        ) from None

    start_tls = parse_bool("AUTH_LDAP_START_TLS", environ.get("AUTH_LDAP_START_TLS"), default=False)
    if start_tls and "ldaps://" in uri:
        raise ConfigError("AUTH_LDAP_START_TLS is on with an ldaps:// URI: use one or the other")
    ca_file = parse_file("AUTH_LDAP_CA_FILE", environ.get("AUTH_LDAP_CA_FILE"))
    timeout = parse_int("AUTH_LDAP_TIMEOUT", environ.get("AUTH_LDAP_TIMEOUT"), default=5, minimum=1)
    bind_dn = _dn("AUTH_LDAP_BIND_DN", _text(environ, "AUTH_LDAP_BIND_DN"))
    bind_password = environ.get("AUTH_LDAP_BIND_PASSWORD") or ""
    if bind_password and not bind_dn:
        raise ConfigError("AUTH_LDAP_BIND_PASSWORD is set without AUTH_LDAP_BIND_DN")
    template = _text(environ, "AUTH_LDAP_USER_DN_TEMPLATE")
    if template:
        _with_user("AUTH_LDAP_USER_DN_TEMPLATE", template, "uid=%(user)s,ou=people,dc=corp,dc=example")
    search_base = _dn("AUTH_LDAP_USER_SEARCH_BASE", _text(environ, "AUTH_LDAP_USER_SEARCH_BASE"))
    search_filter = _with_user(
        "AUTH_LDAP_USER_SEARCH_FILTER",
        _text(environ, "AUTH_LDAP_USER_SEARCH_FILTER") or "(uid=%(user)s)",
        "(sAMAccountName=%(user)s)",
    )
    if not template and not search_base:
        raise ConfigError(
            "AUTH_LDAP_SERVER_URI is set: give AUTH_LDAP_USER_SEARCH_BASE (with AUTH_LDAP_BIND_DN, or anonymous "
            "search) or AUTH_LDAP_USER_DN_TEMPLATE (direct bind)"
        )
    if template and "=" not in template and not search_base:
        # A user principal name (%(user)s@corp.example) binds but is no DN to read the user's entry at.
        raise ConfigError(
            f"AUTH_LDAP_USER_DN_TEMPLATE={template!r} is no DN: give AUTH_LDAP_USER_SEARCH_BASE too, where "
            "the user's entry is found after the bind"
        )
    group_type = parse_choice("AUTH_LDAP_GROUP_TYPE", environ.get("AUTH_LDAP_GROUP_TYPE"), GROUP_TYPES, "groupofnames")
    group_base = _dn("AUTH_LDAP_GROUP_SEARCH_BASE", _text(environ, "AUTH_LDAP_GROUP_SEARCH_BASE"))
    if not group_base and group_type != "memberof":
        raise ConfigError(f"AUTH_LDAP_GROUP_TYPE={group_type}: give AUTH_LDAP_GROUP_SEARCH_BASE, where the groups are")
    roles = {name: _dn(name, _text(environ, name)) for name in ROLE_SETTINGS}
    if not any(roles.values()):
        raise ConfigError(f"AUTH_LDAP_SERVER_URI is set: give at least one of {', '.join(ROLE_SETTINGS)} (group DNs)")

    attrlist = ["*", "memberOf"] if group_type == "memberof" else None
    options = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,  # connecting
        ldap.OPT_TIMEOUT: timeout,  # each answer: a directory that accepts and hangs cannot hang sign-in
        ldap.OPT_REFERRALS: 0,  # AD's referrals would be followed anonymously, and fail
    }
    if ca_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_file
    options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
    options[ldap.OPT_X_TLS_NEWCTX] = 0  # last: the TLS options above take effect for this connection
    group_types = {
        "groupofnames": NestedGroupOfNamesType,
        "activedirectory": NestedActiveDirectoryGroupType,
        "memberof": NestedMemberOfGroupType,
    }
    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": options,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        "AUTH_LDAP_USER_DN_TEMPLATE": template or None,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(search_base, ldap.SCOPE_SUBTREE, search_filter, attrlist)
        if search_base
        else None,
        "AUTH_LDAP_USER_ATTRLIST": attrlist,
        # Direct bind: the user's own bind reads their entry and groups (AD refuses anonymous reads),
        # and a UPN bind finds the real DN by the user search afterwards.
        "AUTH_LDAP_BIND_AS_AUTHENTICATING_USER": bool(template),
        "AUTH_LDAP_REFRESH_DN_ON_BIND": bool(template and search_base),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_GROUP_TYPE": group_types[group_type](),
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(group_base, ldap.SCOPE_SUBTREE, GROUP_FILTERS.get(group_type)),
        **roles,
    }
