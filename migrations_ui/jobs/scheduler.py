"""Admission against the database: atomic across processes, then a worker task per admitted job.

admit_waiting() runs whenever a job is created or ends (and on the supervisor's tick). It holds
the database's write lock for the whole decision: an IMMEDIATE transaction on SQLite, an
advisory transaction lock on PostgreSQL, so two processes can never both hand out a host's last
slot. Each admitted job's worker task is written in the same transaction (django-tasks-db keeps
its tasks in this database): a process killed after admitting leaves no admitted job without one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from fabric.models import Host
from migrations_ui.jobs.admission import Decision, Waiting, decide
from migrations_ui.jobs.events import change_state
from migrations_ui.models import SLOT_STATES, JobState, MigrationJob
from migrations_ui.slots import LIVE, STORAGE, Slot, slots_needed
from utilities.db import serialize_writers


def queue_order():
    # The one place the queue's order is defined: priority, then an operator's reordering (queue.py),
    # then age. Jobs never reordered have no key and queue after those that have one.
    return MigrationJob.objects.filter(state=JobState.QUEUED).order_by(
        "-priority", F("queue_key").asc(nulls_last=True), "created_at", "pk"
    )


def slots_in_use() -> Counter:
    # A job whose move has ended on the host holds no slot while it verifies and refreshes (runner.py).
    holding = MigrationJob.objects.filter(state__in=SLOT_STATES, slots_released_at__isnull=True)
    used = Counter()
    for kind, source, destination in holding.values_list("kind", "source", "destination"):
        used.update(slots_needed(kind, source, destination))
    return used


def host_limits(host_ids) -> dict[Slot, int]:
    return _limits(Host.objects.filter(pk__in=set(host_ids)).select_related("cluster"))


def _limits(hosts) -> dict[Slot, int]:
    limits = {}
    for host in hosts:
        limits[(host.pk, LIVE)] = host.effective_max_live_migrations
        limits[(host.pk, STORAGE)] = host.max_storage_migrations
    return limits


def queue_decision() -> Decision:
    """Who may start now, and for the others which slot they wait for, their place in the queue, or
    the paused hosts they wait for."""
    waiting = [Waiting(*row) for row in queue_order().values_list("pk", "kind", "source", "destination")]
    ids = {h for w in waiting for h in (w.source, w.destination)}
    hosts = list(Host.objects.filter(pk__in=ids).select_related("cluster"))
    paused = {h.pk: h.name for h in hosts if h.queue_paused}
    # A job touching a paused host neither starts nor holds a slot in line: the others go on.
    held = {
        w.job_id: tuple(paused[h] for h in dict.fromkeys((w.source, w.destination)) if h in paused) for w in waiting
    }
    free = [w for w in waiting if not held[w.job_id]]
    decision = decide(free, slots_in_use(), _limits(hosts))
    return replace(decision, paused={pk: names for pk, names in held.items() if names})


def admit_waiting() -> list[int]:
    """Admit every job that fits now, each with its worker task, in one transaction."""
    # The one import loop of the jobs: the task runs the runner, and the runner admits the next
    # jobs when one ends (it imports this module).
    from migrations_ui.jobs.tasks import run_job

    with transaction.atomic():
        serialize_writers("admission")
        decision = queue_decision()
        admitted = []
        for job in MigrationJob.objects.filter(pk__in=decision.admit, state=JobState.QUEUED):
            # heartbeat_at: when it was admitted, for supervisor.requeue_orphans (the worker's claim resets it).
            change_state(job, JobState.ADMITTED, heartbeat_at=timezone.now())
            # Not on commit: a process killed between the commit and the hook left a job "Starting" for ever.
            run_job.enqueue(job.pk)
            admitted.append(job.pk)
    return admitted
