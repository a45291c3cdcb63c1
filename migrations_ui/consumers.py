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

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http import QueryDict
from django.utils import translation
from django.utils.translation.trans_real import parse_accept_lang_header

from access import can_view
from migrations_ui import progress
from migrations_ui.batches import render_batch_replay
from migrations_ui.models import Batch, MigrationJob

log = logging.getLogger(__name__)

NOT_LOGGED_IN, FORBIDDEN, NO_SUCH_JOB = 4401, 4403, 4404
NO_SUCH_BATCH = NO_SUCH_JOB
# The emitter's messages (progress.send_job_update): one per update for every open page.
LIVE_EVENTS = frozenset({"jobs.update", "job.update", "batch.update"})


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

    def in_language(self, event: dict, field: str = "html") -> str:
        """A message's HTML in this client's language (progress.in_every_language renders each)."""
        copy = event.get("languages", {}).get(self.language, {})
        return copy[field] if field in copy else event.get(field, "")

    async def rendered(self, render, *args):
        """render(*args) from the database, in this client's language."""

        def in_language():
            with translation.override(self.language):
                return render(*args)

        return await database_sync_to_async(in_language)()

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
        return True

    async def disconnect(self, code):
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception:
                log.warning("could not leave group %s", self.group, exc_info=True)


class JobsConsumer(_LiveConsumer):
    """ws/jobs/: the Jobs page. Replays Running, Queued and the client's page of Finished (its
    filters come in the query string), then forwards every job's update; when a job has just
    finished it renders that client's Finished page again, since filters differ per client."""

    group = progress.JOBS_GROUP

    async def connect(self):
        self.filters = progress.finished_filters(QueryDict(self.scope.get("query_string", b"")))
        if await self.refuse_or_join():
            await self.send(text_data=await self.rendered(progress.render_sections, self.filters))

    async def jobs_update(self, event):
        html = self.in_language(event)
        # Only the first page gains the new row; later pages would shift under the reader.
        if event.get("finished") and self.filters["page"] == 1:
            key = (event["id"], self.language, *self.filters.values())
            html += await self.finished_section(key)
        await self.send(text_data=html)

    async def finished_section(self, key: tuple) -> str:
        """One render per key and process, awaited by every page that needs it: the pages wake
        together, so without the shared task each would queue a thread hop before the first render
        had filled the cache (_finished_once)."""
        loop = asyncio.get_running_loop()
        task = _finished_tasks.get(key)
        if task is None or task.get_loop() is not loop:
            if len(_finished_tasks) > 64:
                _finished_tasks.clear()
            task = _finished_tasks[key] = loop.create_task(self.rendered(_finished_once, key, self.filters))
        return await asyncio.shield(task)  # one page going away must not cancel the others' render


_finished_html: dict[tuple, str] = {}
_finished_tasks: dict[tuple, asyncio.Task] = {}


def _finished_once(key: tuple, filters: dict) -> str:
    """The Finished section for one update and one set of filters, rendered once per process: every
    client on the Jobs page gets the update at once, most of them with the same (or no) filters."""
    if key not in _finished_html:
        if len(_finished_html) > 64:
            _finished_html.clear()
        _finished_html[key] = progress.render_finished(filters)
    return _finished_html[key]


class JobConsumer(_LiveConsumer):
    """ws/jobs/<id>/: one job's page. Replays its status, steps and whole event log, then streams.
    It remembers the newest event sequence the client has, so the log gets every event once and in
    order even when the layer drops or reorders a message (a gap is filled from the database)."""

    async def connect(self):
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        self.group = progress.job_group(self.job_id)
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

    async def job_update(self, event):
        sequence = event["sequence"]
        if sequence <= self.sequence:
            return  # older than what the client already shows
        events = self.in_language(event, "event_html")
        if sequence > self.sequence + 1:
            events = await self.rendered(progress.render_events_after, self.job_id, self.sequence, sequence)
        self.sequence = sequence
        await self.send(text_data=self.in_language(event))
        if events:
            # A message of its own: the parser htmx uses drops a <tbody> that follows other elements.
            await self.send(text_data=events)


class BatchConsumer(_LiveConsumer):
    """ws/batches/<id>/: a batch's page. Replays its progress, timelines and every VM's row, then
    streams the updates the emitter sends for the batch's jobs. It remembers each job's newest
    event sequence the client has, so a late copy of an older update cannot undo a newer one."""

    async def connect(self):
        self.batch_id = self.scope["url_route"]["kwargs"]["batch_id"]
        self.group = progress.batch_group(self.batch_id)
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

    async def batch_update(self, event):
        job_id = event.get("job_id")
        if job_id is not None:  # None: the batch itself changed (its host's maintenance)
            if event["sequence"] <= self.sequences.get(job_id, 0):
                return  # older than what the client already shows
            self.sequences[job_id] = event["sequence"]
        await self.send(text_data=self.in_language(event))
        if row := self.in_language(event, "row_html"):
            await self.send(text_data=row)  # a <tr>: alone, as on the Jobs page
