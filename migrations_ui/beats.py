"""Heartbeats of the console's processes, kept in the database so that any web process can answer a
metrics scrape for all of them (console.metrics).

A job worker beats from its supervisor's tick; a web process beats from a thread of its own, started
by its first websocket client, with the number of websocket clients it serves now. A process that
died stops beating: readers count only rows that beat within FRESH, and the workers delete rows
that have not beaten for FORGET.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from migrations_ui.models import ProcessBeat, ProcessKind

log = logging.getLogger(__name__)
BEAT_S = 10.0  # how often a process writes its row (at most; a change of websocket clients sooner)
FRESH = timedelta(seconds=45)  # a row that beat this recently is a running process
FORGET = timedelta(hours=1)  # rows of processes gone this long are deleted
_STARTED = timezone.now()


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def beat(kind: str, websocket_clients: int = 0) -> None:
    """Write this process's row now."""
    now = timezone.now()
    ProcessBeat.objects.update_or_create(
        name=process_name(),
        defaults={"kind": kind, "beat_at": now, "websocket_clients": websocket_clients},
        create_defaults={"kind": kind, "started_at": _STARTED, "beat_at": now, "websocket_clients": websocket_clients},
    )


class WorkerBeat:
    """The supervisor's tick calls it every few seconds; it writes at most every BEAT_S."""

    def __init__(self):
        self.last = 0.0

    def __call__(self) -> None:
        if time.monotonic() - self.last < BEAT_S:
            return
        beat(ProcessKind.WORKER)
        ProcessBeat.objects.filter(beat_at__lt=timezone.now() - FORGET).delete()
        self.last = time.monotonic()


class _WebClients:
    """This web process's websocket clients: counted in memory on connect and disconnect, written by a
    daemon thread (at once after a change, else every BEAT_S) so that a websocket never waits for it."""

    def __init__(self):
        self.count = 0
        self.changed = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, delta: int) -> None:
        with self.lock:
            self.count = max(0, self.count + delta)
            # Unit tests count without the thread (it would write into their database behind them).
            if self.thread is None and settings.BEATS_IN_BACKGROUND:
                self.thread = threading.Thread(target=self._loop, name="web-beat", daemon=True)
                self.thread.start()
        self.changed.set()

    def _loop(self) -> None:
        while True:
            self.changed.wait(BEAT_S)
            self.changed.clear()
            try:
                close_old_connections()
                beat(ProcessKind.WEB, self.count)
            except Exception:
                log.warning("the web process's heartbeat could not be written; trying again", exc_info=True)
            time.sleep(1.0)  # many clients connecting at once: one write a second


web_clients = _WebClients()
