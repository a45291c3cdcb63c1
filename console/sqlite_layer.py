"""The SQLite channel layer, looking for messages when the database file has changed.

channels_lite finds a message by querying the database every `polling_interval`: each look is a
query and a hop to the web process's one sync thread, so a short interval costs CPU while nothing
happens, and a long one is added to every update's latency (20 ms: 10 ms on average, bench/jobs.py).
This layer looks at the file instead: every `watch_interval` it stats the database and its WAL (a
few microseconds, no thread hop), and queries only when either changed since its last query for
that channel, or `polling_interval` has passed (a change the stat could not see: a write that
reuses the WAL from its start within the same clock tick).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from channels_lite.layers import ChannelEmpty
from channels_lite.layers.core import SQLiteChannelLayer as BaseLayer
from django.db import connections

TRIM_EVERY_S = 10.0


class SQLiteChannelLayer(BaseLayer):
    def __init__(self, *, watch_interval: float = 0.005, polling_interval: float = 0.1, **kwargs):
        # The base class sleeps `polling_interval` after an empty look: here that is the watch interval.
        super().__init__(polling_interval=watch_interval, **kwargs)
        self.fallback_s = polling_interval
        self._seen: dict[str, tuple] = {}  # channel -> (file signature, monotonic time) at its last query
        self._trimmed_at = time.monotonic()

    def watched(self) -> tuple[Path, ...]:
        """The database file and its WAL; none for a database in memory (then every look queries).
        Read from the connection: a test run renames the database."""
        name = str(connections[self.database].settings_dict["NAME"])
        if name.startswith("file:") or ":memory:" in name or not os.path.exists(name):
            return ()
        return Path(name), Path(name + "-wal")

    def signature(self) -> tuple | None:
        """What changes when a transaction commits: size and modification time of both files."""
        watched = self.watched()
        if not watched:
            return None
        marks = []
        for path in watched:
            try:
                stat = os.stat(path)
            except OSError:
                marks.append(None)
            else:
                marks.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        return tuple(marks)

    async def _receive_single_from_db(self, channel):
        now, signature = time.monotonic(), self.signature()
        seen = self._seen.get(channel)
        if signature is not None and seen is not None and seen[0] == signature and now - seen[1] < self.fallback_s:
            raise ChannelEmpty()
        # Noted before the query: a commit landing during it changes the signature again.
        self._seen[channel] = (signature, now)
        try:
            return await super()._receive_single_from_db(channel)
        except ChannelEmpty:
            if len(self._seen) > 1000:  # channels of pages long gone
                self._seen.clear()
            raise

    async def clean_expired(self):
        # The base class trims on 1% of the empty looks: with looks every few ms, at most every 10 s.
        if time.monotonic() - self._trimmed_at < TRIM_EVERY_S:
            return
        self._trimmed_at = time.monotonic()
        await super().clean_expired()
