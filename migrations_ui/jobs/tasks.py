"""Worker tasks (Django's task API, run by db_worker / job_worker processes)."""

from datetime import datetime, timedelta

from django.utils import timezone
from django_tasks import task

from fabric.models import Host
from migrations_ui.jobs.runner import Runner
from migrations_ui.models import MigrationJob
from utilities.db import enqueue_once


@task()
def run_job(job_id: int) -> None:
    """Run an admitted job to its end (a no-op when it was cancelled or claimed meanwhile)."""
    runner = Runner.start(job_id)
    if runner is not None:
        runner.run()


@task()
def recover_job(job_id: int) -> None:
    """Follow a job whose worker died to its true end."""
    runner = Runner.take_over(job_id)
    if runner is not None:
        runner.recover()


@task()
def shut_down_task(batch_id: int) -> dict:
    """Shut down the VMs an evacuation's report chose to shut down where they stay."""
    from migrations_ui.jobs.power import shut_down_chosen

    return shut_down_chosen(batch_id)


@task()
def refresh_readiness_task() -> int:
    """Plan every host's evacuation again and store whether it could be emptied now (planning.readiness)."""
    from migrations_ui.planning.readiness import refresh_readiness

    return refresh_readiness()


# A batch finishes moves every few seconds: one refresh at a time, at most one every READINESS_EVERY.
READINESS_EVERY = timedelta(seconds=30)


def enqueue_readiness_if_stale(now: datetime | None = None) -> bool:
    """Enqueue the readiness refresh when a sync or a finished move came after the last one was
    enqueued, none waits or runs, and the last is READINESS_EVERY old; True when this call did."""
    now = now or timezone.now()

    def due(last: datetime | None) -> bool:
        if last is None:
            return Host.objects.filter(last_sync__isnull=False).exists()
        if now - last < READINESS_EVERY:
            return False
        synced = Host.objects.filter(last_sync__gt=last).exists()
        return synced or MigrationJob.objects.filter(finished_at__gt=last).exists()

    return enqueue_once(refresh_readiness_task, due)
