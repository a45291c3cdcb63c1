"""The websocket Origin check: a page may open a websocket only to the origin it was served from.

channels' AllowedHostsOriginValidator compares only the Origin's host name with ALLOWED_HOSTS, so a
page served by another service on the same host (another port, or plain HTTP) could open the
console's websockets with the operator's session cookie. This validator requires the Origin to be
the request's own origin: same scheme, host and port, as Django's CSRF check does for forms. The
host must still be one of ALLOWED_HOSTS (channels does not check the Host header of a websocket).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if it is not one."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None  # a port that is not a number or out of range
    if not parts.hostname or port is None or parts.username is not None or parts.path or parts.query:
        return None
    return parts.scheme, parts.hostname.lower(), port


def _is_secure(scope: dict, headers: dict[bytes, bytes]) -> bool:
    """As Django's HttpRequest.is_secure: the trusted proxy header wins, else the connection's scheme."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure_value = proxy
        value = headers.get(name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin1"))
        if value is not None:
            return value.decode("latin1").split(",")[0].strip() == secure_value
    return scope.get("scheme", "ws") == "wss"


def _allowed_hosts() -> list[str]:
    if settings.DEBUG and not settings.ALLOWED_HOSTS:
        return [".localhost", "127.0.0.1", "[::1]"]  # as Django's HttpRequest.get_host
    return settings.ALLOWED_HOSTS


def same_origin(scope: dict) -> bool:
    headers = dict(scope.get("headers", []))
    origin, host = headers.get(b"origin"), headers.get(b"host")
    if not origin or not host:
        return False
    host_text = host.decode("latin1")
    if not validate_host(split_domain_port(host_text)[0], _allowed_hosts()):
        return False
    own = _origin("https" if _is_secure(scope, headers) else "http", host_text)
    scheme, _, netloc = origin.decode("latin1").partition("://")
    return own is not None and _origin(scheme.lower(), netloc) == own


class SameOriginValidator:
    """ASGI middleware for websockets: refuses (closes) a connection whose Origin is not the request's."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if same_origin(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
