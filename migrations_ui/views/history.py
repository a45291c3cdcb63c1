"""What past moves teach: the finished migrations with their figures, filtered, paged and exported
as CSV, and per pair of hosts a chart of the move's time against the VM's memory beside the
planner's estimate for that pair.

Filters are read leniently (a bad value is ignored with a message at its field, never a 500); an
export with a bad filter is refused (400), as the audit's is: it would hand over more than asked.
Dates are days in the console's current time zone, as the Jobs page's Finished filters are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.http import require_safe

from fabric.driver import fabric_seconds_per_second
from fabric.models import Cluster, Host
from migrations_ui.live.history_chart import DurationPoint, duration_chart_svg
from migrations_ui.models import JobState, MigrationJob, TransferType
from migrations_ui.planning.estimates import Figures, HostRates, MoveSpec, PairRate, estimate_move
from migrations_ui.planning.inventory import measured_links
from migrations_ui.preflight.facts import Kind
from utilities.csv_export import csv_response

PER_PAGE = 50
STATES = {
    "succeeded": (JobState.SUCCEEDED,),
    "failed": (JobState.FAILED,),
    "cancelled": (JobState.CANCELLED,),
    "all": (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED),
}
FIELDS = ("state", "source", "destination", "cluster", "kind", "since", "until")
# Charts: the pairs with the most succeeded live moves among the filtered ones, and the moves read.
CHARTS_SHOWN = 4
CHART_MOVES_READ = 2000
CHART_DIRTY_MBPS = 20.0  # the planner's default dirty rate (estimates.DEFAULT_DIRTY_MBPS): a quiet server


@dataclass
class HistoryFilter:
    values: dict = field(default_factory=dict)  # the filters applied, as given (state always)
    errors: dict = field(default_factory=dict)  # field -> why its value was ignored (shown at the field)
    raw: dict = field(default_factory=dict)  # each ignored value as typed, put back in its field

    def query(self, **override) -> str:
        values = {**self.values, **override}
        return urlencode({k: v for k, v in values.items() if v and not (k == "state" and v == "succeeded")})

    @property
    def filtered(self) -> bool:
        return any(v for k, v in self.values.items() if k != "state") or self.values.get("state") != "succeeded"


def _host(raw: str) -> Host | None:
    return Host.objects.filter(Q(fqdn__iexact=raw) | Q(name__iexact=raw)).order_by("pk").first()


def parse(params) -> tuple[HistoryFilter, Q]:
    f, q = HistoryFilter(), Q()
    state = (params.get("state") or "succeeded").strip()[:20]
    if state not in STATES:
        f.errors["state"] = _("Ignored %(value)s: use one of %(choices)s.") % {
            "value": repr(state),
            "choices": ", ".join(STATES),
        }
        f.raw["state"], state = state, "succeeded"
    f.values["state"] = state
    q &= Q(state__in=STATES[state])
    for name in FIELDS[1:]:
        raw = (params.get(name) or "").strip()[:255]
        if not raw:
            continue
        if name in ("source", "destination"):
            host = _host(raw)
            if host is None:
                f.errors[name] = _("Ignored %(value)s: there is no such host.") % {"value": repr(raw)}
            else:
                q &= Q(**{name: host})
                raw = host.fqdn
        elif name == "cluster":
            if not Cluster.objects.filter(name__iexact=raw).exists():
                f.errors[name] = _("Ignored %(value)s: there is no such cluster.") % {"value": repr(raw)}
            else:
                q &= Q(source__cluster__name__iexact=raw) | Q(destination__cluster__name__iexact=raw)
        elif name == "kind":
            if raw not in TransferType.values:
                f.errors[name] = _("Ignored %(value)s: use one of %(choices)s.") % {
                    "value": repr(raw),
                    "choices": ", ".join(TransferType.values),
                }
            else:
                q &= Q(kind=raw)
        else:  # since, until: days in the current time zone, as the Jobs page's filters
            day = _day(raw)
            if day is None:
                f.errors[name] = _("Ignored %(value)s: give a date as 2026-11-25.") % {"value": repr(raw)}
            else:
                q &= Q(finished_at__date__gte=day) if name == "since" else Q(finished_at__date__lte=day)
        if name in f.errors:
            f.raw[name] = raw
        else:
            f.values[name] = raw
    return f, q


def _day(raw: str):
    try:
        return parse_date(raw)
    except ValueError:  # well-formed but impossible: 2026-02-30
        return None


def finished_jobs(q: Q):
    return (
        MigrationJob.objects.filter(q)
        .select_related("source", "destination", "requested_by")
        .order_by("-finished_at", "-pk")
    )


# --- a row's figures --------------------------------------------------------------------------------


def move_seconds(job: MigrationJob) -> float | None:
    """Wall seconds of the move on the host (Move-VM sent to its end), else of the whole job."""
    if job.move_requested_at and job.slots_released_at:
        return max((job.slots_released_at - job.move_requested_at).total_seconds(), 0.0)
    if job.started_at and job.finished_at:
        return max((job.finished_at - job.started_at).total_seconds(), 0.0)
    return None


def job_seconds(job: MigrationJob) -> float | None:
    if job.started_at and job.finished_at:
        return max((job.finished_at - job.started_at).total_seconds(), 0.0)
    return None


def average_rate(job: MigrationJob) -> float | None:
    """Bytes/s over the move's time on the host (what it sent: memory passes and files)."""
    seconds = move_seconds(job)
    return job.bytes_sent / seconds if job.bytes_sent and seconds else None


def with_figures(jobs):
    for job in jobs:
        job.move_s = move_seconds(job)
        job.took_s = job_seconds(job)
        job.rate_bytes_s = average_rate(job)
        job.rate_mbps = job.rate_bytes_s / 1_000_000 if job.rate_bytes_s else None
        yield job


# --- the charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairChart:
    source: Host
    destination: Host
    moves: int
    svg: str
    basis: str  # "measured" | "inventory"
    samples: int


def pair_charts(q: Q) -> list[PairChart]:
    """Succeeded live moves among the filtered ones, by pair (most moves first, CHARTS_SHOWN of them):
    the move's time on the host against the VM's memory, with the planner's estimate beside it."""
    live = Q(state=JobState.SUCCEEDED, kind=TransferType.LIVE, memory_bytes__gt=0)
    rows = list(finished_jobs(q & live)[:CHART_MOVES_READ])
    by_pair: dict[tuple[int, int], list[MigrationJob]] = {}
    for job in rows:
        by_pair.setdefault((job.source_id, job.destination_id), []).append(job)
    if not by_pair:
        return []
    measured = measured_links()
    per_second = fabric_seconds_per_second() or 1
    charts = []
    for jobs in sorted(by_pair.values(), key=lambda js: (-len(js), js[0].source.name, js[0].destination.name)):
        source, destination = jobs[0].source, jobs[0].destination
        link = measured.get((source.fqdn, destination.fqdn))
        points = [DurationPoint(j.memory_bytes, s, f"#{j.pk} {j.vm_name}") for j in jobs if (s := move_seconds(j))]
        top = max(p.memory_bytes for p in points) if points else 0
        line = estimate_line(source, destination, link, top, per_second)
        label = (
            ngettext(
                "Estimate from %(n)d past move on this pair",
                "Estimate from %(n)d past moves on this pair",
                link.samples,
            )
            % {"n": link.samples}
            if link
            else _("Estimate from the inventory's link speed")
        )
        title = _("%(source)s → %(destination)s: time of the move against the VM's memory") % {
            "source": source.name,
            "destination": destination.name,
        }
        svg = duration_chart_svg(points, line, title=title, line_label=label, ident=f"{source.pk}-{destination.pk}")
        basis = "measured" if link else "inventory"
        charts.append(PairChart(source, destination, len(jobs), svg, basis, link.samples if link else 0))
        if len(charts) == CHARTS_SHOWN:
            break
    return charts


def estimate_line(
    source: Host, destination: Host, link: PairRate | None, top_bytes: float, per_second: float, steps: int = 24
) -> list[tuple[float, float]]:
    """The planner's duration of a live move of each memory size on this pair, in wall seconds."""
    figures, rates = Figures(), (HostRates(source.nic_gbps), HostRates(destination.nic_gbps))
    line = []
    for i in range(steps + 1):
        memory = top_bytes * i / steps
        spec = MoveSpec(
            "", Kind.LIVE, source.fqdn, destination.fqdn, source.performance_option, memory,
            CHART_DIRTY_MBPS * 1_000_000, 0.0, link.link_bytes_s if link else 0.0, link.samples if link else 0,
        )  # fmt: skip
        line.append((memory, estimate_move(spec, *rates, figures).duration_s / per_second))
    return line


# --- the views ----------------------------------------------------------------------------------------


@require_safe  # a read-only page: POST and the like are refused (405)
def history(request):
    f, q = parse(request.GET)
    page = Paginator(finished_jobs(q), PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(with_figures(page.object_list))
    context = {
        "filter": f,
        "page": page,
        "charts": pair_charts(q),
        "states": [
            ("succeeded", _("Succeeded")),
            ("failed", _("Failed")),
            ("cancelled", _("Cancelled")),
            ("all", _("All finished")),
        ],
        "hosts": Host.objects.order_by("name").only("name", "fqdn"),
        "clusters": Cluster.objects.order_by("name").values_list("name", flat=True),
        "kinds": TransferType.choices,
        "host_fields": [("source", pgettext("move", "From")), ("destination", pgettext("move", "To"))],
        "date_fields": [("since", _("Finished from")), ("until", pgettext("date range", "to"))],
    }
    return render(request, "migrations_ui/history.html", context)


EXPORT_FIELDS = [
    "job",
    "vm",
    "kind",
    "state",
    "source",
    "destination",
    "started_at",
    "finished_at",
    "duration_s",
    "move_s",
    "memory_bytes",
    "bytes_sent",
    "passes",
    "blackout_ms",
    "average_rate_bytes_s",
    "error_code",
]


def _when(moment) -> str:
    return timezone.localtime(moment).isoformat() if moment else ""


def _row(job: MigrationJob) -> list:
    move_s, took_s, rate = move_seconds(job), job_seconds(job), average_rate(job)
    return [
        job.pk,
        job.vm_name,
        job.kind,
        job.state,
        job.source.fqdn,
        job.destination.fqdn,
        _when(job.started_at),
        _when(job.finished_at),
        "" if took_s is None else f"{took_s:.1f}",
        "" if move_s is None else f"{move_s:.1f}",
        job.memory_bytes,
        job.bytes_sent,
        job.pass_number,
        job.blackout_ms,
        "" if rate is None else f"{rate:.0f}",
        job.error_code,
    ]


@require_safe  # read-only: POST and the like are refused (405)
def history_csv(request):
    f, q = parse(request.GET)
    if f.errors:
        # An export with a filter ignored would hand over more than was asked for.
        return HttpResponseBadRequest("\n".join(f.errors.values()) + "\n", content_type="text/plain; charset=utf-8")
    # iterator(): rows stream from the database in chunks, however many there are.
    rows = (_row(job) for job in finished_jobs(q).iterator(chunk_size=2000))
    return csv_response(EXPORT_FIELDS, rows, "migration-history")
