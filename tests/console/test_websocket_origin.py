"""The websocket Origin must be the request's own origin: scheme, host and port (issue 17)."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from console.asgi import build_application
from console.websocket_origin import same_origin
from tests.migrations_ui.live.test_consumers import session_cookie


def scope(origin: str | None, host: str = "testserver:8000", scheme: str = "ws", **headers) -> dict:
    raw = [(b"host", host.encode())] + [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    if origin is not None:
        raw.append((b"origin", origin.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": raw}


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://testserver:8000", "testserver:8000", "ws"),
        ("http://TestServer:8000", "testserver:8000", "ws"),
        ("http://testserver", "testserver", "ws"),
        ("http://testserver:80", "testserver", "ws"),  # the scheme's default port, written out
        ("https://testserver", "testserver", "wss"),
        ("http://[::1]:8000", "[::1]:8000", "ws"),
    ],
)
def test_the_consoles_own_origin_is_accepted(settings, origin, host, scheme):
    settings.ALLOWED_HOSTS = ["testserver", "[::1]"]

    assert same_origin(scope(origin, host, scheme))


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("http://testserver:8001", "testserver:8000", "ws"),  # the right host on another port
        ("http://testserver", "testserver:8000", "ws"),
        ("https://testserver:8000", "testserver:8000", "ws"),  # another scheme
        ("http://testserver", "testserver", "wss"),
        ("http://evil.example:8000", "testserver:8000", "ws"),
        ("http://evil.example:8000", "evil.example:8000", "ws"),  # consistent, but not an allowed host
        ("null", "testserver:8000", "ws"),
        ("http://testserver:8000/path", "testserver:8000", "ws"),
        ("http://user@testserver:8000", "testserver:8000", "ws"),
        ("http://testserver:99999", "testserver:99999", "ws"),
        (None, "testserver:8000", "ws"),
    ],
)
def test_any_other_origin_is_refused(settings, origin, host, scheme):
    settings.ALLOWED_HOSTS = ["testserver"]

    assert not same_origin(scope(origin, host, scheme))


def test_behind_the_tls_proxy_the_forwarded_scheme_counts(settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert same_origin(scope("https://testserver", "testserver", x_forwarded_proto="https"))
    assert not same_origin(scope("http://testserver", "testserver", x_forwarded_proto="https"))


async def _accepted(origin: str, host: str, cookie: str) -> bool:
    headers = [(b"origin", origin.encode()), (b"host", host.encode()), (b"cookie", cookie.encode())]
    communicator = WebsocketCommunicator(build_application(), "/ws/jobs/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_stack_refuses_the_right_host_on_another_port(settings, admin_user):
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    cookie = await database_sync_to_async(session_cookie)(admin_user)

    assert await _accepted("http://testserver:8000", "testserver:8000", cookie)
    assert not await _accepted("http://testserver:8001", "testserver:8000", cookie)
    assert not await _accepted("https://testserver:8000", "testserver:8000", cookie)
