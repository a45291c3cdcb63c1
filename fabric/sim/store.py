"""The simulated fabric shared by every process (web, workers, CLI, emulator) in one SQLite file.

Each use of the world is one session: BEGIN IMMEDIATE (so sessions of all processes run one after
the other), load the world, bring its clock up to the simulated time, hand it out, save it if it
changed, commit. Simulated time is derived from the wall clock, so every process agrees on it:

    sim_now = epoch_sim + (wall_now - epoch_wall) * time_scale

with epoch and scale stored in the file. time_scale=None is the manual clock for tests: time moves
only by FabricStore.advance().
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fabric.hyperv.api import HyperVError
from fabric.sim.simulator import Fabric

SCHEMA = """
CREATE TABLE IF NOT EXISTS world (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    epoch_wall REAL NOT NULL,
    epoch_sim REAL NOT NULL,
    time_scale REAL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS command_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    entry TEXT NOT NULL
)
"""
# Commands kept in the wire log of the host emulator (older ones are dropped).
COMMAND_LOG_KEPT = 50_000


class FabricStore:
    """One simulated world in one SQLite file; safe across threads and processes.

    Keeps the last world it loaded: when the file's revision has not moved since, a session reuses
    it instead of parsing the JSON again (a 20,000-VM world is megabytes).
    """

    def __init__(self, path: str | os.PathLike, time_scale: float | None = 4, clock: Callable[[], float] = time.time):
        self.path = str(path)
        self.time_scale = time_scale
        self.clock = clock
        self._pid = -1
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._cached: Fabric | None = None
        self._in_session = threading.local()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            # A forked child must not share its parent's connection (nor its cached world).
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(SCHEMA)
            self._connection, self._pid, self._cached = connection, os.getpid(), None
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection, self._cached = None, None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if getattr(self._in_session, "active", False):
            raise RuntimeError("FabricStore sessions do not nest")
        with self._lock:
            self._in_session.active = True
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                self._cached = None
                raise
            else:
                connection.execute("COMMIT")
            finally:
                self._in_session.active = False

    def exists(self) -> bool:
        with self._transaction() as connection:
            return connection.execute("SELECT 1 FROM world WHERE id = 1").fetchone() is not None

    def create(self, fabric: Fabric) -> None:
        """Replace the stored world by this one; its clock starts now."""
        with self._transaction() as connection:
            row = connection.execute("SELECT revision FROM world WHERE id = 1").fetchone()
            # A new revision number, so every process drops the world it had cached.
            fabric.revision = max(fabric.revision, row[0] if row else 0) + 1
            connection.execute("DELETE FROM world")
            connection.execute(
                "INSERT INTO world (id, revision, epoch_wall, epoch_sim, time_scale, data) VALUES (1, ?, ?, ?, ?, ?)",
                (fabric.revision, self.clock(), fabric.now, self.time_scale, _dumps(fabric)),
            )
            self._cached = None

    @contextmanager
    def session(self) -> Iterator[Fabric]:
        """The world, brought up to the current simulated time; saved on the way out if it changed.

        A HyperVError raised inside still commits: Hyper-V refused something, and the world (with the
        refusal in its record) is as consistent as before. Any other exception rolls back.
        """
        refused: HyperVError | None = None
        with self._transaction() as connection:
            fabric, revision = self._load(connection)
            target = self._sim_time(connection)
            if target is not None and target > fabric.now:
                fabric.advance(target - fabric.now)
            try:
                yield fabric
            except HyperVError as exc:
                refused = exc
            self._save(connection, fabric, revision)
        if refused is not None:
            raise refused

    def advance(self, seconds: float) -> None:
        """Move simulated time on by hand (manual clock), or fast-forward a wall-clock world."""
        if self.time_scale is not None:
            with self._transaction() as connection:
                connection.execute("UPDATE world SET epoch_sim = epoch_sim + ? WHERE id = 1", (seconds,))
        with self.session() as fabric:
            if self.time_scale is None:
                fabric.advance(seconds)
                fabric.touch()  # the clock itself must reach the other processes

    def log_commands(self, entries: list[dict]) -> None:
        """Append commands hosts received (the emulator's wire log); never touches the world itself.

        Reads are logged here rather than in the fabric's record: a row insert costs little, while a
        change to the record would rewrite the whole world on every read.
        """
        if not entries:
            return
        with self._transaction() as connection:
            now = self.clock()
            rows = [(now, json.dumps(entry, default=str)) for entry in entries]
            connection.executemany("INSERT INTO command_log (at, entry) VALUES (?, ?)", rows)
            (last,) = connection.execute("SELECT max(seq) FROM command_log").fetchone()
            if last % 1000 < len(rows):
                connection.execute("DELETE FROM command_log WHERE seq <= ?", (last - COMMAND_LOG_KEPT,))

    def commands(self, since: int = 0) -> list[dict]:
        """The logged commands after sequence number `since`, oldest first, each with its "seq"."""
        with self._transaction() as connection:
            rows = connection.execute("SELECT seq, entry FROM command_log WHERE seq > ? ORDER BY seq", (since,))
            return [{"seq": seq, **json.loads(entry)} for seq, entry in rows.fetchall()]

    def sim_time(self) -> float:
        with self.session() as fabric:
            return fabric.now

    # --- internals ---------------------------------------------------------------------------

    def _load(self, connection: sqlite3.Connection) -> tuple[Fabric, int]:
        row = connection.execute("SELECT revision FROM world WHERE id = 1").fetchone()
        if row is None:
            raise LookupError(f"no simulated fabric in {self.path}: create one first (manage.py seed_demo)")
        revision = row[0]
        if self._cached is None or self._cached.revision != revision:
            (data,) = connection.execute("SELECT data FROM world WHERE id = 1").fetchone()
            with _gc_paused():
                self._cached = Fabric.from_dict(json.loads(data))
            self._cached.revision = revision
        return self._cached, revision

    def _sim_time(self, connection: sqlite3.Connection) -> float | None:
        """The simulated time now, or None on a manual clock."""
        if self.time_scale is None:
            return None
        epoch_wall, epoch_sim, stored_scale = connection.execute(
            "SELECT epoch_wall, epoch_sim, time_scale FROM world WHERE id = 1"
        ).fetchone()
        wall = self.clock()
        if stored_scale != self.time_scale:
            # The scale changed (another setting, or a manual world going live): keep time continuous.
            if stored_scale is not None:
                epoch_sim += (wall - epoch_wall) * stored_scale
            else:
                epoch_sim = self._cached.now if self._cached else epoch_sim
            epoch_wall = wall
            connection.execute(
                "UPDATE world SET epoch_wall = ?, epoch_sim = ?, time_scale = ? WHERE id = 1",
                (epoch_wall, epoch_sim, self.time_scale),
            )
        return epoch_sim + (wall - epoch_wall) * self.time_scale

    def _save(self, connection: sqlite3.Connection, fabric: Fabric, revision: int) -> None:
        if fabric.revision == revision:
            return  # unchanged (a clock moving with nothing running is recomputed, not stored)
        fabric.revision = revision + 1
        connection.execute("UPDATE world SET revision = ?, data = ? WHERE id = 1", (fabric.revision, _dumps(fabric)))


def _dumps(fabric: Fabric) -> str:
    with _gc_paused():
        return json.dumps(fabric.to_dict(), separators=(",", ":"))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building or walking ~100,000 objects would trigger full collections that find nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
