"""Batches: jobs started together from one plan (an evacuation, a selection, a move back).

start_batch records the batch, the host's maintenance flag and the audit row and queues the plan's
jobs, all in one transaction: a batch is never half made. A move refused at that moment (the VM
began moving meanwhile, a rule now blocks) is an outcome of the batch, kept in its plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from fabric.driver import fabric_seconds_per_second
from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.operations import Refused, create_job
from migrations_ui.models import ACTIVE_STATES, Batch, BatchKind, JobState, MigrationJob
from migrations_ui.planning.inventory import move_back_plan
from migrations_ui.planning.planner import Plan
from migrations_ui.planning.report import Chosen
from utilities.texts import Msg, without_period

# Batches that empty their host for a maintenance: the console's evacuation, the cluster's drain.
EMPTYING = (BatchKind.EVACUATION, BatchKind.DRAIN)


class BatchRefused(Exception):
    """The batch cannot start; the message says why (nothing was recorded)."""


def stored(plan: Plan, **extra) -> dict:
    """The plan's stable JSON, plus what the batch page and Move back need to redraw it."""
    data = plan.as_json()
    for row, move in zip(data["moves"], plan.moves, strict=True):
        row.update(vm_id=move.vm_id, source=move.source, destination_name=move.destination_name)
    for row, left in zip(data["left"], plan.left, strict=True):
        row.update(vm_id=left.vm_id, source=left.source)
    # The reasons' templates and values, so a page in another language can show them (not in the API).
    texts = [left.reason.as_stored() if isinstance(left.reason, Msg) else None for left in plan.left]
    if any(texts):
        data["i18n_left"] = texts
    return {**data, **extra}


def start_batch(
    plan: Plan,
    kind: str,
    name: str,
    *,
    host: Host | None = None,
    move_stopped: bool = False,
    storage_paths: Mapping[str, str] | None = None,
    power: Mapping[str, str] | None = None,
    maintenance: bool = True,
    extra: Mapping | None = None,
    user=None,
    request=None,
) -> Batch:
    """Record the batch and queue its jobs in plan order. An evacuation marks its host in
    maintenance (unless maintenance=False: a VM stays running there); a move back clears it.
    storage_paths: the folder an operator chose for a Live (VSM) move's files, by VM id (the others
    go to their destination's default folder). power: VM id -> "save" or "shut_down" before an
    offline move (the pre-maintenance report's choices). extra: more for the stored plan and the
    audit row. Raises BatchRefused when there is nothing to do."""
    from audit.log import record

    if not plan.moves and kind != BatchKind.EVACUATION:
        if not plan.left:
            raise BatchRefused(Msg("Nothing to move."))
        reasons = Msg("%(vm)s: %(reason)s", vm=plan.left[0].vm, reason=without_period(plan.left[0].reason))
        for v in plan.left[1:5]:
            reason = Msg("%(vm)s: %(reason)s", vm=v.vm, reason=without_period(v.reason))
            reasons = Msg("%(reasons)s; %(reason)s", reasons=reasons, reason=reason)
        raise BatchRefused(Msg("Nothing to move (%(reasons)s).", reasons=reasons))
    with transaction.atomic():
        batch = Batch.objects.create(name=name[:255], kind=kind, host=host, created_by=user, plan={})
        jobs, refused = run_plan(
            plan, user=user, request=request, batch=batch, storage_paths=storage_paths, power=power
        )
        batch.plan = stored(plan, move_stopped=move_stopped, refused=refused, **(extra or {}))
        batch.save(update_fields=["plan"])
        if host is not None and kind in (BatchKind.EVACUATION, BatchKind.MOVE_BACK):
            entering = kind == BatchKind.EVACUATION and maintenance
            Host.objects.filter(pk=host.pk).update(maintenance=entering)
            host.maintenance = entering
        details = {"batch": batch.pk, "moves": len(plan.moves), "queued": len(jobs), "left": len(plan.left)}
        details.update(extra or {})
        details["makespan_s"] = round(plan.makespan_s, 1)
        action = "evacuation.started" if kind == BatchKind.EVACUATION else f"batch.{kind}.started"
        target = {"target_type": "host", "target_name": host.fqdn} if host else {"target_type": "batch"}
        record(action, actor=user, request=request, target_id=str(batch.pk), details=details, **target)
    return batch


def start_evacuation(host: Host, chosen: Chosen, *, move_stopped: bool = False, user=None, request=None) -> Batch:
    """Evacuate the host as the pre-maintenance report's choices say: the moves (saved or shut down
    first where chosen), the VMs shut down where they are (a worker task, after commit), and the
    host in maintenance unless a VM stays running there. Each choice becomes the VM's default for
    the next maintenance. Audited with the choices, by VM name."""
    names = {v.vm_id: v.vm for v in chosen.plan.left} | {m.vm_id: m.vm for m in chosen.plan.moves}
    extra = {
        "choices": {names.get(vm_id, vm_id): choice for vm_id, choice in chosen.choices.items()},
        "shut_down": list(chosen.shut_down),
        "left_running": [v.vm for v in chosen.left_running],
    }
    with transaction.atomic():
        batch = start_batch(
            chosen.plan,
            BatchKind.EVACUATION,
            f"Evacuate {host.name}",
            host=host,
            move_stopped=move_stopped,
            power=chosen.power,
            maintenance=not chosen.left_running,
            extra=extra,
            user=user,
            request=request,
        )
        for vm_id, choice in chosen.choices.items():
            VirtualMachine.objects.filter(guid=vm_id).update(maintenance_choice=choice)
        if chosen.shut_down:
            from migrations_ui.jobs.tasks import shut_down_task

            transaction.on_commit(lambda: shut_down_task.enqueue(batch.pk))
    return batch


def evacuation_refusal(host: Host) -> str | None:
    """Why the host cannot be evacuated now (an evacuation of it is still running), or None."""
    kinds = (BatchKind.EVACUATION, BatchKind.DRAIN)
    active = MigrationJob.objects.filter(batch__host=host, batch__kind__in=kinds, state__in=ACTIVE_STATES)
    if n := active.count():
        if n == 1:
            return Msg("An evacuation of %(host)s is still running (1 move not finished).", host=host.name)
        return Msg("An evacuation of %(host)s is still running (%(n)s moves not finished).", host=host.name, n=n)
    return None


def evacuation_start_refusal(host: Host) -> str | None:
    """Why an evacuation of the host cannot start now, or None: the host does not answer (no VM can be
    moved off it, so it would only sit in maintenance with an empty batch), or one still runs."""
    if not host.reachable:
        return Msg(
            "%(host)s does not answer, so none of its VMs can be moved off it; it was not put in maintenance. "
            "Make it answer again (its page shows the last error), then evacuate it.",
            host=host.name,
        )
    return evacuation_refusal(host)


def last_evacuation(host: Host) -> Batch | None:
    """The host's last evacuation or drain."""
    return Batch.objects.filter(host=host, kind__in=EMPTYING).order_by("-created_at", "-pk").first()


def start_move_back(batch: Batch, user=None, request=None) -> Batch | None:
    """Return each VM the evacuation moved to the host it came from, and end the maintenance.
    None: there was nothing to bring back, the maintenance just ended."""
    if batch.kind != BatchKind.EVACUATION or batch.host is None:
        raise BatchRefused(Msg("Only an evacuation's VMs can be moved back."))
    if not batch.host.maintenance:
        raise BatchRefused(
            Msg("%(host)s is not in maintenance: its VMs were moved back already.", host=batch.host.name)
        )
    jobs = list(batch.jobs.select_related("vm", "source", "destination"))
    if running := sum(j.state in ACTIVE_STATES for j in jobs):
        raise BatchRefused(
            Msg(
                "The evacuation is still running (%(n)s moves not finished); move back afterwards.",
                n=running,
            )
        )
    moved = [j for j in jobs if j.state == JobState.SUCCEEDED]
    move_stopped = bool(batch.plan.get("move_stopped"))
    plan = move_back_plan(moved, move_stopped=move_stopped)
    if not plan.moves:
        # Nothing left to bring back (all back already, or nothing had moved): maintenance just ends.
        from audit.log import record

        with transaction.atomic():
            Host.objects.filter(pk=batch.host.pk).update(maintenance=False)
            batch.host.maintenance = False
            record("maintenance.ended", actor=user, request=request, target_type="host", target_name=batch.host.fqdn)
            _tell_batch_page(batch.pk)
        return None
    name = f"Move back to {batch.host.name}"
    with transaction.atomic():
        moving = start_batch(
            plan, BatchKind.MOVE_BACK, name, host=batch.host, move_stopped=move_stopped, user=user, request=request
        )
        _tell_batch_page(batch.pk)  # the evacuation's page: its host is out of maintenance
    return moving


def end_maintenance(host: Host, user=None, request=None) -> Batch | None:
    """End the host's maintenance and leave the evacuated VMs where they are (the operator may want
    them to stay). Audited; refused while an evacuation of the host still runs. Returns the host's
    last evacuation (its page is told), or None."""
    from audit.log import record

    if running := evacuation_refusal(host):
        raise BatchRefused(
            Msg(
                "%(running)s Wait for it, or cancel its moves, before ending the maintenance.",
                running=running,
            )
        )
    evacuation = last_evacuation(host)
    with transaction.atomic():
        # From the database, not the object: a second click, or another operator, may have ended it.
        if not Host.objects.filter(pk=host.pk, maintenance=True).update(maintenance=False):
            raise BatchRefused(Msg("%(host)s is not in maintenance.", host=host.name))
        host.maintenance = False
        details = {"moved_back": False, "batch": evacuation.pk if evacuation else None}
        record(
            "maintenance.ended",
            actor=user,
            request=request,
            target_type="host",
            target_id=str(host.pk),
            target_name=host.fqdn,
            details=details,
        )
        if evacuation is not None:
            _tell_batch_page(evacuation.pk)
    return evacuation


def _tell_batch_page(batch_id: int) -> None:
    from migrations_ui.jobs.emit import send_batch_update

    transaction.on_commit(lambda: send_batch_update(batch_id))


def run_plan(
    plan: Plan,
    user=None,
    request=None,
    batch=None,
    storage_paths: Mapping[str, str] | None = None,
    power: Mapping[str, str] | None = None,
) -> tuple[list[MigrationJob], list[dict]]:
    """Queue one job per planned move, in plan order; a move refused meanwhile is reported, not fatal.
    storage_paths: VM id -> the folder its files go to (none: the destination's default). power:
    VM id -> "save" or "shut_down" first (start_batch)."""
    storage_paths, power = storage_paths or {}, power or {}
    hosts = {h.fqdn: h for h in Host.objects.filter(fqdn__in={m.destination for m in plan.moves})}
    vms = {str(v.guid): v for v in VirtualMachine.objects.filter(guid__in=[m.vm_id for m in plan.moves])}
    # A held move's second counts from now, in the fabric's seconds (the demo's runs faster than the wall's).
    now, per_second = timezone.now(), fabric_seconds_per_second()
    jobs, refused = [], []
    for move in plan.moves:
        try:
            path = storage_paths.get(move.vm_id, "")
            held = now + timedelta(seconds=move.not_before_s / per_second) if move.not_before_s else None
            job = create_job(
                vms[move.vm_id],
                hosts[move.destination],
                storage_path=path,
                power=power.get(move.vm_id, ""),
                batch=batch,
                not_before=held,
                user=user,
                request=request,
            )
            jobs.append(job)
        except Refused as exc:
            refused.append({"vm": move.vm, "vm_id": move.vm_id, "reason": "; ".join(f.message for f in exc.findings)})
    return jobs, refused


# --- where a batch stands ----------------------------------------------------------------------------
# One summary for the batch page and the API: counts, progress, the actual time against the plan's.


class Run(NamedTuple):
    """What the summary and the timelines need of a job: a batch may hold a thousand, read again on
    every update, so these come as plain rows, not model instances."""

    vm_id: str
    state: str
    percent: int
    started_at: datetime | None
    finished_at: datetime | None


def runs(batch: Batch) -> list[Run]:
    rows = MigrationJob.objects.filter(batch_id=batch.pk).order_by("pk")
    fields = ("vm__guid", "state", "percent", "started_at", "finished_at")
    return [Run(str(guid), *rest) for guid, *rest in rows.values_list(*fields)]


def actual_times(runs: list[Run]) -> tuple[dict, datetime | None]:
    """Each started job's actual (start, end) in the fabric's seconds (those of the plan) from the first
    start, and that first start."""
    started = [r.started_at for r in runs if r.started_at]
    t0 = min(started) if started else None
    actual = {
        r.vm_id: (_fabric_s(r.started_at - t0), _fabric_s(r.finished_at - t0) if r.finished_at else None)
        for r in runs
        if t0 and r.started_at
    }
    return actual, t0


def _fabric_s(wall: timedelta) -> float:
    return wall.total_seconds() * fabric_seconds_per_second()


def batch_summary(batch: Batch, batch_runs: list[Run] | None = None) -> dict:
    """The batch's counts by state, overall progress, actual against planned time, and what can be
    done now (Move back, End maintenance): the batch page's progress section and the API's figures."""
    batch_runs = runs(batch) if batch_runs is None else batch_runs
    counts = Counter(r.state for r in batch_runs)
    done = sum(100 if r.state == JobState.SUCCEEDED else r.percent for r in batch_runs)
    _, t0 = actual_times(batch_runs)
    ends = [r.finished_at for r in batch_runs if r.finished_at]
    active = sum(r.state in ACTIVE_STATES for r in batch_runs)
    finished = not active
    in_maintenance = batch.kind in EMPTYING and batch.host is not None and batch.host.maintenance
    drain = batch.plan.get("drain") if batch.kind == BatchKind.DRAIN else None
    if drain is not None:  # the cluster may start its next move after this one: its own status says
        finished = finished and drain.get("status") in ("completed", "failed", "stopped", "refused")
    return {
        "counts": dict(counts),
        "percent": round(done / len(batch_runs)) if batch_runs else 100,
        "finished": finished,
        "active": active,
        "makespan_s": batch.plan.get("makespan_s", 0),
        "actual_s": round(_fabric_s(max(ends) - t0), 1) if finished and t0 and ends else None,
        "in_maintenance": in_maintenance,
        # Both end the maintenance: offered once the evacuation has ended (start_move_back).
        "can_move_back": in_maintenance and finished,
    }
