"""The supervisor: a thread in every worker process that keeps the queue moving and finds dead workers.

Each tick admits what fits (a job that ended in a killed worker freed its slots without telling
anyone) and hands jobs whose worker stopped beating to a recovery task. Several supervisors at
once are harmless: admission holds the database's lock, and each recovery is leased once.
"""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, transaction
from django.utils import timezone

from migrations_ui.events import record
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.runner import RECOVERY_PENDING, STALE_AFTER
from migrations_ui.scheduler import admit_waiting

log = logging.getLogger(__name__)
TICK_S = 3.0


def reap_stale() -> list[int]:
    """Hand every running job whose worker stopped beating to a recovery task (once per lease)."""
    from migrations_ui.tasks import recover_job

    now = timezone.now()
    handed = []
    stale = MigrationJob.objects.filter(
        state__in=(JobState.RUNNING, JobState.CANCELLING), heartbeat_at__lt=now - STALE_AFTER
    )
    for job in stale:
        with transaction.atomic():
            leased = MigrationJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at, worker=job.worker).update(
                worker=RECOVERY_PENDING, heartbeat_at=now
            )
            if leased:
                record(job, "worker_lost", {"worker": job.worker, "last_heartbeat": job.heartbeat_at.isoformat()})
                transaction.on_commit(lambda pk=job.pk: recover_job.enqueue(pk))
                handed.append(job.pk)
    return handed


def tick() -> None:
    reap_stale()
    admit_waiting()


def start_supervisor(stop: threading.Event, interval: float = TICK_S) -> threading.Thread:
    """Run tick() every `interval` seconds in a daemon thread until `stop` is set."""

    def loop() -> None:
        while not stop.wait(interval):
            try:
                close_old_connections()
                tick()
            except Exception:
                log.exception("supervisor tick failed; trying again next tick")
        close_old_connections()

    thread = threading.Thread(target=loop, name="job-supervisor", daemon=True)
    thread.start()
    return thread
