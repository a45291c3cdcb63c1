"""Websocket routes of every app, gathered in one place for the ASGI factory."""

websocket_urlpatterns: list = []
