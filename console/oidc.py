"""Single sign-on with OpenID Connect (Entra ID, Keycloak, AD FS, Okta...) from the environment: the
OIDC_* settings of mozilla-django-oidc, and the three groups that give the console's roles. Off (no
settings) unless OIDC_RP_CLIENT_ID is set; README "Single sign-on (OpenID Connect)" documents each
variable. It sits beside directory sign-in (console/directory.py) and local accounts: the sign-in
page offers the provider as a button, and the password form stays.

The provider's endpoints are given, not discovered: a console that fetched its sign-in settings from
the network at start-up would not start while the provider is down, and local accounts must."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from console.env import ConfigError, parse_file, parse_int

BACKEND = "access.oidc.OIDCBackend"
ROLE_SETTINGS = ("OIDC_VIEWER_GROUP", "OIDC_OPERATOR_GROUP", "OIDC_ADMINISTRATOR_GROUP")
ENDPOINTS = (
    "OIDC_OP_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT",
)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# RS256 is what every provider signs with by default; HS256 would make the client secret the key.
SIGN_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256")


def _text(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def _url(name: str, raw: str) -> str:
    """An https URL; plain http only on loopback (a provider on this machine, or the tests')."""
    if not raw:
        raise ConfigError(f"OIDC_RP_CLIENT_ID is set: give {name} (the provider's discovery document lists it)")
    parts = urlsplit(raw)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    if not parts.hostname or not secure:
        raise ConfigError(f"{name}={raw!r}: give an https:// URL (http only on loopback)")
    return raw


def oidc_settings(environ: Mapping[str, str]) -> dict:
    """The OIDC_* settings (for mozilla-django-oidc and access/oidc.py) for the environment; {} when
    OIDC_RP_CLIENT_ID is unset. Raises ConfigError naming the variable on a bad or missing value."""
    client_id = _text(environ, "OIDC_RP_CLIENT_ID")
    if not client_id:
        return {}
    secret = environ.get("OIDC_RP_CLIENT_SECRET") or ""
    if not secret:
        raise ConfigError("OIDC_RP_CLIENT_ID is set: give OIDC_RP_CLIENT_SECRET (the console is a confidential client)")
    endpoints = {name: _url(name, _text(environ, name)) for name in ENDPOINTS}
    issuer = _url("OIDC_OP_ISSUER", _text(environ, "OIDC_OP_ISSUER"))
    algorithm = _text(environ, "OIDC_RP_SIGN_ALGO") or "RS256"
    if algorithm not in SIGN_ALGORITHMS:
        raise ConfigError(f"OIDC_RP_SIGN_ALGO={algorithm!r}: give one of {', '.join(SIGN_ALGORITHMS)}")
    scopes = _text(environ, "OIDC_RP_SCOPES") or "openid email profile"
    if "openid" not in scopes.split():
        raise ConfigError(f"OIDC_RP_SCOPES={scopes!r} must include openid")
    roles = {name: _text(environ, name) for name in ROLE_SETTINGS}
    if not any(roles.values()):
        raise ConfigError(f"OIDC_RP_CLIENT_ID is set: give at least one of {', '.join(ROLE_SETTINGS)} (group names)")
    ca_file = parse_file("OIDC_CA_FILE", environ.get("OIDC_CA_FILE"))
    return {
        "OIDC_RP_CLIENT_ID": client_id,
        "OIDC_RP_CLIENT_SECRET": secret,
        "OIDC_OP_ISSUER": issuer,
        **endpoints,
        "OIDC_RP_SIGN_ALGO": algorithm,
        "OIDC_RP_SCOPES": scopes,
        "OIDC_USERNAME_CLAIM": _text(environ, "OIDC_USERNAME_CLAIM") or "preferred_username",
        "OIDC_GROUPS_CLAIM": _text(environ, "OIDC_GROUPS_CLAIM") or "groups",
        "OIDC_PROVIDER_NAME": _text(environ, "OIDC_PROVIDER_NAME") or "single sign-on",
        # requests takes a CA bundle's path where it takes True: the provider's own CA, if private.
        "OIDC_VERIFY_SSL": ca_file or True,
        "OIDC_TIMEOUT": parse_int("OIDC_TIMEOUT", environ.get("OIDC_TIMEOUT"), default=5, minimum=1),
        "OIDC_USE_PKCE": True,
        **roles,
    }
