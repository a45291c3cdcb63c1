"""A worker's announcements on the Redis channel layer, as in a scaled-out deployment."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from redis.asyncio.connection import AbstractConnection

from migrations_ui.jobs import emit
from tests.conftest import need
from tests.services import redis_for_worker, redis_up

REDIS_URL = redis_for_worker("redis://127.0.0.1:6379/9")


@pytest.fixture
def layer(monkeypatch):
    need(redis_up(REDIS_URL), "Redis at 127.0.0.1:6379")
    layer = RedisChannelLayer(hosts=[REDIS_URL])
    monkeypatch.setattr(emit, "get_channel_layer", lambda: layer)
    return layer


def test_a_workers_updates_share_one_redis_connection_and_arrive(layer, monkeypatch):
    """Sent from a worker's announcement thread, 20 updates open one connection to Redis (with a new
    event loop per update, channels_redis opened and closed one per update), and each arrives."""
    connects = []
    connect = AbstractConnection.connect

    async def counted(self, *args, **kwargs):
        if not self.is_connected:  # redis-py calls connect() before every command
            connects.append(self)
        return await connect(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "connect", counted)
    group = f"job-{uuid.uuid4().hex}"
    receiver = RedisChannelLayer(hosts=[REDIS_URL])

    async def listen():
        channel = await receiver.new_channel()
        await receiver.group_add(group, channel)
        return channel

    listening = asyncio.new_event_loop()
    try:
        channel = listening.run_until_complete(listen())
        receiving = len(connects)

        def announce_twenty():
            for sequence in range(20):
                emit._send("test", [(group, {"type": "job.changed", "job_id": 1, "sequence": sequence})])

        sender = threading.Thread(target=announce_twenty, name="announce")
        sender.start()
        sender.join(30)
        assert len(connects) - receiving == 1

        async def read_all():
            return [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(20)]

        received = listening.run_until_complete(read_all())
        assert [message["sequence"] for message in received] == list(range(20))
        listening.run_until_complete(receiver.group_discard(group, channel))
    finally:
        listening.run_until_complete(receiver.close_pools())
        listening.close()
