"""A background thread of a worker process that does one thing every few seconds."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections

log = logging.getLogger(__name__)


def start_ticker(name: str, tick: Callable[[], object], stop: threading.Event, interval: float) -> threading.Thread:
    """Run tick() every `interval` seconds in a daemon thread until `stop` is set. A tick that fails is
    logged and the next one runs as usual; database connections are closed as Django's requests do."""

    def loop() -> None:
        while not stop.wait(interval):
            try:
                close_old_connections()
                tick()
            except Exception:
                log.exception("%s: tick failed; trying again next tick", name)
        close_old_connections()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
