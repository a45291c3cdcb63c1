"""Live job progress: the fragments the Jobs pages and the batch page show, rendered from the
database in the web processes.

Browsers receive rendered HTML carrying hx-swap-oob; htmx's websocket extension swaps it in. The
pages, the consumers' replay on connect and the consumers' live updates all use the renderers below,
so a page just loaded, a page that reconnected and a page kept open show the same thing. Workers
only send a message naming what changed (migrations_ui.jobs.emit); they never import this module.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import urlencode
from django.utils.translation import gettext

from migrations_ui.jobs.runner import STALE_AFTER, STEPS, steps_for
from migrations_ui.jobs.scheduler import LINK, host_limits, queue_decision, queue_order, slots_in_use
from migrations_ui.live.chart_data import PRECOPY_KINDS, job_chart
from migrations_ui.models import FINAL_STATES, SLOT_STATES, JobEvent, JobState, MigrationJob

log = logging.getLogger(__name__)

# After a job changes state, the Jobs page's sections are sent whole for this long, not just its row:
# announcements are coalesced, so the state event need not be the newest one when an update is made.
SECTIONS_AFTER_CHANGE = timedelta(seconds=5)
FINISHED_PER_PAGE = 25
FINISHED_STATES = [(s.value, s.label) for s in JobState if s in FINAL_STATES]


# --- the Jobs page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """One slot a queued job waits for, as the Jobs page words it."""

    kind: str  # "live" | "storage" | "link" (its batch's link cap)
    host: str
    used: int
    limit: int


def _jobs():
    return MigrationJob.objects.select_related("source", "destination", "requested_by")


def running_jobs() -> list[MigrationJob]:
    # Admitted, cancelling and unknown jobs hold their slots too, so they belong with the running ones.
    return list(_jobs().filter(state__in=SLOT_STATES).order_by("started_at", "created_at", "pk"))


# The Jobs page lists the head of the queue: every job's update re-renders the section for every
# open page, and a 500-job queue made each render cost ~350 ms of CPU (bench/RESULTS.md).
QUEUE_SHOWN = 100


def queued_jobs(limit: int | None = None) -> list[MigrationJob]:
    """The first `limit` queued jobs in queue order, each with .position, .waits (the slots it waits
    for), .paused_on (the hosts whose paused queue it waits for) and .held_until (when its batch's
    plan lets it start, if later than now)."""
    jobs = list(queue_order().select_related("source", "destination", "requested_by")[: limit or QUEUE_SHOWN])
    if not jobs:
        return []
    decision = queue_decision()
    names = {h.pk: h.name for job in jobs for h in (job.source, job.destination)}
    in_use = slots_in_use(decision.caps)
    limits = {**host_limits(names), **decision.caps}
    for job in jobs:
        job.position = decision.position.get(job.pk)
        job.paused_on = decision.paused.get(job.pk, ())
        job.held_until = decision.held.get(job.pk)
        job.waits = [_wait(slot, names, in_use, limits) for slot in decision.waiting_for.get(job.pk, ())]
    return jobs


def queued_context() -> dict:
    shown = queued_jobs()
    total = len(shown) if len(shown) < QUEUE_SHOWN else queue_order().count()
    return {"queued": shown, "queued_total": total, "queued_more": total - len(shown)}


def _wait(slot: tuple, names: dict, in_use, limits) -> Wait:
    host, kind = slot
    kind = "link" if kind.startswith(LINK) else kind  # its batch's link cap on the host
    return Wait(kind, names.get(host, f"host {host}"), in_use[slot], limits.get(slot, 0))


def finished_filters(params) -> dict:
    """The Finished section's filters from a query string; anything unknown is ignored, a date
    that is none is dropped (the page says so: filter_problems)."""
    state = params.get("state", "")
    page = params.get("page", "1")
    return {
        "state": state if state in dict(FINISHED_STATES) else "",
        "vm": params.get("vm", "").strip()[:255],
        "host": params.get("host", "").strip()[:255],
        "user": params.get("user", "").strip()[:150],
        "since": _day(params.get("since", "")),
        "until": _day(params.get("until", "")),
        "page": int(page) if page.isdigit() and int(page) > 0 else 1,
    }


def _day(raw: str) -> str:
    """A YYYY-MM-DD date as given, or "" when it is none."""
    raw = raw.strip()[:10]
    try:
        return raw if raw and parse_date(raw) else ""
    except ValueError:  # well-formed but impossible: 2026-02-30
        return ""


def filter_problems(params, filters: dict) -> list[str]:
    """What the Finished filters ignored, to say so above the table."""
    return [
        gettext("Ignored %(name)s=%(value)s: give a date as 2026-11-25.") % {"name": name, "value": repr(params[name])}
        for name in ("since", "until")
        if params.get(name, "").strip() and not filters[name]
    ]


def filter_query(filters: dict, **override) -> str:
    """The filters as a query string (without the defaults), for links and the websocket URL."""
    values = {**filters, **override}
    return urlencode({k: v for k, v in values.items() if v and not (k == "page" and v == 1)})


def finished_page(filters: dict) -> Page:
    jobs = _jobs().filter(state__in=FINAL_STATES).order_by("-finished_at", "-pk")
    if filters["state"]:
        jobs = jobs.filter(state=filters["state"])
    if filters["vm"]:
        jobs = jobs.filter(vm_name__icontains=filters["vm"])
    if filters["host"]:
        name = filters["host"]
        jobs = jobs.filter(
            Q(source__name__icontains=name)
            | Q(source__fqdn__icontains=name)
            | Q(destination__name__icontains=name)
            | Q(destination__fqdn__icontains=name)
        )
    if filters["user"]:
        jobs = jobs.filter(requested_by__username__iexact=filters["user"])
    if filters["since"]:
        jobs = jobs.filter(finished_at__date__gte=filters["since"])
    if filters["until"]:
        jobs = jobs.filter(finished_at__date__lte=filters["until"])
    return Paginator(jobs, FINISHED_PER_PAGE).get_page(filters["page"])


def board_context(filters: dict) -> dict:
    return {
        "running": running_jobs(),
        **queued_context(),
        "finished": finished_page(filters),
        "filters": filters,
        "filter_query": filter_query(filters),
        "finished_states": FINISHED_STATES,
    }


def render_sections(filters: dict | None = None) -> str:
    """Running and Queued, and Finished when filters are given, as out-of-band swaps."""
    html = render_to_string("partials/job_running.html", {"running": running_jobs(), "oob": True})
    html += render_to_string("partials/job_queued.html", {**queued_context(), "oob": True})
    if filters is not None:
        html += render_finished(filters)
    return html


def render_finished(filters: dict) -> str:
    context = {"finished": finished_page(filters), "filters": filters, "oob": True}
    return render_to_string("partials/job_finished.html", context)


# --- one job ----------------------------------------------------------------------------------------


def job_for_page(job_id: int) -> MigrationJob:
    return MigrationJob.objects.select_related("source__cluster", "destination__cluster", "vm", "requested_by").get(
        pk=job_id
    )


def step_rows(job: MigrationJob) -> list[dict]:
    """The job's steps as VMM lists them, each done, current, failed, cancelled or pending."""
    names = steps_for(job)
    reached = job.step
    if not reached and job.state != JobState.SUCCEEDED:
        # A cancelled job has its step cleared: the last step it started is in its event log.
        started = job.events.filter(kind="step", data__has_key="label").order_by("-sequence").first()
        reached = started.data.get("step", "") if started else ""
    at = names.index(reached) if reached in names else -1
    ending = {JobState.FAILED: "failed", JobState.CANCELLED: "cancelled", JobState.UNKNOWN: "unknown"}.get(
        job.state, "current"
    )
    rows = []
    for i, name in enumerate(names):
        if job.state == JobState.SUCCEEDED or i < at:
            status = "done"
        elif i == at:
            status = ending
        else:
            status = "pending" if job.is_active else "not run"
        rows.append({"name": name, "label": STEPS[name], "status": status})
    return rows


@dataclass(frozen=True)
class FileCopy:
    """A storage move as its page shows it. Move-VMStorage and its Msvm_MigrationJob report only a
    percent (no bytes, no rate, no disk done: hyperv.md sections 5, 6), so the bytes are the host's
    percent of the files' size in the inventory, and the rate those bytes over the copy's wall time."""

    total: int  # bytes of the disks being moved
    copied: int
    rate_mbps: float | None  # average since Move-VMStorage was sent; None before
    disks: int
    disks_done: int | None  # None while the copy runs: the host moves them all at its end


def file_copy(job: MigrationJob) -> FileCopy | None:
    """The copy's figures for a storage move; None for any other kind."""
    if job.kind != "storage":
        return None
    disks = list(job.vm.disks.all()) if job.vm_id else []
    if job.vhds and not job.storage_path:
        chosen = {src.lower() for src, _ in job.vhds}
        disks = [d for d in disks if d.path.lower() in chosen]
    total = sum(d.size_bytes for d in disks)
    percent = 100 if job.state == JobState.SUCCEEDED else job.percent
    copied = total * percent // 100
    rate = None
    if job.move_requested_at is not None:
        end = job.slots_released_at or job.finished_at or timezone.now()
        seconds = (end - job.move_requested_at).total_seconds()
        rate = copied / seconds / 1_000_000 if seconds > 0 else None
    done = None if job.is_active else (len(disks) if job.state == JobState.SUCCEEDED else 0)
    return FileCopy(total, copied, rate, len(disks), done)


def unknown_facts(job: MigrationJob) -> dict | None:
    """For a job in state unknown: the host that stopped answering, why, since when, and when the
    hosts were last asked (heartbeat_at, while unknown); None for any other state."""
    if job.state != JobState.UNKNOWN:
        return None
    became = job.events.filter(kind="state", data__state=JobState.UNKNOWN).order_by("-sequence").first()
    data = became.data if became else {}
    return {
        "host": data.get("host") or job.source.fqdn,
        "reason": data.get("reason", ""),
        "step": data.get("step", ""),
        "since": became.time if became else None,
        "asked_at": job.heartbeat_at,
        "every_s": int(STALE_AFTER.total_seconds()),
    }


def detail_context(job: MigrationJob) -> dict:
    return {
        "job": job,
        "steps": step_rows(job),
        "events": log_rows(list(job.events.all())),
        "chart": job_chart(job),
        "unknown": unknown_facts(job),
        "copy": file_copy(job),
    }


def render_job_state(job: MigrationJob) -> str:
    """The detail page's status block (state, bar, bytes, rates, pass, blackout, error, cancel or
    an unknown job's decision) and step list, as out-of-band swaps."""
    context = {"job": job, "steps": step_rows(job), "oob": True, "unknown": unknown_facts(job), "copy": file_copy(job)}
    html = render_to_string("partials/job_status.html", context) + render_to_string("partials/job_steps.html", context)
    if not job.is_active:
        # What a Cancel click answered ("Cancelling job 2 ...") is over once the job has ended: the
        # status block says how it ended.
        html += render_to_string("partials/job_notice_cleared.html")
    return html


# The chart re-reads all of a job's samples: with a progress sample it is sent at most this often,
# and less often as a long move gathers samples (an hour's move: every 30 s); with any other event
# (a state, a step), and on every replay, always.
CHART_EVERY_S = 3.0
CHART_EVERY_SHARE = 1 / 120  # of the time the job has run
_chart_sent: dict[int, float] = {}  # job id -> when this process last sent its chart (monotonic)


def render_job_chart(job: MigrationJob, rows: list | None = None) -> str:
    """The convergence chart as an out-of-band swap ("" for a move without a pre-copy)."""
    return render_to_string("partials/job_chart.html", {"chart": job_chart(job, rows), "oob": True})


def chart_every_s(job: MigrationJob) -> float:
    ran = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    return max(CHART_EVERY_S, ran * CHART_EVERY_SHARE)


def _chart_due(job: MigrationJob, newest: JobEvent | None) -> bool:
    if job.kind not in PRECOPY_KINDS:
        return False
    now, last = time.monotonic(), _chart_sent.get(job.pk)
    if newest is not None and newest.kind == "progress" and last is not None and now - last < chart_every_s(job):
        return False
    if job.state in FINAL_STATES:
        _chart_sent.pop(job.pk, None)
    else:
        if len(_chart_sent) > 1000:  # jobs whose end this process did not see
            _chart_sent.clear()
        _chart_sent[job.pk] = now
    return True


def _progress_group(event: JobEvent) -> tuple:
    """What a progress sample belongs to in the log: its pass, or (a host that reports a percent
    only) its quarter of the move."""
    data = event.data or {}
    if data.get("pass_number"):
        return ("pass", data["pass_number"])
    return ("percent", int(data.get("percent", 0)) // 25)


def log_rows(events: list[JobEvent], before: JobEvent | None = None) -> list[JobEvent]:
    """The event log's rows: every event, but of the progress samples (one a second: the chart and
    the pass table have them all) only the first of each pass. `before`: the newest progress
    sample already shown, when these rows are appended to a log."""
    rows, shown = [], _progress_group(before) if before is not None else None
    for event in events:
        if event.kind == "progress":
            group = _progress_group(event)
            if group == shown:
                continue
            shown = group
        rows.append(event)
    return rows


def render_new_events(events: list[JobEvent]) -> str:
    """Rows appended to the event log (htmx inserts the wrapper's children, not the wrapper)."""
    if events:
        earlier = JobEvent.objects.filter(job_id=events[0].job_id, sequence__lt=events[0].sequence, kind="progress")
        events = log_rows(events, earlier.order_by("-sequence").first())
    if not events:
        return ""
    return render_to_string("partials/job_events.html", {"events": events, "append": True})


def render_events_after(job_id: int, after: int, upto: int | None = None) -> str:
    events = JobEvent.objects.filter(job_id=job_id, sequence__gt=after)
    if upto is not None:
        events = events.filter(sequence__lte=upto)
    return render_new_events(list(events.order_by("sequence")))


def render_job_replay(job_id: int) -> tuple[str, str, int]:
    """Everything the detail page shows that changes, from the database: the status and steps, the
    whole event log, and the newest event's sequence. Send the log in a websocket message of its
    own: a <tbody> after other elements is dropped by the HTML parser htmx uses."""
    job = job_for_page(job_id)
    events = list(job.events.order_by("sequence"))
    log_html = render_to_string("partials/job_events.html", {"events": log_rows(events), "oob": True})
    return render_job_state(job) + render_job_chart(job), log_html, events[-1].sequence if events else 0


# --- a job's update, as each page shows it -----------------------------------------------------------
# A worker's message names the job and its newest event (migrations_ui.jobs.emit); the consumers call
# these once per message, page part and language in their process. The rate limits (chart, batch
# timeline) are decided once per message, before any language is rendered, so that every language
# gets the same parts.


def _job_and_event(job_id: int, sequence: int) -> tuple[MigrationJob, JobEvent | None]:
    job = job_for_page(job_id)
    return job, job.events.filter(sequence=sequence).first()


def render_board_update(job_id: int, sequence: int) -> tuple[str, bool]:
    """The Jobs page's share of a job's update, and whether the job has just finished (the consumer
    then sends its client's Finished section too)."""
    job, event = _job_and_event(job_id, sequence)
    if _only_progress_since_a_while(job, event):
        # A progress sample changes only this job's row; anything else can move jobs between
        # sections and shift queue positions, so the Running and Queued sections go whole.
        board = render_to_string("partials/job_running_row.html", {"job": job, "oob": True, "sequence": sequence})
    else:
        board = render_sections()
    finished = job.state in FINAL_STATES and event is not None and event.kind != "progress"
    return board, finished


def job_chart_due(job_id: int, sequence: int) -> bool:
    """Whether this update of the job's page carries the chart (at most every few seconds)."""
    job, event = _job_and_event(job_id, sequence)
    return _chart_due(job, event)


def render_job_update(job_id: int, sequence: int, chart: bool) -> tuple[str, str]:
    """The job page's share of an update: its status, steps and (when due) chart, and the event."""
    job, event = _job_and_event(job_id, sequence)
    html = render_job_state(job) + (render_job_chart(job) if chart else "")
    return html, render_new_events([event] if event else [])


def batch_timelines_due(job_id: int, sequence: int) -> bool:
    """Whether this update of the batch page carries the actual run's timeline."""
    from migrations_ui.live.batch_page import actual_due  # batch_page imports the planner: only when needed

    job, event = _job_and_event(job_id, sequence)
    return actual_due(job, event)


def render_batch_update(job_id: int, timelines: bool) -> tuple[str, str]:
    """The batch page's share of a job's update: the batch's progress, the job's row and, when due,
    the actual run's timeline."""
    from migrations_ui.live.batch_page import render_batch_job

    return render_batch_job(job_for_page(job_id), timelines=timelines)


def render_batch_change(batch_id: int) -> tuple[str, str]:
    """The batch page after the batch itself changed (its host's maintenance ended, a cluster's drain
    moved on or showed a new move): its state sections and its rows (a <tbody>: a message of its own)."""
    from migrations_ui.live.batch_page import render_batch_replay

    state, rows, _ = render_batch_replay(batch_id)
    return state, rows


def _only_progress_since_a_while(job: MigrationJob, newest: JobEvent | None) -> bool:
    if newest is None or newest.kind != "progress" or job.state not in SLOT_STATES:
        return False
    other = job.events.exclude(kind="progress").order_by("-sequence").values_list("time", flat=True).first()
    return other is None or newest.time - other >= SECTIONS_AFTER_CHANGE
