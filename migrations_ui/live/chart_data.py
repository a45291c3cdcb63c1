"""The charts' data from the database: a job's progress samples, a host's slot history.

Samples are the job's "progress" events (runner._sample writes at most one a second), so nothing
new is stored for the charts; a host's slot history comes from its jobs' admission events and
finish times. The pure parts are convergence.py, slot_history.py and charts.py.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta

from django.db.models import Min, Q
from django.db.models.functions import Coalesce
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from fabric.models import Host
from migrations_ui.live import charts
from migrations_ui.live.convergence import Sample, judge
from migrations_ui.live.slot_history import Held, steps
from migrations_ui.models import JobEvent, JobState, MigrationJob, TransferType
from migrations_ui.slots import LIVE, STORAGE, slots_needed

# Kinds with a pre-copy of memory: the others copy files, or save the memory in one go (quick).
PRECOPY_KINDS = (TransferType.LIVE, TransferType.LIVE_VSM)
SLOT_WINDOW = timedelta(hours=1)


def job_samples(job: MigrationJob) -> list[Sample]:
    return _samples(progress_rows(job))


def progress_rows(job: MigrationJob) -> list[tuple[datetime, dict]]:
    """The job's progress events as (time, data), oldest first."""
    rows = JobEvent.objects.filter(job=job, kind="progress").order_by("sequence").values_list("time", "data")
    return [(time, data or {}) for time, data in rows]


def _samples(rows: list[tuple[datetime, dict]]) -> list[Sample]:
    t0 = rows[0][0] if rows else None
    return [_sample((time - t0).total_seconds(), data) for time, data in rows]


def _sample(t: float, d: dict) -> Sample:
    # The memory rate is what competes with the dirty rate (compression makes the wire rate smaller);
    # a host that does not report it leaves the wire rate as the best there is.
    rate = d.get("memory_rate_mbps")
    memory = d.get("memory_remaining_bytes")
    return Sample(
        t=t,
        pass_number=int(d.get("pass_number") or 0),
        transfer_mbps=float(rate if rate is not None else d.get("transfer_rate_mbps") or 0.0),
        dirty_mbps=float(d.get("dirty_rate_mbps") or 0.0),
        memory_left=None if memory is None else int(memory),
    )


OUTCOMES = {
    JobState.SUCCEEDED: charts.SUCCEEDED,
    JobState.FAILED: charts.STOPPED,
    JobState.CANCELLED: charts.STOPPED,
}


def job_chart(job: MigrationJob, rows: list[tuple[datetime, dict]] | None = None) -> dict | None:
    """What the job page's chart partial shows; None for a move without a pre-copy.
    rows: the job's progress_rows when already read (the emitter renders once per language)."""
    if job.kind not in PRECOPY_KINDS:
        return None
    rows = progress_rows(job) if rows is None else rows
    samples = _samples(rows)
    verdict = judge(samples)
    outcome = OUTCOMES.get(job.state, charts.RUNNING)
    marks = policy_marks(job, rows[0][0]) if rows else []
    return {
        "verdict": verdict,
        "badge": charts.job_badge(verdict, outcome),
        "summary": charts.job_summary(verdict, outcome),
        "svg": charts.job_chart_svg(samples, verdict, marks=marks),
        "policy": [text for _, text in marks],
        "passes": pass_rows(verdict),
        # Rates on the wire, not of memory: with compression the transfer line then reads low.
        "wire_rate": any(s.pass_number >= 1 for s in samples) and not any("memory_rate_mbps" in d for _, d in rows),
    }


def policy_marks(job: MigrationJob, t0: datetime) -> list[tuple[float, str]]:
    """(seconds after the first sample, words) of each moment the move timeout policy cancelled the
    move (the runner's "policy" events: workers record, this process renders)."""
    rows = JobEvent.objects.filter(job=job, kind="policy", data__action="cancel").values_list("time", "data")
    return [((time - t0).total_seconds(), policy_text(data or {})) for time, data in rows]


def policy_text(d: dict) -> str:
    """The policy's reason in the reader's language, with its figures."""
    figures = {
        "stalled": number_format(d.get("stalled_s", 0), decimal_pos=0),
        "elapsed": number_format(d.get("elapsed_s", 0), decimal_pos=0),
        "limit": number_format(d.get("limit_s", 0), decimal_pos=0),
        "pass": d.get("pass_number", 0),
        "dirty": number_format(d.get("dirty_rate_mbps", 0), decimal_pos=0),
        "rate": number_format(d.get("transfer_rate_mbps", 0), decimal_pos=0),
        "left": filesizeformat(d.get("bytes_remaining", 0)),
    }
    if d.get("rule") == "stall":
        text = _(
            "Move timeout: no progress for %(stalled)s s (limit %(limit)s s) in pass %(pass)s; dirty rate "
            "%(dirty)s MB/s, transfer rate %(rate)s MB/s; %(left)s left. The console cancelled the move."
        )
    else:
        text = _(
            "Move timeout: the move ran %(elapsed)s s, over its limit of %(limit)s s, in pass %(pass)s; dirty rate "
            "%(dirty)s MB/s, transfer rate %(rate)s MB/s; %(left)s left. The console cancelled the move."
        )
    return text % figures


def pass_rows(verdict) -> list[dict]:
    """One row per pass up to the newest: a pass shorter than the one-second sampling has no sample,
    yet it happened (the host's later pass numbers say so), so it gets a row without figures."""
    sampled = {p.number: p for p in verdict.passes}
    rows = []
    for number in range(1, verdict.pass_count + 1):
        p = sampled.get(number)
        if p is None:
            rows.append({"number": number, "sampled": False})
        else:
            rows.append({**asdict(p), "near": p.near, "share": charts.percent(p.ratio), "sampled": True})
    return rows


def held_slots(host: Host, since: datetime, now: datetime) -> list[Held]:
    """The slots each job touching `host` held on it since `since`, in seconds relative to now."""
    jobs = (
        MigrationJob.objects.filter(Q(source=host) | Q(destination=host))
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=since))
        .exclude(state=JobState.QUEUED)
        .annotate(
            admitted_at=Min("events__time", filter=Q(events__kind="state", events__data__state=JobState.ADMITTED))
        )
        .annotate(released=Coalesce("slots_released_at", "finished_at"))  # the move's end frees the slots
        .values_list("kind", "source_id", "destination_id", "admitted_at", "started_at", "released")
    )
    held = []
    for kind, source, destination, admitted_at, started_at, released in jobs:
        began = admitted_at or started_at
        if began is None:
            continue  # ended while queued: it never held a slot
        slots = [s for h, s in slots_needed(kind, source, destination) if h == host.pk]
        held.append(
            Held(
                start=(began - now).total_seconds(),
                end=None if released is None else (released - now).total_seconds(),
                live=slots.count(LIVE),
                storage=slots.count(STORAGE),
            )
        )
    return held


def host_slots_chart(host: Host, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    window = SLOT_WINDOW.total_seconds()
    series = steps(held_slots(host, now - SLOT_WINDOW, now), -window, 0.0)
    live, storage = host.effective_max_live_migrations, host.max_storage_migrations
    return {
        "summary": charts.slots_summary(series, live, storage),
        "svg": charts.slots_chart_svg(series, live, storage, window_s=window),
    }
