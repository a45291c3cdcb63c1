"""console.fanout: one subscription of the inner layer per process and group, copied to every
local consumer; across processes through the real inner layer (Redis here)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from console.fanout import FanoutChannelLayer
from tests.conftest import need
from tests.console.test_services import REDIS_URL
from tests.services import redis_up

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}


async def receive(layer, channel, timeout=5):
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_it_delivers_a_group_message_to_every_local_consumer_through_one_inner_subscription():
    layer = FanoutChannelLayer(layer=IN_MEMORY)
    pages = [await layer.new_channel() for _ in range(50)]
    for page in pages:
        await layer.group_add("jobs", page)

    await layer.group_send("jobs", {"type": "jobs.update", "html": "<tr>"})

    for page in pages:
        assert await receive(layer, page) == {"type": "jobs.update", "html": "<tr>"}
    assert len(layer.inner.groups["jobs"]) == 1  # one stored copy per process, not one per page


async def test_a_page_that_left_gets_nothing_and_the_last_one_leaving_unsubscribes_the_process():
    layer = FanoutChannelLayer(layer=IN_MEMORY)
    staying, leaving = await layer.new_channel(), await layer.new_channel()
    for page in (staying, leaving):
        await layer.group_add("job-7", page)
    await layer.group_discard("job-7", leaving)

    await layer.group_send("job-7", {"type": "job.update", "sequence": 1})

    assert await receive(layer, staying) == {"type": "job.update", "sequence": 1}
    with pytest.raises(TimeoutError):
        await receive(layer, leaving, timeout=0.3)
    await layer.group_discard("job-7", staying)
    assert "job-7" not in layer.inner.groups


async def test_a_consumer_that_ends_leaves_no_queue_behind():
    layer = FanoutChannelLayer(layer=IN_MEMORY)
    joined, refused = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("jobs", joined)
    readers = [asyncio.ensure_future(layer.receive(c)) for c in (joined, refused)]
    await asyncio.sleep(0.05)

    await layer.group_discard("jobs", joined)  # the page closed; the other was never let in
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)

    assert layer._queues == {} and not layer._groups


async def test_a_page_that_does_not_read_loses_its_own_messages_only():
    layer = FanoutChannelLayer(layer=IN_MEMORY, capacity=3)
    stuck, reading = await layer.new_channel(), await layer.new_channel()
    for page in (stuck, reading):
        await layer.group_add("jobs", page)

    for n in range(6):
        await layer.group_send("jobs", {"type": "jobs.update", "n": n})
        assert (await receive(layer, reading))["n"] == n

    assert [(await receive(layer, stuck))["n"] for _ in range(3)] == [0, 1, 2]


async def test_it_fans_out_across_processes_through_redis():
    need(redis_up(REDIS_URL), "Redis at 127.0.0.1:6379")
    inner = {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    web, worker = FanoutChannelLayer(layer=inner), FanoutChannelLayer(layer=inner)  # as two processes
    group = f"jobs-{uuid.uuid4().hex}"
    pages = [await web.new_channel() for _ in range(20)]
    try:
        for page in pages:
            await web.group_add(group, page)
        await worker.group_send(group, {"type": "jobs.update", "job_id": 3})
        for page in pages:
            assert await receive(web, page) == {"type": "jobs.update", "job_id": 3}
        assert await web.inner.connection(0).zcard(web.inner._group_key(group)) == 1
    finally:
        for page in pages:
            await web.group_discard(group, page)
        await web.close()
        await worker.close()


async def test_a_direct_handler_takes_the_messages_in_order_waits_for_what_it_asks_or_leaves_them_queued():
    layer = FanoutChannelLayer(layer=IN_MEMORY)
    direct, declining, plain = await layer.new_channel(), await layer.new_channel(), await layer.new_channel()
    render = asyncio.get_running_loop().create_future()
    taken = []

    def take(message):
        if message["n"] == 0 and not render.done():
            return render  # e.g. a render the pages share: the layer waits, then asks again
        taken.append(message["n"])
        return True

    layer.deliver_directly(direct, take)
    layer.deliver_directly(declining, lambda message: False)
    for page in (direct, declining, plain):
        await layer.group_add("jobs", page)

    for n in range(3):
        await layer.group_send("jobs", {"type": "jobs.update", "n": n})
    await asyncio.sleep(0.05)
    assert taken == []  # the first message waits for its render, the later ones behind it
    render.set_result(None)
    await asyncio.sleep(0.05)

    assert taken == [0, 1, 2]
    for page in (declining, plain):
        assert [(await receive(layer, page))["n"] for _ in range(3)] == [0, 1, 2]
    assert direct not in layer._queues  # nothing was queued for it
    await layer.group_discard("jobs", direct)
    assert direct not in layer._handlers
    await layer.close()
