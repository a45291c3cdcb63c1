"""Tell the web processes that a job (or a batch) changed, once the change has committed.

A worker sends data, not pages: a small message naming the job, its newest event and its batch, to
the groups of the pages that show it (`jobs`, `job-<id>`, `batch-<id>`). Each web process renders
what its pages need from the database, in each client's language, once per message
(migrations_ui.live.consumers). So nothing here, nor in what a worker runs for a job, imports a renderer
(an import-linter contract in pyproject.toml holds it), and a worker's announcement costs a query
and a send instead of rendering every page in every language.

Every channel layer delivers at most once: a lost message only delays a page until the next update
or its replay on reconnect, since the database is the truth.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db.models import Max

from migrations_ui.models import MigrationJob

log = logging.getLogger(__name__)

JOBS_GROUP = "jobs"


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def batch_group(batch_id: int) -> str:
    return f"batch-{batch_id}"


def send_job_update(job_id: int) -> None:
    """Tell every open Jobs page, this job's pages and its batch's pages that the job changed; call
    it after commit only. The message carries the job's newest event sequence as committed now
    (announcements are coalesced, so it may be newer than the change announced). Never raises."""
    try:
        found = (
            MigrationJob.objects.filter(pk=job_id)
            .annotate(newest=Max("events__sequence"))
            .values_list("batch_id", "newest")
            .first()
        )
    except Exception:
        log.exception("job %s: could not read its newest event", job_id)
        return
    if found is None:
        return  # deleted since
    batch_id, newest = found
    # "id" names this update: each web process renders each page part once per id and language.
    message = {"type": "job.changed", "id": uuid.uuid4().hex, "job_id": job_id, "sequence": newest or 0}
    groups = [JOBS_GROUP, job_group(job_id)] + ([batch_group(batch_id)] if batch_id else [])
    _send(f"job {job_id}", [(group, message) for group in groups])


def send_batch_update(batch_id: int) -> None:
    """Tell the batch's pages that the batch changed without a job changing (its host's maintenance
    ended); after commit only. Never raises, as send_job_update."""
    message = {"type": "batch.changed", "id": uuid.uuid4().hex, "batch_id": batch_id}
    _send(f"batch {batch_id}", [(batch_group(batch_id), message)])


def _send(what: str, messages: list[tuple[str, dict]]) -> None:
    try:
        layer = get_channel_layer()
    except Exception:
        log.exception("%s: no channel layer", what)
        return
    if layer is None:
        return
    # A CLI that queued a job may be exiting while its announcement is pending: sending needs a new
    # thread, which may not start then. The next update, or the pages' replay, shows the change.
    if exiting():
        log.info("%s: process exiting, update not sent", what)
        return
    try:
        # One event loop hop per update for all groups, not one per group.
        if _in_server_loop_thread():
            async_to_sync(_group_send)(layer, messages)
        else:
            sending = asyncio.run_coroutine_threadsafe(_group_send(layer, messages), _sending_loop())
            sending.result(SEND_TIMEOUT_S)
    except Exception:
        if exiting():  # began exiting since the check above
            log.info("%s: process exiting, update not sent", what)
        else:
            log.exception("%s: could not send its update to the channel layer", what)


# A layer that does not answer must not hold the announcing thread (and the next updates) for ever.
SEND_TIMEOUT_S = 30.0
_loop: tuple[int, asyncio.AbstractEventLoop] | None = None  # (pid, loop)
_loop_lock = threading.Lock()


def _sending_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for its announcements, run by a daemon thread started on first use.
    async_to_sync outside a server makes a new loop, and a thread, per call: channels_redis then
    connects and disconnects for every update (its pools are per loop), and the SQLite layer's database
    thread ends with the loop. One loop for the process's life: 2.7 -> 0.45 ms per update on Redis,
    1.9 -> 0.65 ms on SQLite (bench/RESULTS.md)."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid() or _loop[1].is_closed():  # a forked child starts its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="announce-loop", daemon=True).start()
            _loop = (os.getpid(), loop)
        return _loop[1]


def _in_server_loop_thread() -> bool:
    """True in a sync thread of an ASGI server's request (sync_to_async): async_to_sync then runs the
    send on the server's own loop, where a loop-bound layer (the in-memory one) expects it."""
    return getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid()


def exiting() -> bool:
    # threading sets _SHUTTING_DOWN before it runs the thread pools' exit hooks (after which they
    # refuse work); a stopped main thread covers the later stage and versions without the flag.
    return getattr(threading, "_SHUTTING_DOWN", False) or not threading.main_thread().is_alive()


async def _group_send(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:
            log.exception("could not send to group %s", group)
