"""Admission against the database: atomic across processes, then a worker task per admitted job.

admit_waiting() runs whenever a job is created or ends (and on the supervisor's tick). It holds
the database's write lock for the whole decision: an IMMEDIATE transaction on SQLite, an
advisory transaction lock on PostgreSQL, so two processes can never both hand out a host's last
slot. Each admitted job's worker task is written in the same transaction (django-tasks-db keeps
its tasks in this database): a process killed after admitting leaves no admitted job without one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
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


def slots_in_use(caps: dict[Slot, int] | None = None) -> Counter:
    """The slots the jobs holding them take, link caps included (caps: from queue_decision, else read
    from these jobs' own batches in the same query)."""
    rows = _holding()
    return _used(rows, link_caps((batch, listed) for *_, batch, listed in rows) if caps is None else caps)


def _holding() -> list[tuple]:
    # A job whose move has ended on the host holds no slot while it verifies and refreshes (runner.py).
    holding = MigrationJob.objects.filter(state__in=SLOT_STATES, slots_released_at__isnull=True)
    return list(holding.values_list("kind", "source", "destination", "batch", "batch__plan__link_caps"))


def _used(rows: list[tuple], caps: dict[Slot, int]) -> Counter:
    used = Counter()
    for kind, source, destination, batch, _ in rows:
        used.update(slots_needed(kind, source, destination))
        used.update(link_slots(kind, source, destination, batch, caps))
    return used


LINK = "link:"  # a batch's link cap on a host: the slot (host id, "link:<batch id>")


def link_caps(batches: Iterable[tuple[int | None, list | None]]) -> dict[Slot, int]:
    """The link caps of these (batch id, its plan's "link_caps") as slots: (host id, "link:<batch id>")
    -> cap. A plan caps a host's moves at once where its link, not its limit, is the bottleneck
    (planning.planner.LinkCap: more would not end sooner); the batch's moves keep to it, as the
    plan's timeline does. Read with the jobs' own rows: a query more only when a batch has caps."""
    caps = {(batch, c["host"]): c["cap"] for batch, listed in batches if batch for c in listed or ()}
    if not caps:
        return {}
    hosts = dict(Host.objects.filter(fqdn__in={fqdn for _, fqdn in caps}).values_list("fqdn", "pk"))
    return {(hosts[fqdn], f"{LINK}{batch}"): cap for (batch, fqdn), cap in caps.items() if fqdn in hosts}


def link_slots(kind: str, source: int, destination: int, batch: int | None, caps: dict[Slot, int]) -> tuple:
    """The link-cap slots a batch's move takes besides its hosts' own (live moves only: a cap
    counts the moves over a host's link)."""
    if batch is None or not caps or not any(slot == LIVE for _, slot in slots_needed(kind, source, destination)):
        return ()
    return tuple(s for host in dict.fromkeys((source, destination)) if (s := (host, f"{LINK}{batch}")) in caps)


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
    fields = ("pk", "kind", "source", "destination", "batch", "batch__plan__link_caps", "not_before")
    rows = list(queue_order().values_list(*fields))
    # A job its plan holds back neither starts nor keeps its slots in line until its time: the plan's
    # timeline gave them to the others meanwhile (planning.ordering.hold_back). The tick admits it then.
    now = timezone.now()
    held = {r[0]: r[6] for r in rows if r[6] and r[6] > now}
    rows = [r[:6] for r in rows if r[0] not in held]
    holding = _holding()
    caps = link_caps([(r[4], r[5]) for r in rows] + [(r[3], r[4]) for r in holding])
    waiting = [Waiting(pk, kind, s, d, link_slots(kind, s, d, batch, caps)) for pk, kind, s, d, batch, _ in rows]
    ids = {h for w in waiting for h in (w.source, w.destination)}
    hosts = list(Host.objects.filter(pk__in=ids).select_related("cluster"))
    paused = {h.pk: h.name for h in hosts if h.queue_paused}
    # A job touching a paused host neither starts nor holds a slot in line: the others go on.
    on_paused = {
        w.job_id: tuple(paused[h] for h in dict.fromkeys((w.source, w.destination)) if h in paused) for w in waiting
    }
    free = [w for w in waiting if not on_paused[w.job_id]]
    decision = decide(free, _used(holding, caps), {**_limits(hosts), **caps})
    return replace(decision, paused={pk: names for pk, names in on_paused.items() if names}, caps=caps, held=held)


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
