"""The console's Prometheus metrics, computed from the database at every scrape.

Nothing is counted in a process's memory: every web process answers a scrape with the same figures,
however many web and worker processes run and whichever of them did the work, so no multiprocess
directory is needed. The counters are counts of job rows: they only ever grow as long as job rows
are not deleted (deleting finished jobs makes them drop, which Prometheus reads as a counter reset).
Each family is one aggregate query (the histograms count their buckets in the database): a scrape is
the same 10 queries with 100 jobs or 100,000, their time growing with the rows (bench/metrics.py).
The queries are not one snapshot (a transaction would take SQLite's write lock, IMMEDIATE mode): a
move ending during a scrape may be in one family and not yet in another; every counter still only grows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, F, FloatField, Func, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from fabric.models import Host
from migrations_ui.beats import FRESH
from migrations_ui.jobs.scheduler import host_limits, slots_in_use
from migrations_ui.models import ACTIVE_STATES, FINAL_STATES, JobState, MigrationJob, ProcessBeat, ProcessKind
from migrations_ui.slots import LIVE, STORAGE

PREFIX = "hvmc_"
# Seconds: a move of a small VM on a fast link takes seconds, an evacuation's large VM an hour or more.
DURATION_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
# Seconds the VM is paused for the switch-over: well under a second when all goes well.
BLACKOUT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class ConsoleCollector(Collector):
    def collect(self):
        now = timezone.now()
        yield from _migrations()
        yield _duration_histogram()
        yield _blackout_histogram()
        yield from _queue()
        yield from _slots()
        yield from _hosts(now)
        yield from _processes(now)


def registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    return registry


def _migrations():
    started = CounterMetricFamily(
        PREFIX + "migrations_started", "Migrations a worker started, by transfer type", labels=["kind"]
    )
    for row in MigrationJob.objects.filter(started_at__isnull=False).values("kind").annotate(n=Count("pk")):
        started.add_metric([row["kind"]], row["n"])
    ended = CounterMetricFamily(
        PREFIX + "migrations", "Migrations that ended, by transfer type and final state", labels=["kind", "state"]
    )
    moved = CounterMetricFamily(
        PREFIX + "migration_bytes_moved", "Bytes the hosts sent for succeeded migrations", labels=["kind"]
    )
    rows = MigrationJob.objects.filter(state__in=FINAL_STATES).values("kind", "state")
    for row in rows.annotate(n=Count("pk"), sent=Sum("bytes_sent")).order_by("kind", "state"):
        ended.add_metric([row["kind"], row["state"]], row["n"])
        if row["state"] == JobState.SUCCEEDED:
            moved.add_metric([row["kind"]], row["sent"] or 0)
    return started, ended, moved


def _histogram(name: str, documentation: str, rows, edges, scale: float) -> HistogramMetricFamily:
    """rows: values per kind with n (count), total (sum, in the unit times scale) and b0, b1, ...
    (the cumulative count at each edge), as the database aggregated them."""
    family = HistogramMetricFamily(name, documentation, labels=["kind"])
    for row in rows:
        buckets = [(floatToGoString(edge), row[f"b{i}"]) for i, edge in enumerate(edges)] + [("+Inf", row["n"])]
        family.add_metric([row["kind"]], buckets, _seconds(row["total"]) / scale)
    return family


def _seconds(value) -> float:
    if value is None:
        return 0.0
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Seconds(Func):
    """Seconds from one datetime column to another, in the database's own arithmetic: Django's
    DurationField subtraction calls a Python function per row on SQLite (10 s a scrape at 100,000 jobs,
    bench/metrics.py)."""

    output_field = FloatField()
    arity = 2

    def as_sqlite(self, compiler, connection, **extra):
        template = "((julianday(%(expressions)s)) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, arg_joiner=") - julianday(", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        template = "EXTRACT(EPOCH FROM (%(expressions)s))::float8"
        return self.as_sql(compiler, connection, template=template, arg_joiner=" - ", **extra)


def _duration_histogram() -> HistogramMetricFamily:
    duration = _Seconds(F("finished_at"), F("started_at"))
    jobs = MigrationJob.objects.filter(state=JobState.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False)
    buckets = {f"b{i}": Count("pk", filter=Q(d__lte=e)) for i, e in enumerate(DURATION_BUCKETS)}
    rows = jobs.annotate(d=duration).values("kind").annotate(n=Count("pk"), total=Sum("d"), **buckets).order_by("kind")
    return _histogram(
        PREFIX + "migration_duration_seconds",
        "Duration of succeeded migrations, from a worker's start to the end",
        rows,
        DURATION_BUCKETS,
        1,
    )


def _blackout_histogram() -> HistogramMetricFamily:
    jobs = MigrationJob.objects.filter(state=JobState.SUCCEEDED, blackout_ms__isnull=False)
    buckets = {f"b{i}": Count("pk", filter=Q(blackout_ms__lte=round(e * 1000))) for i, e in enumerate(BLACKOUT_BUCKETS)}
    rows = jobs.values("kind").annotate(n=Count("pk"), total=Sum("blackout_ms"), **buckets).order_by("kind")
    return _histogram(
        PREFIX + "migration_blackout_seconds",
        "Blackout (the VM paused for the switch-over) of succeeded migrations",
        rows,
        BLACKOUT_BUCKETS,
        1000,
    )


def _queue():
    counts = dict(MigrationJob.objects.filter(state__in=ACTIVE_STATES).values_list("state").annotate(n=Count("pk")))
    depth = GaugeMetricFamily(PREFIX + "queue_depth", "Migrations waiting in the queue for a slot")
    depth.add_metric([], counts.get(JobState.QUEUED, 0))
    active = GaugeMetricFamily(PREFIX + "migrations_active", "Migrations not ended, by state", labels=["state"])
    for state in ACTIVE_STATES:
        active.add_metric([state], counts.get(state, 0))
    return depth, active


def _slots():
    hosts = dict(Host.objects.values_list("pk", "fqdn"))
    used, limits = slots_in_use(), host_limits(hosts)
    in_use = _gauge("host_slots_in_use", "Migration slots the host's jobs hold", "host", "slot")
    limit = _gauge("host_slots_limit", "The host's limit of migrations at once", "host", "slot")
    for pk, fqdn in sorted(hosts.items(), key=lambda item: item[1]):
        for slot in (LIVE, STORAGE):
            in_use.add_metric([fqdn, slot], used.get((pk, slot), 0))
            limit.add_metric([fqdn, slot], limits.get((pk, slot), 0))
    return in_use, limit


def _hosts(now):
    rows = list(Host.objects.order_by("fqdn").values_list("fqdn", "reachable", "last_sync"))
    reachable = GaugeMetricFamily(PREFIX + "hosts_reachable", "Hosts that answered their last sync")
    reachable.add_metric([], sum(1 for _, up, _ in rows if up))
    total = GaugeMetricFamily(PREFIX + "hosts", "Hosts in the inventory")
    total.add_metric([], len(rows))
    up = GaugeMetricFamily(PREFIX + "host_reachable", "1 when the host answered its last sync", labels=["host"])
    age = GaugeMetricFamily(
        PREFIX + "host_last_sync_age_seconds", "Seconds since the host's inventory was last synced", labels=["host"]
    )
    for fqdn, is_up, last_sync in rows:
        up.add_metric([fqdn], int(is_up))
        if last_sync is not None:  # never synced: no sample (an alert on absent() sees it)
            age.add_metric([fqdn], max(0.0, (now - last_sync).total_seconds()))
    return reachable, total, up, age


def _processes(now):
    rows = list(ProcessBeat.objects.filter(beat_at__gte=now - FRESH).order_by("name").values_list(*_BEAT_FIELDS))
    workers = GaugeMetricFamily(PREFIX + "workers_alive", "Job workers whose heartbeat is recent")
    workers.add_metric([], sum(1 for kind, *_ in rows if kind == ProcessKind.WORKER))
    beat_age = _gauge("worker_heartbeat_age_seconds", "Seconds since each live job worker's last heartbeat", "worker")
    clients = _gauge("websocket_clients", "Browsers following live progress over websockets, by web process", "process")
    per_process = defaultdict(int)
    for kind, name, beat_at, count in rows:
        if kind == ProcessKind.WORKER:
            beat_age.add_metric([name], max(0.0, (now - beat_at).total_seconds()))
        else:
            per_process[name] += count
    for name, count in per_process.items():
        clients.add_metric([name], count)
    return workers, beat_age, clients


_BEAT_FIELDS = ("kind", "name", "beat_at", "websocket_clients")


def _gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, documentation, labels=list(labels))
