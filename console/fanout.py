"""A channel layer that subscribes each process once per group and fans messages out locally.

Every open Jobs page is a consumer in the `jobs` group. Given to the SQLite or Redis layer as they
are, one update becomes one stored message per open page, each fetched on its own (channels_lite:
a row written and two queries per page; channels_redis: a list entry and a round trip per page),
so latency grows with the number of pages (bench/jobs.py: p50 about 0.5 s with 100 pages on
SQLite). Wrapped in this layer, the process's consumers share one channel of the inner layer per
process: a group message is stored and fetched once per web process, then copied into each local
consumer's queue in memory.

Configure it around the real layer (console/settings.py):
    {"BACKEND": "console.fanout.FanoutChannelLayer",
     "CONFIG": {"layer": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {...}}}}
Every process of a deployment must use it (the messages it sends to a group are wrapped).

A local consumer may also take its group messages directly (`deliver_directly`): the process's pages
then get an update from one task, the lane, instead of each page's task waking up for it (a queue,
channels' await_many_dispatch, a new task per receive). At 500 pages that cut the web process's CPU
per frame by 17-33% (bench/RESULTS.md, "Several web processes").
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

from channels.layers import BaseChannelLayer
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

WRAPPED = "fanout.message"  # the inner layer's message type: {"type", "group", "message"}


class FanoutChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(self, layer: dict, capacity: int = 1000, refresh_s: float = 3600, **kwargs):
        super().__init__(capacity=capacity, **kwargs)
        self.inner = import_string(layer["BACKEND"])(**layer.get("CONFIG", {}))
        # Group memberships in the inner layer expire (a day by default): renewed this often.
        self.refresh_s = refresh_s
        self._reset(None)

    def _reset(self, loop) -> None:
        """Local state belongs to one event loop (the web server's); a new loop starts afresh."""
        self._loop = loop
        self._local_prefix = f"fanout.{uuid.uuid4().hex}!"
        self._process_channel: str | None = None
        self._pump: asyncio.Task | None = None
        self._groups: dict[str, set[str]] = defaultdict(set)  # group -> local channels
        self._joined: dict[str, set[str]] = defaultdict(set)  # local channel -> its groups
        self._queues: dict[str, asyncio.Queue] = {}  # local channel -> its messages
        self._handlers: dict[str, Callable[[dict], bool | Awaitable]] = {}  # local channel -> direct handler
        self._lane: asyncio.Queue | None = None  # (message, channels) for the direct handlers, in order
        self._lane_task: asyncio.Task | None = None

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._reset(loop)

    def _is_local(self, channel: str) -> bool:
        return channel.startswith(self._local_prefix)

    def _queue(self, channel: str) -> asyncio.Queue:
        if channel not in self._queues:
            self._queues[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return self._queues[channel]

    # --- channels -----------------------------------------------------------------------------

    async def new_channel(self, prefix: str = "specific") -> str:
        self._bind()
        return f"{self._local_prefix}{uuid.uuid4().hex}"

    async def send(self, channel: str, message: dict) -> None:
        if self._loop is not None and self._is_local(channel):
            self._deliver(channel, message)
        else:
            await self.inner.send(channel, message)

    async def receive(self, channel: str) -> dict:
        self._bind()
        if not self._is_local(channel):
            return await self.inner.receive(channel)
        queue = self._queue(channel)
        try:
            return await queue.get()
        finally:
            # A consumer that ends (or never joined a group: a refused page) leaves nothing behind.
            if queue.empty() and not self._joined.get(channel):
                self._queues.pop(channel, None)
                self._joined.pop(channel, None)
                self._handlers.pop(channel, None)

    def _deliver(self, channel: str, message: dict) -> None:
        try:
            self._queue(channel).put_nowait(dict(message))
        except asyncio.QueueFull:
            # As the inner layers do for a full channel in a group send: the page is not reading;
            # it gets the state from the database when it reconnects.
            log.warning("channel %s is full; message dropped", channel)

    # --- groups -------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self._bind()
        if not self._is_local(channel):
            await self.inner.group_add(group, channel)
            return
        self._groups[group].add(channel)
        self._joined[channel].add(group)
        # Each join renews the process's membership too (a cheap write per page opened).
        await self.inner.group_add(group, await self._subscriber())

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        if self._loop is None or not self._is_local(channel):
            await self.inner.group_discard(group, channel)
            return
        members = self._groups.get(group, set())
        members.discard(channel)
        self._joined.get(channel, set()).discard(group)
        if not members:
            self._groups.pop(group, None)
            if self._process_channel:
                await self.inner.group_discard(group, self._process_channel)
        if not self._joined.get(channel):
            self._joined.pop(channel, None)
            self._queues.pop(channel, None)
            self._handlers.pop(channel, None)

    async def group_send(self, group: str, message: dict) -> None:
        self.require_valid_group_name(group)
        await self.inner.group_send(group, {"type": WRAPPED, "group": group, "message": message})

    async def flush(self) -> None:
        self._reset(None)
        await self.inner.flush()

    async def close(self) -> None:
        for task in (self._pump, self._lane_task):
            if task is not None:
                task.cancel()
        if hasattr(self.inner, "close"):
            await self.inner.close()

    # --- the process's subscription -----------------------------------------------------------

    async def _subscriber(self) -> str:
        """The process's channel on the inner layer, with the task that empties it."""
        if self._process_channel is None:
            self._process_channel = await self.inner.new_channel()
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump(self._process_channel))
        return self._process_channel

    async def _run_pump(self, channel: str) -> None:
        loop = asyncio.get_running_loop()
        receiving = loop.create_task(self.inner.receive(channel))
        renewed = time.monotonic()
        try:
            while True:
                # Never cancel a receive half-way (a message could be lost): wait for it with a timeout.
                done, _ = await asyncio.wait({receiving}, timeout=self.refresh_s)
                if done:
                    try:
                        wrapped = receiving.result()
                    except Exception:
                        log.exception("receiving from the channel layer failed; trying again in 1 s")
                        await asyncio.sleep(1)
                        wrapped = {}
                    receiving = loop.create_task(self.inner.receive(channel))
                    if wrapped.get("type") == WRAPPED:
                        self._fan_out(wrapped["group"], wrapped["message"])
                if time.monotonic() - renewed >= self.refresh_s:
                    renewed = time.monotonic()
                    for group in list(self._groups):
                        await self.inner.group_add(group, channel)
        finally:
            receiving.cancel()

    # --- direct delivery ----------------------------------------------------------------------

    def deliver_directly(self, channel: str, handler: Callable[[dict], bool | Awaitable]) -> None:
        """Hand local `channel`'s group messages to handler(message) instead of its queue, until it
        leaves its groups. The handler returns True (handled), False (queue it, as without a
        handler) or an awaitable to wait for before it is called again with the same message.

        One task (the lane) calls the handlers, message after message, so every channel gets its
        messages in order; it waits on what a handler returns, so a handler must never return
        anything its own client could hold up (a send): one slow page would hold up them all."""
        self._handlers[channel] = handler

    def _fan_out(self, group: str, message: dict) -> None:
        direct = []
        for local in list(self._groups.get(group, ())):
            if local in self._handlers:
                direct.append(local)
            else:
                self._deliver(local, message)
        if direct:
            if self._lane_task is None or self._lane_task.done():
                self._lane = asyncio.Queue()
                self._lane_task = asyncio.get_running_loop().create_task(self._run_lane(self._lane))
            self._lane.put_nowait((message, direct))

    async def _run_lane(self, lane: asyncio.Queue) -> None:
        while True:
            message, channels = await lane.get()
            for channel in channels:
                try:
                    await self._hand_over(channel, message)
                except Exception:
                    log.exception("channel %s: its handler failed; message dropped", channel)

    async def _hand_over(self, channel: str, message: dict) -> None:
        while (handler := self._handlers.get(channel)) is not None:
            outcome = handler(message)
            if outcome is True:
                return
            if outcome is False:
                break
            await outcome
        if channel in self._joined:  # not gone meanwhile
            self._deliver(channel, message)
