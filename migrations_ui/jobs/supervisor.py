"""The supervisor: a thread in every worker process that keeps the queue moving and finds dead workers.

Each tick admits what fits (a job that ended in a killed worker freed its slots without telling
anyone), hands jobs whose worker stopped beating, and unknown jobs due to be asked again, to a
recovery task, gives a task again to an admitted job that none will start, and enqueues the
periodic inventory sync when it is due (fabric.tasks). Several supervisors
at once are harmless: admission holds the database's lock, each recovery and each re-queue is
leased once, and only one task can claim an admitted job (Runner.start), however many it has.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from fabric.tasks import enqueue_sync_if_due
from migrations_ui.beats import WorkerBeat
from migrations_ui.jobs import windows
from migrations_ui.jobs.drain import restart_stale_drains
from migrations_ui.jobs.events import audit_job, record
from migrations_ui.jobs.runner import RECOVERABLE, RECOVERY_PENDING, STALE_AFTER
from migrations_ui.jobs.scheduler import admit_waiting
from migrations_ui.jobs.tasks import enqueue_readiness_if_stale
from migrations_ui.models import JobState, MigrationJob
from utilities.ticker import start_ticker

log = logging.getLogger(__name__)
TICK_S = 3.0
# An admitted job is claimed within moments of a worker picking its task: one admitted this long ago
# with no task waiting or running lost its task. One whose task is running but has not claimed it
# for STALE_AFTER lost that task's worker (a claim waiting for SQLite's write lock is not re-queued).
ORPHAN_AFTER = timedelta(seconds=3)


def reap_stale() -> list[int]:
    """Hand to a recovery task every job whose worker stopped beating, and every unknown job last
    asked STALE_AFTER ago (once per lease). The hand-over takes the lease at once: a worker that
    only seemed dead (frozen, or cut off from the database) writes nothing more when it wakes."""
    from migrations_ui.jobs.tasks import recover_job

    now = timezone.now()
    handed = []
    stale = MigrationJob.objects.filter(state__in=RECOVERABLE, heartbeat_at__lt=now - STALE_AFTER)
    waiting = _job_ids(DBTaskResult.objects.filter(task_path=recover_job.module_path).ready())
    for job in stale:
        if job.worker == RECOVERY_PENDING and job.pk in waiting:
            continue  # its recovery task waits for a free worker: a second one would only queue behind it
        if hand_to_recovery(job, now):
            handed.append(job.pk)
    return handed


def hand_to_recovery(job: MigrationJob, now=None) -> bool:
    """Lease the job to a recovery task, if nobody took it since it was read; True when handed."""
    from migrations_ui.jobs.tasks import recover_job

    now = now or timezone.now()
    with transaction.atomic():
        leased = MigrationJob.objects.filter(pk=job.pk, heartbeat_at=job.heartbeat_at, lease=job.lease).update(
            worker=RECOVERY_PENDING, heartbeat_at=now, lease=F("lease") + 1
        )
        if not leased:
            return False
        job.lease += 1
        if job.worker not in ("", RECOVERY_PENDING):
            record(job, "worker_lost", {"worker": job.worker, "last_heartbeat": job.heartbeat_at.isoformat()})
        transaction.on_commit(lambda pk=job.pk: recover_job.enqueue(pk))
    return True


def ask_hosts_again(job_id: int, user=None, request=None) -> bool:
    """Hand an unknown job to recovery now instead of at the supervisor's next turn; False when it is
    not unknown or a recovery holds it already. An operator's request (user) is audited when handed."""
    jobs = MigrationJob.objects.select_related("vm", "source", "destination")
    job = jobs.filter(pk=job_id, state=JobState.UNKNOWN, worker="").first()
    if job is None or not hand_to_recovery(job):
        return False
    if user is not None:
        audit_job(job, "asked_again", actor=user, request=request)
    return True


def requeue_orphans() -> list[int]:
    """Give a new worker task to every job admitted more than ORPHAN_AFTER ago that no task will
    start (a task waiting for a free worker is left alone). Never a second run: a task claims the
    job only while it is still admitted (Runner.start), so an old task turning up does nothing."""
    from migrations_ui.jobs.tasks import run_job

    now = timezone.now()
    admitted = MigrationJob.objects.filter(state=JobState.ADMITTED).filter(
        Q(heartbeat_at__lt=now - ORPHAN_AFTER) | Q(heartbeat_at__isnull=True)
    )
    if not admitted:
        return []
    tasks = DBTaskResult.objects.filter(task_path=run_job.module_path)
    waiting, running = _job_ids(tasks.ready()), _job_ids(tasks.running())
    requeued = []
    for job in admitted:
        claim_overdue = job.heartbeat_at is None or job.heartbeat_at < now - STALE_AFTER
        if job.pk in waiting or (job.pk in running and not claim_overdue):
            continue
        with transaction.atomic():
            leased = MigrationJob.objects.filter(
                pk=job.pk, state=JobState.ADMITTED, heartbeat_at=job.heartbeat_at
            ).update(heartbeat_at=now)
            if leased:
                record(job, "requeued", {"since": job.heartbeat_at.isoformat() if job.heartbeat_at else None})
                run_job.enqueue(job.pk)
                requeued.append(job.pk)
    return requeued


def _job_ids(tasks) -> set[int]:
    return {args["args"][0] for args in tasks.values_list("args_kwargs", flat=True) if args.get("args")}


def tick() -> None:
    reap_stale()
    requeue_orphans()
    admit_waiting()
    enqueue_sync_if_due()  # the inventory, every INVENTORY_SYNC_INTERVAL: whichever worker ticks first
    enqueue_readiness_if_stale()  # could each host be emptied: after syncs and finished moves
    windows.tick()  # maintenance windows that are due start; batches past their deadline start no more
    restart_stale_drains()  # a cluster drain whose follower's worker died gets a new follower


def start_supervisor(stop: threading.Event, interval: float = TICK_S) -> threading.Thread:
    """Run tick() every `interval` seconds in a daemon thread until `stop` is set."""
    worker_beat = WorkerBeat()  # the worker's heartbeat for the metrics (migrations_ui.beats)

    def beat_and_tick() -> None:
        worker_beat()
        tick()

    return start_ticker("job-supervisor", beat_and_tick, stop, interval)
