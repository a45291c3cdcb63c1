"""ASGI entry point. The application is built in a factory so tests can build a fresh one.
Websockets are accepted only from the console's own origin (scheme, host and port: see
console.websocket_origin)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
django_asgi_app = get_asgi_application()


def build_application():
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter

    from console.routing import websocket_urlpatterns
    from console.websocket_origin import SameOriginValidator

    return ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )


application = build_application()
