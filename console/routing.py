"""Websocket routes of every app, gathered in one place for the ASGI factory."""

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from migrations_ui.live.consumers import NO_SUCH_JOB, BatchConsumer, JobConsumer, JobsConsumer


class NoSuchPath(AsyncWebsocketConsumer):
    """Any other path: accepted and closed with 4404, as an unknown job is. Without it URLRouter
    raises "No route found", which the server logs as an error and the browser sees as 1006."""

    async def connect(self):
        await self.accept()
        await self.close(code=NO_SUCH_JOB)


websocket_urlpatterns: list = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/batches/<int:batch_id>/", BatchConsumer.as_asgi()),
    re_path(r"", NoSuchPath.as_asgi()),  # last: every path the routes above do not take
]
