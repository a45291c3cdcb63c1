"""Batches: jobs started together from one plan (an evacuation, a selection, a move back).

start_batch records the batch, the host's maintenance flag and the audit row and queues the plan's
jobs, all in one transaction: a batch is never half made. A move refused at that moment (the VM
began moving meanwhile, a rule now blocks) is an outcome of the batch, kept in its plan.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from fabric.driver import fabric_seconds_per_second
from fabric.models import Host
from migrations_ui.evacuate import move_back_plan, run_plan
from migrations_ui.evacuation import LeftVm, Plan, PlannedMove
from migrations_ui.models import ACTIVE_STATES, FINAL_STATES, Batch, BatchKind, JobEvent, JobState, MigrationJob
from migrations_ui.timeline import timeline_svg
from utilities.texts import Msg, localized, without_period


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


def _left_reasons(data: dict) -> list[str]:
    """The left VMs' reasons, as Msg texts again where the batch kept their templates."""
    texts = data.get("i18n_left") or []
    return [
        Msg.from_stored(texts[i], row["reason"]) if i < len(texts) and texts[i] else row["reason"]
        for i, row in enumerate(data.get("left", []))
    ]


def plan_of(data: dict) -> Plan:
    """A stored plan back as a Plan, enough for the timeline (no model details: they are not kept)."""
    moves = tuple(
        PlannedMove(
            vm=m["vm"],
            vm_id=m.get("vm_id", ""),
            source=m.get("source", ""),
            destination=m["destination"],
            destination_name=m.get("destination_name", ""),
            transfer_type=m["transfer_type"],
            start_s=m["start_s"],
            end_s=m["end_s"],
            alone=None,
            spec=None,
        )
        for m in data.get("moves", [])
    )
    left = tuple(
        LeftVm(v["vm"], v.get("vm_id", ""), v.get("source", ""), reason)
        for v, reason in zip(data.get("left", []), _left_reasons(data), strict=True)
    )
    return Plan(data.get("host"), moves, left, data.get("makespan_s", 0.0), data.get("lower_bound_s", 0.0), {})


def start_batch(
    plan: Plan, kind: str, name: str, *, host: Host | None = None, move_stopped: bool = False, user=None, request=None
) -> Batch:
    """Record the batch and queue its jobs in plan order. An evacuation marks its host in
    maintenance; a move back clears it. Raises BatchRefused when there is nothing to do."""
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
        jobs, refused = run_plan(plan, user=user, request=request, batch=batch)
        batch.plan = stored(plan, move_stopped=move_stopped, refused=refused)
        batch.save(update_fields=["plan"])
        if host is not None and kind in (BatchKind.EVACUATION, BatchKind.MOVE_BACK):
            Host.objects.filter(pk=host.pk).update(maintenance=kind == BatchKind.EVACUATION)
            host.maintenance = kind == BatchKind.EVACUATION
        details = {"batch": batch.pk, "moves": len(plan.moves), "queued": len(jobs), "left": len(plan.left)}
        details["makespan_s"] = round(plan.makespan_s, 1)
        action = "evacuation.started" if kind == BatchKind.EVACUATION else f"batch.{kind}.started"
        target = {"target_type": "host", "target_name": host.fqdn} if host else {"target_type": "batch"}
        record(action, actor=user, request=request, target_id=str(batch.pk), details=details, **target)
    return batch


def evacuation_refusal(host: Host) -> str | None:
    """Why the host cannot be evacuated now (an evacuation of it is still running), or None."""
    active = MigrationJob.objects.filter(batch__host=host, batch__kind=BatchKind.EVACUATION, state__in=ACTIVE_STATES)
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
    return Batch.objects.filter(host=host, kind=BatchKind.EVACUATION).order_by("-created_at", "-pk").first()


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
    from migrations_ui.emit import send_batch_update

    transaction.on_commit(lambda: send_batch_update(batch_id))


# --- the batch page ----------------------------------------------------------------------------------
# The page, the websocket replay and the emitter's updates all render through the functions below.


@dataclass(frozen=True)
class Outcome:
    vm: str
    destination: str
    transfer_type: str
    start_s: float | None
    end_s: float | None
    job: MigrationJob | None
    note: str  # why no job: refused or left


def batch_for_page(batch_id: int) -> Batch:
    return Batch.objects.select_related("host", "created_by").get(pk=batch_id)


class Run(NamedTuple):
    """What the progress bar and the timelines need of a job: a batch may hold a thousand, read
    again on every update, so these come as plain rows, not model instances."""

    vm_id: str
    state: str
    percent: int
    started_at: datetime | None
    finished_at: datetime | None


def _runs(batch: Batch) -> list[Run]:
    rows = MigrationJob.objects.filter(batch_id=batch.pk).order_by("pk")
    fields = ("vm__guid", "state", "percent", "started_at", "finished_at")
    return [Run(str(guid), *rest) for guid, *rest in rows.values_list(*fields)]


def _jobs(batch: Batch) -> list[MigrationJob]:
    """The jobs for the VM rows (not batch.jobs: its manager would set .batch on every one)."""
    fields = ("state", "percent", "error_message", "vm_name", "kind", "batch", "vm__guid")
    return list(MigrationJob.objects.filter(batch_id=batch.pk).select_related("vm").only(*fields).order_by("pk"))


def _outcome(move: dict, job: MigrationJob | None, note: str = "") -> Outcome:
    return Outcome(
        move["vm"],
        move.get("destination_name") or move["destination"],
        move["transfer_type"],
        move["start_s"],
        move["end_s"],
        job,
        note,
    )


def outcomes(batch: Batch, jobs: list[MigrationJob]) -> list[Outcome]:
    """Each planned VM with its job (or why it has none), then the VMs the plan left."""
    by_vm = {str(j.vm.guid): j for j in jobs}
    refused = {r.get("vm_id"): r["reason"] for r in batch.plan.get("refused", [])}
    rows = []
    for m in batch.plan.get("moves", []):
        job = by_vm.get(m.get("vm_id"))
        rows.append(_outcome(m, job, "" if job else refused.get(m.get("vm_id"), Msg("No job."))))
    left = zip(batch.plan.get("left", []), _left_reasons(batch.plan), strict=True)
    return rows + [Outcome(v["vm"], "", "", None, None, None, reason) for v, reason in left]


def _actual(runs: list[Run]) -> tuple[dict, datetime | None]:
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


def progress_context(batch: Batch, runs: list[Run]) -> dict:
    """The batch's counts, overall progress and what can be done now (Move back, End maintenance)."""
    counts = Counter(r.state for r in runs)
    done = sum(100 if r.state == JobState.SUCCEEDED else r.percent for r in runs)
    _, t0 = _actual(runs)
    ends = [r.finished_at for r in runs if r.finished_at]
    active = sum(r.state in ACTIVE_STATES for r in runs)
    finished = not active
    in_maintenance = batch.kind == BatchKind.EVACUATION and batch.host is not None and batch.host.maintenance
    return {
        "batch": batch,
        "counts": [(JobState(s).label, n) for s, n in counts.items()],
        "percent": round(done / len(runs)) if runs else 100,
        "finished": finished,
        "active": active,
        "makespan_s": batch.plan.get("makespan_s", 0),
        "actual_s": round(_fabric_s(max(ends) - t0), 1) if finished and t0 and ends else None,
        "in_maintenance": in_maintenance,
        # Both end the maintenance: offered once the evacuation has ended (batches.start_move_back).
        "can_move_back": in_maintenance and finished,
    }


def timelines_context(batch: Batch, runs: list[Run], *, plan_too: bool = True) -> dict:
    """The plan's timeline (it never changes) and the plan with the actual run drawn in."""
    plan = plan_of(batch.plan)
    actual, _ = _actual(runs)
    # timeline_svg escapes every name it draws: its output is the only markup marked safe here.
    plan_svg = (
        timeline_svg(plan, title=localized(Msg("Plan: %(name)s", name=batch.name))) if plan.moves and plan_too else ""
    )
    actual_svg = (
        timeline_svg(plan, actual=actual, title=localized(Msg("Plan and run: %(name)s", name=batch.name)))
        if actual
        else ""
    )
    return {"plan_svg": mark_safe(plan_svg), "actual_svg": mark_safe(actual_svg)}  # noqa: S308


# The actual run's timeline of a batch of a thousand moves is ~300 kB of SVG: it is redrawn when a
# move starts or ends, at most this often per batch, and always when the batch's last move ends.
ACTUAL_EVERY_S = 5.0
_actual_sent: dict[int, float] = {}


def actual_due(job: MigrationJob, newest: JobEvent | None) -> bool:
    """Whether this update of a batch's job redraws the batch's actual-run timeline."""
    if newest is not None and newest.kind == "progress":
        return False
    running = MigrationJob.objects.filter(batch_id=job.batch_id, state__in=ACTIVE_STATES)
    if job.state in FINAL_STATES and not running.exists():
        _actual_sent.pop(job.batch_id, None)
        return True
    now, last = time.monotonic(), _actual_sent.get(job.batch_id)
    if last is not None and now - last < ACTUAL_EVERY_S:
        return False
    if len(_actual_sent) > 1000:  # batches whose end another process announced
        _actual_sent.clear()
    _actual_sent[job.batch_id] = now
    return True


def batch_context(batch: Batch) -> dict:
    """Each VM's outcome, the batch's counts and progress, and the plan beside the actual run."""
    runs = _runs(batch)
    return {
        "outcomes": outcomes(batch, _jobs(batch)),
        **progress_context(batch, runs),
        **timelines_context(batch, runs),
    }


def render_batch_state(batch: Batch, *, timelines: bool = True) -> str:
    """The progress section and, with timelines, the actual run's timeline (it changes when a move
    starts or ends), as out-of-band swaps."""
    runs = _runs(batch)
    html = render_to_string("partials/batch_progress.html", {**progress_context(batch, runs), "oob": True})
    if timelines:
        context = {**timelines_context(batch, runs, plan_too=False), "oob": True}
        html += render_to_string("partials/batch_actual.html", context)
    return html


def render_batch_replay(batch_id: int) -> tuple[str, str, dict[int, int]]:
    """Everything the batch page shows that changes, from the database: the state sections, the VM
    rows (a <tbody>: send it in a message of its own) and each job's newest event sequence."""
    batch = batch_for_page(batch_id)
    newest = JobEvent.objects.filter(job__batch=batch).values("job_id").annotate(n=Max("sequence"))
    sequences = {r["job_id"]: r["n"] for r in newest}  # first: the rows below are at least this new
    rows = render_to_string("partials/batch_rows.html", {"outcomes": outcomes(batch, _jobs(batch)), "oob": True})
    return render_batch_state(batch), rows, sequences


def render_batch_job(job: MigrationJob, *, timelines: bool) -> tuple[str, str]:
    """After a change of one of the batch's jobs: the batch's state sections and that job's row."""
    batch = batch_for_page(job.batch_id)
    guid = str(job.vm.guid)
    move = next((m for m in batch.plan.get("moves", []) if m.get("vm_id") == guid), None)
    if move is None:  # not in the stored plan (an older batch): the job has the facts
        move = {"vm": job.vm_name, "destination": job.destination.name, "transfer_type": job.kind}
        move |= {"start_s": None, "end_s": None}
    row = render_to_string("partials/batch_row.html", {"o": _outcome(move, job), "oob": True})
    return render_batch_state(batch, timelines=timelines), row
