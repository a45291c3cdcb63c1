"""The cost of a /metrics scrape against the number of finished jobs: every figure is aggregated by the
database at scrape time (console/metrics/collector.py), so the queries stay the same; this measures
how their time grows with the rows they aggregate.

A throwaway SQLite database (or DATABASE_URL with --postgres) with --hosts hosts, a running and a
queued job on some, and N finished jobs (succeeded, failed, cancelled) of random durations and
blackouts; it prints the scrape's median wall time and its query count per N. Figures only.

Run: .venv/bin/python bench/metrics.py [--hosts 64] [--jobs 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.update(CONSOLE_DATA_DIR=tempfile.mkdtemp(prefix="console-bench-metrics-"), HYPERV_DRIVER="sim")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
for name in ("REDIS_URL", "SECRET_KEY", *(() if "--postgres" in sys.argv else ("DATABASE_URL",))):
    os.environ.pop(name, None)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from console.metrics.collector import registry  # noqa: E402
from migrations_ui.models import MigrationJob  # noqa: E402
from tests.fabric.factories import make_host, make_vm  # noqa: E402


def add_jobs(n: int, hosts: list, vms: list, rng: random.Random) -> None:
    now = timezone.now()
    batch = []
    for _ in range(n):
        source, destination = rng.sample(hosts, 2)
        seconds = rng.uniform(5, 3000)
        state = rng.choices(["succeeded", "failed", "cancelled"], [90, 7, 3])[0]
        batch.append(
            MigrationJob(
                kind=rng.choice(["live", "live", "live", "storage", "quick"]),
                vm=rng.choice(vms),
                vm_name="bench",
                source=source,
                destination=destination,
                state=state,
                started_at=now - timedelta(seconds=seconds),
                finished_at=now,
                blackout_ms=rng.randint(20, 4000) if state == "succeeded" else None,
                bytes_sent=rng.randint(1, 64) << 30,
            )
        )
    MigrationJob.objects.bulk_create(batch, batch_size=2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000, 100000], help="finished jobs, cumulative")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="the time of each query of the last scrape")
    parser.add_argument("--postgres", action="store_true", help="use DATABASE_URL (an empty database) as it is")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    rng = random.Random(1)
    hosts = [make_host(f"hv{i:03d}") for i in range(args.hosts)]
    vms = [make_vm(f"vm{i:04d}", host=rng.choice(hosts)) for i in range(args.hosts * 4)]
    MigrationJob.objects.create(
        kind="live", vm=vms[0], vm_name="a", source=hosts[0], destination=hosts[1], state="running"
    )
    MigrationJob.objects.create(kind="live", vm=vms[1], vm_name="b", source=hosts[0], destination=hosts[1])
    done = 0
    print(f"{'finished jobs':>14} {'scrape p50 ms':>14} {'queries':>8} {'bytes':>8}")
    for total in args.jobs:
        add_jobs(total - done, hosts, vms, rng)
        done = total
        walls = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                body = generate_latest(registry())
                walls.append(time.perf_counter() - started)
        print(f"{total:>14} {statistics.median(walls) * 1000:>14.1f} {len(queries):>8} {len(body):>8}")
        if args.verbose:
            for query in queries:
                print(f"{'':>14} {float(query['time']) * 1000:>14.1f}  {query['sql'][:100]}")


if __name__ == "__main__":
    main()
