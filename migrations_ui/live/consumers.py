"""Websocket consumers of the Jobs pages and the batch page: replay the current state from the
database, then stream.

The origin (scheme, host and port) is checked by console.websocket_origin in console.asgi; these
consumers check who may watch (watch_refusal), join their group, and only then send anything. A refused connection is
accepted and closed at once with a 44xx code: rejecting the handshake would reach the browser as
1006, which htmx's websocket extension retries forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from functools import partial

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import QueryDict
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from access import can_view
from migrations_ui.beats import web_clients
from migrations_ui.jobs.emit import JOBS_GROUP, batch_group, job_group
from migrations_ui.live import progress
from migrations_ui.live.batch_page import render_batch_replay
from migrations_ui.models import Batch, MigrationJob

log = logging.getLogger(__name__)

NOT_LOGGED_IN, FORBIDDEN, NO_SUCH_JOB = 4401, 4403, 4404
NO_SUCH_BATCH = NO_SUCH_JOB
# The workers' messages (migrations_ui.jobs.emit): one per update for every open page.
LIVE_EVENTS = frozenset({"job.changed", "batch.changed"})


def watch_refusal(user, job_id: int | None = None, batch_id: int | None = None) -> int | None:
    """The one access check of the live pages: None lets `user` watch (all jobs, job_id or
    batch_id); otherwise the close code. Per-object rules (who may see which job) belong here."""
    if user is None or not user.is_authenticated:
        return NOT_LOGGED_IN
    if not can_view(user):  # inactive, or no role (access)
        return FORBIDDEN
    if job_id is not None and not MigrationJob.objects.filter(pk=job_id).exists():
        return NO_SUCH_JOB
    if batch_id is not None and not Batch.objects.filter(pk=batch_id).exists():
        return NO_SUCH_BATCH
    return None


def scope_language(scope) -> str:
    """The language of the page that opened the socket, as LocaleMiddleware chose it: the cookie of
    the language switch, else the browser's Accept-Language, else the default."""
    chosen = [(scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME, "")]
    accept = dict(scope.get("headers") or []).get(b"accept-language", b"").decode("latin-1")
    chosen += [code for code, _q in parse_accept_lang_header(accept)]
    for code in chosen:
        if code and code != "*":
            try:
                return translation.get_supported_language_variant(code)
            except LookupError:
                continue
    return settings.LANGUAGE_CODE


class _LiveConsumer(AsyncWebsocketConsumer):
    group = ""
    language = settings.LANGUAGE_CODE

    async def dispatch(self, message):
        """channels runs close_old_connections() in the sync thread before every handler: for an
        update that is a thread hop per page, and the web process's one sync thread (which also runs
        the SQLite layer's queries) queued behind 2,500 of them a second at 500 pages x 5 updates/s
        (bench/jobs.py). These handlers reach the database only through database_sync_to_async, which
        closes old connections itself, so the updates skip it."""
        if message["type"] not in LIVE_EVENTS:
            return await super().dispatch(message)
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def rendered(self, render, *args):
        """render(*args) from the database, in this client's language."""
        return await database_sync_to_async(_in_language)(self.language, render, *args)

    async def refuse_or_join(self, job_id: int | None = None, batch_id: int | None = None) -> bool:
        """Accept, authorise, join the group; False (and closed) when the client may not watch."""
        self.language = scope_language(self.scope)
        await self.accept()
        refusal = await database_sync_to_async(watch_refusal)(self.scope.get("user"), job_id, batch_id)
        if refusal is not None:
            await self.close(code=refusal)
            return False
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception:
            # Without the layer there is nothing to stream: 1011 makes htmx reconnect (and replay) later.
            log.exception("could not join group %s", self.group)
            await self.close(code=1011)
            return False
        self.counted = True
        web_clients.add(1)  # for the metrics' websocket clients (migrations_ui.beats)
        return True

    async def disconnect(self, code):
        if getattr(self, "counted", False):
            self.counted = False
            web_clients.add(-1)
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:
                log.warning("could not leave group %s", self.group, exc_info=True)


class JobsConsumer(_LiveConsumer):
    """ws/jobs/: the Jobs page. Replays Running, Queued and the client's page of Finished (its
    filters come in the query string), then forwards every job's update; when a job has just
    finished it renders that client's Finished page again, since filters differ per client.

    Every open Jobs page gets every update: with the fan-out layer (console.fanout) the updates
    reach the page through `deliver_now`, called by the layer's one task, not through this page's
    own task; they take the page's own way (its queue, `job_changed`) before the replay is sent and
    while its server holds a send (see deliver_now)."""

    group = JOBS_GROUP

    async def connect(self):
        self.filters = progress.finished_filters(QueryDict(self.scope.get("query_string", b"")))
        self.streaming = False  # the replay is sent: updates may go directly
        self.queued = 0  # updates handed to this page's queue and not yet sent
        self.sending: asyncio.Future | None = None  # a direct send the server holds
        deliver_directly = getattr(self.channel_layer, "deliver_directly", None)
        if deliver_directly is not None:
            deliver_directly(self.channel_name, self.deliver_now)  # before joining: every update passes it
        if await self.refuse_or_join():
            await self.send(text_data=await self.rendered(progress.render_sections, self.filters))
            self.streaming = True

    def deliver_now(self, event) -> bool | asyncio.Future:
        """An update from the fan-out: True once sent (or nothing to send), a render the pages share
        to wait for, or False: the fan-out queues it for job_changed. Queued until the replay is
        sent (it would overwrite the update), behind updates already queued (order), and while the
        server holds this page's previous send (a slow client waits alone)."""
        if event["type"] != "job.changed":
            return False
        if not self.streaming or self.queued or (self.sending is not None and not self.sending.done()):
            self.queued += 1
            return False
        part = shared_task(
            (event["id"], "jobs", self.language),
            progress.render_board_update,
            event["job_id"],
            event["sequence"],
            language=self.language,
        )
        if not part.done():
            return part
        if part.result() is None:
            return True
        html, finished = part.result()
        if finished and self.filters["page"] == 1:
            section = self._finished_section(event)
            if not section.done():
                return section
            html += section.result() or ""
        self.sending = send_without_waiting(self.send(text_data=html))
        return True

    async def job_changed(self, event):
        try:
            if self.sending is not None:
                await asyncio.gather(self.sending, return_exceptions=True)  # frames stay in order
            part = await shared(
                (event["id"], "jobs", self.language),
                progress.render_board_update,
                event["job_id"],
                event["sequence"],
                language=self.language,
            )
            if part is None:
                return
            html, finished = part
            if finished and self.filters["page"] == 1:
                html += await asyncio.shield(self._finished_section(event)) or ""
            await self.send(text_data=html)
        finally:
            self.queued = max(0, self.queued - 1)

    def _finished_section(self, event) -> asyncio.Task:
        # Only the first page gains the new row; later pages would shift under the reader.
        key = (event["id"], "finished", self.language, *self.filters.values())
        return shared_task(key, progress.render_finished, self.filters, language=self.language)


# One task per (update, page part, language ...) in this process; a done task holds its result.
_shared: dict[tuple, asyncio.Task] = {}


async def shared(key: tuple, render, *args, language: str | None = None):
    """render(*args) in `language` (None: language-neutral, a decision), once per key in this
    process and awaited by every page that needs it: the pages wake together on a message, so
    without the shared task each would queue a thread hop (and a render) before the first had
    finished. None when the render failed (logged once); the page then waits for the next update or
    its replay on reconnect."""
    # One page going away must not cancel the others' render.
    return await asyncio.shield(shared_task(key, render, *args, language=language))


def shared_task(key: tuple, render, *args, language: str | None = None) -> asyncio.Task:
    """The task rendering `key` for shared(), started by the first page that asks."""
    loop = asyncio.get_running_loop()
    task = _shared.get(key)
    if task is None or task.get_loop() is not loop:
        while len(_shared) >= 256:  # the oldest updates' parts: their pages have long had them
            del _shared[next(iter(_shared))]
        task = _shared[key] = loop.create_task(_render_or_log(key, language, render, *args))
    return task


def send_without_waiting(sending: Coroutine) -> asyncio.Future | None:
    """Run a send until it would wait: uvicorn's send waits only while the client's connection holds
    more unsent data than its high-water mark (backpressure), so most sends end here. One that has
    to wait for its client gets the rest in a task of its own, returned, so that the caller goes on
    to the next page."""
    try:
        waiting_on = sending.send(None)
    except StopIteration:
        return None
    except Exception:
        log.warning("a websocket send failed", exc_info=True)
        return None
    return asyncio.ensure_future(_Resumed(sending, waiting_on))


class _Resumed:
    """The rest of a coroutine that was run by hand up to its first wait (on `waiting_on`):
    awaiting this goes on from there, as if it had always run in the awaiting task."""

    def __init__(self, coroutine: Coroutine, waiting_on):
        self.coroutine, self.waiting_on = coroutine, waiting_on

    def __await__(self):
        step = self.waiting_on
        while True:
            try:
                answer = yield step  # the task waits for it as the coroutine asked
            except BaseException as exc:  # cancellation too goes on into the coroutine
                resume = partial(self.coroutine.throw, exc)
            else:
                resume = partial(self.coroutine.send, answer)
            try:
                step = resume()
            except StopIteration as stop:
                return stop.value


def _in_language(language: str | None, render, *args):
    if language is None:
        return render(*args)
    with translation.override(language):
        return render(*args)


async def _render_or_log(key: tuple, language: str | None, render, *args):
    try:
        return await database_sync_to_async(_in_language)(language, render, *args)
    except (MigrationJob.DoesNotExist, Batch.DoesNotExist):
        return None  # deleted since the update was sent
    except Exception:
        log.exception("could not render %s for the live pages", key)
        return None


class JobConsumer(_LiveConsumer):
    """ws/jobs/<id>/: one job's page. Replays its status, steps and whole event log, then streams.
    It remembers the newest event sequence the client has, so the log gets every event once and in
    order even when the layer drops or reorders a message (a gap is filled from the database)."""

    async def connect(self):
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        self.group = job_group(self.job_id)
        self.sequence = 0
        if not await self.refuse_or_join(self.job_id):
            self.group = ""
            return
        try:
            state, events, self.sequence = await self.rendered(progress.render_job_replay, self.job_id)
        except MigrationJob.DoesNotExist:  # deleted since the check
            await self.close(code=NO_SUCH_JOB)
            return
        await self.send(text_data=state)
        await self.send(text_data=events)

    async def job_changed(self, event):
        sequence = event["sequence"]
        if sequence <= self.sequence:
            return  # older than what the client already shows
        job_id = event["job_id"]
        # Whether the chart goes along is decided once per update, whatever the languages.
        chart = await shared((event["id"], "chart"), progress.job_chart_due, job_id, sequence)
        key = (event["id"], "job", self.language)
        part = await shared(key, progress.render_job_update, job_id, sequence, bool(chart), language=self.language)
        if part is None:
            return
        html, events = part
        if sequence > self.sequence + 1:
            events = await self.rendered(progress.render_events_after, self.job_id, self.sequence, sequence)
        self.sequence = sequence
        await self.send(text_data=html)
        if events:
            # A message of its own: the parser htmx uses drops a <tbody> that follows other elements.
            await self.send(text_data=events)


class BatchConsumer(_LiveConsumer):
    """ws/batches/<id>/: a batch's page. Replays its progress, timelines and every VM's row, then
    streams the updates the emitter sends for the batch's jobs. It remembers each job's newest
    event sequence the client has, so a late copy of an older update cannot undo a newer one."""

    async def connect(self):
        self.batch_id = self.scope["url_route"]["kwargs"]["batch_id"]
        self.group = batch_group(self.batch_id)
        self.sequences: dict[int, int] = {}
        if not await self.refuse_or_join(batch_id=self.batch_id):
            self.group = ""
            return
        try:
            state, rows, self.sequences = await self.rendered(render_batch_replay, self.batch_id)
        except Batch.DoesNotExist:  # deleted since the check
            await self.close(code=NO_SUCH_BATCH)
            return
        await self.send(text_data=state)
        # The rows in a message of their own: the parser htmx uses drops a <tbody> after other elements.
        await self.send(text_data=rows)

    async def job_changed(self, event):
        """One of the batch's jobs changed: the batch's progress, the job's row and, when due, the
        actual run's timeline."""
        job_id, sequence = event["job_id"], event["sequence"]
        if sequence <= self.sequences.get(job_id, 0):
            return  # older than what the client already shows
        timelines = await shared((event["id"], "timelines"), progress.batch_timelines_due, job_id, sequence)
        key = (event["id"], "batch", self.language)
        part = await shared(key, progress.render_batch_update, job_id, bool(timelines), language=self.language)
        if part is None:
            return
        self.sequences[job_id] = sequence
        html, row = part
        await self.send(text_data=html)
        await self.send(text_data=row)  # a <tr>: alone, as on the Jobs page

    async def batch_changed(self, event):
        """The batch itself changed (its host's maintenance ended)."""
        key = (event["id"], "batch", self.language)
        part = await shared(key, progress.render_batch_change, event["batch_id"], language=self.language)
        if part:
            html, rows = part
            await self.send(text_data=html)
            await self.send(text_data=rows)  # the rows in a message of their own, as on connect
