"""Queue control for operators: reorder queued jobs, pause and resume a host's queue, cancel many.

The queue's order stays the scheduler's (scheduler.queue_order: priority, the operator's key, age),
so admission keeps its FIFO-per-slot rule; reordering only rewrites the keys. Every change is
audited in the transaction that makes it, and the admission runs again once it has committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from fabric.models import Host
from migrations_ui.jobs.operations import CannotCancel, cancel_job
from migrations_ui.jobs.scheduler import queue_order
from migrations_ui.models import JobState, MigrationJob
from utilities.db import serialize_writers
from utilities.texts import Msg

UP, DOWN = "up", "down"
MOST_AT_ONCE = 500


class QueueError(Exception):
    """The change cannot be made; the message says why (nothing was changed)."""


def move_job(job_id: int, direction: str, user=None, request=None) -> MigrationJob:
    """Swap a queued job with its neighbour in the queue; raises QueueError with the reason."""
    if direction not in (UP, DOWN):
        raise QueueError(Msg("Unknown direction %(direction)s: use up or down.", direction=repr(direction)))
    with transaction.atomic():
        serialize_writers("admission")  # the admission reads the order under the same lock
        queue = list(queue_order().only("pk", "priority", "vm_name"))
        at = next((i for i, job in enumerate(queue) if job.pk == job_id), None)
        if at is None:
            raise QueueError(Msg("Job %(pk)s is not queued (any more): only waiting jobs can be reordered.", pk=job_id))
        other = at - 1 if direction == UP else at + 1
        if not 0 <= other < len(queue):
            if direction == UP:
                raise QueueError(Msg("Job %(pk)s is already first in the queue.", pk=job_id))
            raise QueueError(Msg("Job %(pk)s is already last in the queue.", pk=job_id))
        job, neighbour = queue[at], queue[other]
        queue[at], queue[other] = neighbour, job
        # Exchanging priorities too keeps the order true where the two had different priorities.
        job.priority, neighbour.priority = neighbour.priority, job.priority
        for key, queued in enumerate(queue):
            queued.queue_key = key
        MigrationJob.objects.bulk_update(queue, ["queue_key", "priority"])
        _audit("queue.moved", user, request, job, {"direction": direction, "position": queue.index(job) + 1})
        transaction.on_commit(_admit_and_announce(job.pk))
    return job


def set_paused(host: Host, paused: bool, user=None, request=None) -> Host:
    """Pause (queued jobs touching the host wait) or resume a host's queue."""
    from audit.log import record

    with transaction.atomic():
        # Pausing a paused queue (or resuming a running one) changes nothing: no audit row.
        changed = Host.objects.filter(pk=host.pk).exclude(queue_paused=paused).update(queue_paused=paused)
        host.queue_paused = paused
        if changed:
            record(
                "queue.paused" if paused else "queue.resumed",
                actor=user,
                request=request,
                target_type="host",
                target_id=str(host.pk),
                target_name=host.fqdn,
            )
        waiting = queue_order().filter(source=host).first() or queue_order().filter(destination=host).first()
        transaction.on_commit(_admit_and_announce(waiting.pk if waiting else None))
    return host


@dataclass(frozen=True)
class CancelResult:
    job_id: int
    ok: bool
    message: str


def cancel_jobs(ids: list[int], user=None) -> list[CancelResult]:
    """Cancel each job on its own (one job that cannot be cancelled does not stop the others)."""
    if not ids:
        raise QueueError(Msg("Select at least one job to cancel."))
    if len(ids) > MOST_AT_ONCE:
        raise QueueError(Msg("At most %(n)s jobs can be cancelled at once.", n=MOST_AT_ONCE))
    results = []
    for job_id in dict.fromkeys(ids):
        try:
            job = cancel_job(job_id, user)
        except CannotCancel as exc:
            results.append(CancelResult(job_id, False, str(exc)))
            continue
        if job.state == JobState.CANCELLED:
            text = Msg("Job %(pk)s (%(vm)s) cancelled: it had not started.", pk=job_id, vm=job.vm_name)
        else:
            text = Msg("Job %(pk)s (%(vm)s): the host is asked to stop.", pk=job_id, vm=job.vm_name)
        results.append(CancelResult(job_id, True, text))
    return results


def _audit(action: str, user, request, job: MigrationJob, details: dict) -> None:
    from audit.log import record

    record(
        action,
        actor=user,
        request=request,
        target_type="job",
        target_id=str(job.pk),
        target_name=job.vm_name,
        details=details,
    )


def _admit_and_announce(job_id: int | None):
    """After commit: admit what may start now, and redraw the Jobs pages' sections (the changed
    order is announced through a job of the queue: the emitter sends the sections whole)."""

    def run():
        from migrations_ui.jobs.emit import send_job_update
        from migrations_ui.jobs.scheduler import admit_waiting

        admit_waiting()
        if job_id is not None:
            send_job_update(job_id)

    return run
