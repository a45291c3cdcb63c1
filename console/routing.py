"""Websocket routes of every app, gathered in one place for the ASGI factory."""

from django.urls import path

from migrations_ui.consumers import BatchConsumer, JobConsumer, JobsConsumer

websocket_urlpatterns: list = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/batches/<int:batch_id>/", BatchConsumer.as_asgi()),
]
