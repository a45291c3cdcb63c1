"""The batch page: each VM's outcome, the batch's progress and the plan's timeline beside the actual
run. The page, the websocket replay and the updates after a job's change all render through here;
the figures come from migrations_ui.jobs.batches.batch_summary, as the API's do."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import Max
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from fabric.driver import fabric_seconds_per_second
from migrations_ui.jobs.batches import Run, actual_times, batch_summary, runs
from migrations_ui.jobs.drain import NOT_MOVED
from migrations_ui.live.timeline import timeline_svg
from migrations_ui.models import ACTIVE_STATES, FINAL_STATES, Batch, JobEvent, JobState, MigrationJob
from migrations_ui.planning.planner import LeftVm, LinkCap, Plan, PlannedMove
from utilities.texts import Msg, localized


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
    caps = tuple(
        LinkCap(c["host"], c["host"].split(".")[0], c["limit"], c["cap"], c["nic_gbps"])
        for c in data.get("link_caps", [])
    )
    return Plan(data.get("host"), moves, left, data.get("makespan_s", 0.0), data.get("lower_bound_s", 0.0), {}, caps)


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


def _jobs(batch: Batch) -> list[MigrationJob]:
    """The jobs for the VM rows (not batch.jobs: its manager would set .batch on every one)."""
    fields = ("state", "percent", "error_message", "vm_name", "kind", "batch", "vm__guid", "destination__name")
    jobs = MigrationJob.objects.filter(batch_id=batch.pk).select_related("vm", "destination")
    return list(jobs.only(*fields).order_by("pk"))


def _outcome(move: dict, job: MigrationJob | None, note: str = "") -> Outcome:
    # Where the job went (a cluster's drain chooses it itself), else where the plan sends it.
    return Outcome(
        move["vm"],
        job.destination.name if job is not None else move.get("destination_name") or move["destination"],
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
    if (drain := batch.plan.get("drain")) is not None:
        return _drain_outcomes(batch, drain, by_vm)
    rows = []
    for m in batch.plan.get("moves", []):
        job = by_vm.get(m.get("vm_id"))
        rows.append(_outcome(m, job, "" if job else refused.get(m.get("vm_id"), Msg("No job."))))
    left = zip(batch.plan.get("left", []), _left_reasons(batch.plan), strict=True)
    return rows + [Outcome(v["vm"], "", "", None, None, None, reason) for v, reason in left]


def _drain_outcomes(batch: Batch, drain: dict, by_vm: dict[str, MigrationJob]) -> list[Outcome]:
    """A drain's rows: every role of the node, with the move the cluster made (its job), the reason
    it did not move once the drain ended, or that the cluster has not moved it yet."""
    planned = {m.get("vm_id"): m for m in batch.plan.get("moves", [])}
    # The console's own reason in the reader's language; a host's error text as the host wrote it.
    stuck = {s["vm_id"]: Msg(NOT_MOVED) if s["reason"] == NOT_MOVED else s["reason"] for s in drain.get("stuck", [])}
    waiting = Msg("The cluster has not moved it yet.")
    rows = []
    for vm_id, name in drain.get("roles", {}).items():
        move = planned.get(vm_id) or {
            "vm": name,
            "destination": "",
            "transfer_type": "",
            "start_s": None,
            "end_s": None,
        }
        job = by_vm.get(vm_id)
        rows.append(_outcome(move, job, "" if job else stuck.get(vm_id, waiting)))
    return rows


def progress_context(batch: Batch, batch_runs: list[Run]) -> dict:
    """The progress section: the batch's summary, its counts labelled in the page's language."""
    summary = batch_summary(batch, batch_runs)
    counts = [(JobState(state).label, n) for state, n in summary["counts"].items()]
    context = {**summary, "batch": batch, "counts": counts, "drain": batch.plan.get("drain")}
    if batch.deadline is not None:  # its window's deadline: say how many moves it stopped
        context["not_started"] = batch.jobs.filter(error_code="deadline").count()
    # The pre-maintenance report's choices beyond the moves: VMs shut down where they stay (a worker
    # does it after the start: each outcome as it comes), VMs left running there.
    names = {v.get("vm_id"): v["vm"] for v in batch.plan.get("left", [])}
    done = batch.plan.get("shut_down_done", {})
    context["shut_down"] = [(names.get(i, i), done.get(i)) for i in batch.plan.get("shut_down", [])]
    context["left_running"] = ", ".join(batch.plan.get("left_running", []))
    return context


def timelines_context(batch: Batch, batch_runs: list[Run], *, plan_too: bool = True) -> dict:
    """The plan's timeline (it never changes) and the plan with the actual run drawn in."""
    plan = plan_of(batch.plan)
    actual, _ = actual_times(batch_runs)
    k = fabric_seconds_per_second()  # drawn in wall-clock seconds, as the job pages read
    # timeline_svg escapes every name it draws: its output is the only markup marked safe here.
    plan_title = localized(Msg("Plan: %(name)s", name=batch.title))
    plan_svg = timeline_svg(plan, title=plan_title, per_second=k) if plan.moves and plan_too else ""
    actual_svg = (
        timeline_svg(
            plan, actual=actual, title=localized(Msg("Plan and run: %(name)s", name=batch.title)), per_second=k
        )
        if actual
        else ""
    )
    context = {"plan_svg": mark_safe(plan_svg), "actual_svg": mark_safe(actual_svg)}  # noqa: S308
    return {**context, "link_caps": plan.link_caps} if plan_too else context


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
    batch_runs = runs(batch)
    return {
        "outcomes": outcomes(batch, _jobs(batch)),
        **progress_context(batch, batch_runs),
        **timelines_context(batch, batch_runs),
    }


def render_batch_state(batch: Batch, *, timelines: bool = True) -> str:
    """The progress section and, with timelines, the actual run's timeline (it changes when a move
    starts or ends), as out-of-band swaps."""
    batch_runs = runs(batch)
    html = render_to_string("partials/batch_progress.html", {**progress_context(batch, batch_runs), "oob": True})
    if timelines:
        context = {**timelines_context(batch, batch_runs, plan_too=False), "oob": True}
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
    if batch.plan.get("drain") is not None:
        # A drain's jobs appear as the cluster moves each role: a new job has no row on the page yet,
        # so the rows go as a whole (a node's roles: a short table).
        rows = render_to_string("partials/batch_rows.html", {"outcomes": outcomes(batch, _jobs(batch)), "oob": True})
        return render_batch_state(batch, timelines=timelines), rows
    guid = str(job.vm.guid)
    move = next((m for m in batch.plan.get("moves", []) if m.get("vm_id") == guid), None)
    if move is None:  # not in the stored plan (an older batch): the job has the facts
        move = {"vm": job.vm_name, "destination": job.destination.name, "transfer_type": job.kind}
        move |= {"start_s": None, "end_s": None}
    row = render_to_string("partials/batch_row.html", {"o": _outcome(move, job), "oob": True})
    return render_batch_state(batch, timelines=timelines), row
