"""Live job progress: the fragments the Jobs pages show, rendered from the database, and the one
emitter that sends them over Channels once a change has committed.

Browsers receive rendered HTML carrying hx-swap-oob; htmx's websocket extension swaps it in. The
pages, the consumers' replay on connect and the emitter all use the renderers below, so a page
just loaded, a page that reconnected and a page kept open show the same thing. Every channel layer
delivers at most once: a lost message only delays a page until the next update or reconnect.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.paginator import Page, Paginator
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.http import urlencode

from migrations_ui.chart_data import PRECOPY_KINDS, job_chart, progress_rows
from migrations_ui.models import FINAL_STATES, SLOT_STATES, JobEvent, JobState, MigrationJob
from migrations_ui.runner import STALE_AFTER, STEPS, steps_for
from migrations_ui.scheduler import host_limits, queue_decision, queue_order, slots_in_use

log = logging.getLogger(__name__)

JOBS_GROUP = "jobs"
# After a job changes state, the Jobs page's sections are sent whole for this long, not just its row:
# announcements are coalesced, so the state event need not be the newest one when an update is made.
SECTIONS_AFTER_CHANGE = timedelta(seconds=5)
FINISHED_PER_PAGE = 25
FINISHED_STATES = [(s.value, s.label) for s in JobState if s in FINAL_STATES]


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def batch_group(batch_id: int) -> str:
    return f"batch-{batch_id}"


# --- the Jobs page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """One slot a queued job waits for, as the Jobs page words it."""

    kind: str  # "live" | "storage"
    host: str
    used: int
    limit: int


def _jobs():
    return MigrationJob.objects.select_related("source", "destination")


def running_jobs() -> list[MigrationJob]:
    # Admitted, cancelling and unknown jobs hold their slots too, so they belong with the running ones.
    return list(_jobs().filter(state__in=SLOT_STATES).order_by("started_at", "created_at", "pk"))


# The Jobs page lists the head of the queue: every job's update re-renders the section for every
# open page, and a 500-job queue made each render cost ~350 ms of CPU (bench/RESULTS.md).
QUEUE_SHOWN = 100


def queued_jobs(limit: int | None = None) -> list[MigrationJob]:
    """The first `limit` queued jobs in queue order, each with .position, .waits (the slots it waits
    for) and .paused_on (the hosts whose paused queue it waits for)."""
    jobs = list(queue_order().select_related("source", "destination")[: limit or QUEUE_SHOWN])
    if not jobs:
        return []
    decision = queue_decision()
    names = {h.pk: h.name for job in jobs for h in (job.source, job.destination)}
    in_use = slots_in_use()
    limits = host_limits(names)
    for job in jobs:
        job.position = decision.position.get(job.pk)
        job.paused_on = decision.paused.get(job.pk, ())
        job.waits = [_wait(slot, names, in_use, limits) for slot in decision.waiting_for.get(job.pk, ())]
    return jobs


def queued_context() -> dict:
    shown = queued_jobs()
    total = len(shown) if len(shown) < QUEUE_SHOWN else queue_order().count()
    return {"queued": shown, "queued_total": total, "queued_more": total - len(shown)}


def _wait(slot: tuple, names: dict, in_use, limits) -> Wait:
    host, kind = slot
    return Wait(kind, names.get(host, f"host {host}"), in_use[slot], limits.get(slot, 0))


def finished_filters(params) -> dict:
    """The Finished section's filters from a query string; anything unknown is ignored."""
    state = params.get("state", "")
    page = params.get("page", "1")
    return {
        "state": state if state in dict(FINISHED_STATES) else "",
        "vm": params.get("vm", "").strip()[:255],
        "page": int(page) if page.isdigit() and int(page) > 0 else 1,
    }


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
        "events": list(job.events.all()),
        "chart": job_chart(job),
        "unknown": unknown_facts(job),
    }


def render_job_state(job: MigrationJob) -> str:
    """The detail page's status block (state, bar, bytes, rates, pass, blackout, error, cancel or
    an unknown job's decision) and step list, as out-of-band swaps."""
    context = {"job": job, "steps": step_rows(job), "oob": True, "unknown": unknown_facts(job)}
    return render_to_string("partials/job_status.html", context) + render_to_string("partials/job_steps.html", context)


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
        if len(_chart_sent) > 1000:  # jobs whose end another process announced
            _chart_sent.clear()
        _chart_sent[job.pk] = now
    return True


def render_new_events(events: list[JobEvent]) -> str:
    """Rows appended to the event log (htmx inserts the wrapper's children, not the wrapper)."""
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
    log_html = render_to_string("partials/job_events.html", {"events": events, "oob": True})
    return render_job_state(job) + render_job_chart(job), log_html, events[-1].sequence if events else 0


# --- the emitter -------------------------------------------------------------------------------------


def send_job_update(job_id: int) -> None:
    """Tell every open Jobs page, this job's pages and its batch's pages what changed; call it
    after commit only.

    Renders from the database (so it sends what is committed, whatever order announcements come
    in) and group_sends to `jobs`, `job-<id>` and, for a job of a batch, `batch-<id>`. It never
    raises: the database is the truth, a lost message is caught up by the next one or by the
    consumer's replay on reconnect.
    """
    try:
        messages = _messages(job_id)
    except MigrationJob.DoesNotExist:
        return
    except Exception:
        log.exception("job %s: could not render its update for the browsers", job_id)
        return
    _send(f"job {job_id}", messages)


def send_batch_update(batch_id: int) -> None:
    """Tell the batch's pages that the batch changed without a job changing (its host's maintenance
    ended); after commit only. Never raises, as send_job_update."""
    from migrations_ui.batches import batch_for_page, render_batch_state

    try:
        batch = batch_for_page(batch_id)
        messages = in_every_language(
            lambda: [
                (
                    batch_group(batch_id),
                    {"type": "batch.update", "html": render_batch_state(batch, timelines=False), "row_html": ""},
                )
            ]
        )
    except Exception:
        log.exception("batch %s: could not render its update for the browsers", batch_id)
        return
    _send(f"batch {batch_id}", messages)


# The fields of a message that hold rendered HTML. They are rendered in the default language and,
# under "languages", in each other one; a consumer sends its client the copy in the client's
# language (consumers.in_language).
HTML_FIELDS = ("html", "event_html", "row_html")


def in_every_language(build) -> list[tuple[str, dict]]:
    """The messages build() renders in the default language, each with its other languages' HTML."""
    with translation.override(settings.LANGUAGE_CODE):
        merged = build()
    for code, _name in settings.LANGUAGES:
        if code == settings.LANGUAGE_CODE:
            continue
        with translation.override(code):
            # A part that failed in one language (a batch's) leaves the default language's copy.
            by_group = dict(build())
        for group, into in merged:
            other = by_group.get(group, {})
            copies = {f: other[f] for f in HTML_FIELDS if f in other and f in into}
            if copies:
                into.setdefault("languages", {})[code] = copies
    return merged


def _send(what: str, messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # A CLI that queued a job may be exiting while its announcement is pending: sending needs a new
    # thread, which may not start then. The next update, or the pages' replay, shows the change.
    if _exiting():
        log.info("%s: process exiting, update not sent", what)
        return
    try:
        # One async_to_sync call for all groups: one event loop hop per update, not one per group.
        async_to_sync(_group_send)(layer, messages)
    except Exception:
        if _exiting():  # began exiting since the check above
            log.info("%s: process exiting, update not sent", what)
        else:
            log.exception("%s: could not send its update to the channel layer", what)


def _exiting() -> bool:
    # threading sets _SHUTTING_DOWN before it runs the thread pools' exit hooks (after which they
    # refuse work); a stopped main thread covers the later stage and versions without the flag.
    return getattr(threading, "_SHUTTING_DOWN", False) or not threading.main_thread().is_alive()


async def _group_send(layer, messages: list[tuple[str, dict]]) -> None:
    for group, message in messages:
        try:
            await layer.group_send(group, message)
        except Exception:
            log.exception("could not send to group %s", group)


def _messages(job_id: int) -> list[tuple[str, dict]]:
    job = job_for_page(job_id)
    event = job.events.order_by("-sequence").first()
    sequence = event.sequence if event else 0
    # Decided once, rendered in every language: the chart's rate limit must not drop a language's copy.
    progress_only = _only_progress_since_a_while(job, event)
    chart_due = _chart_due(job, event)
    chart_rows = progress_rows(job) if chart_due else None  # read once for every language
    actual_due = bool(job.batch_id) and _batch_actual_due(job, event)

    def build() -> list[tuple[str, dict]]:
        if progress_only:
            # A progress sample changes only this job's row; anything else can move jobs between
            # sections and shift queue positions, so the Running and Queued sections go whole.
            context = {"job": job, "oob": True, "sequence": sequence}
            board = render_to_string("partials/job_running_row.html", context)
        else:
            board = render_sections()
        jobs_message = {
            "type": "jobs.update",
            "id": uuid.uuid4().hex,  # lets each web process render a client's Finished section once per update
            "job_id": job_id,
            "sequence": sequence,
            "html": board,
            "finished": job.state in FINAL_STATES and event is not None and event.kind != "progress",
        }
        job_message = {
            "type": "job.update",
            "job_id": job_id,
            "sequence": sequence,
            "html": render_job_state(job) + (render_job_chart(job, chart_rows) if chart_due else ""),
            "event_html": render_new_events([event] if event else []),
        }
        messages = [(JOBS_GROUP, jobs_message), (job_group(job_id), job_message)]
        if job.batch_id:
            messages += _batch_message(job, sequence, actual_due)
        return messages

    return in_every_language(build)


def _batch_actual_due(job: MigrationJob, event: JobEvent | None) -> bool:
    from migrations_ui.batches import actual_due  # batches imports the planner: only when needed

    try:
        return actual_due(job, event)
    except Exception:
        log.exception("job %s: could not tell whether its batch's timeline is due", job.pk)
        return False


def _batch_message(job: MigrationJob, sequence: int, actual_due: bool) -> list[tuple[str, dict]]:
    """The batch page's share of a job's update: the batch's progress, the job's row and, when due,
    the actual run's timeline. A failure here must not cost the Jobs pages their update."""
    from migrations_ui.batches import render_batch_job

    try:
        html, row = render_batch_job(job, timelines=actual_due)
    except Exception:
        log.exception("job %s: could not render its batch's update", job.pk)
        return []
    message = {"type": "batch.update", "job_id": job.pk, "sequence": sequence, "html": html, "row_html": row}
    return [(batch_group(job.batch_id), message)]


def _only_progress_since_a_while(job: MigrationJob, newest: JobEvent | None) -> bool:
    if newest is None or newest.kind != "progress" or job.state not in SLOT_STATES:
        return False
    other = job.events.exclude(kind="progress").order_by("-sequence").values_list("time", flat=True).first()
    return other is None or newest.time - other >= SECTIONS_AFTER_CHANGE
