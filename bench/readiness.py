"""Bench of the readiness refresh (migrations_ui.planning.readiness): the CPU a worker spends planning
every host's evacuation, and every cluster node's within its cluster, after a sync or a finished move.

Run from the repository root:
    .venv/bin/python bench/readiness.py [--hosts 64] [--vms-per-host 16] [--repeat 3]

A generated fabric (half the hosts in 4-node clusters) is read through the simulator driver into a
throwaway SQLite database; the refresh is timed as a worker runs it (one Snapshot, then one plan per
host and one more per cluster node). Prints the median wall and CPU seconds.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = tempfile.mkdtemp(prefix="console-bench-readiness-")
# Before django.setup(): a throwaway database and the in-process simulator.
os.environ["CONSOLE_DATA_DIR"] = DATA_DIR
os.environ["HYPERV_DRIVER"] = "sim"
os.environ["SIM_TIME_SCALE"] = "1"
os.environ["SIM_FABRIC_PATH"] = str(Path(DATA_DIR) / "fabric.sqlite3")
for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
    os.environ.pop(name, None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from fabric.driver import get_driver, sim_store  # noqa: E402
from fabric.models import Host, VirtualMachine  # noqa: E402
from fabric.sim.demo import build_demo_fabric, host_connections  # noqa: E402
from fabric.sync import sync_inventory  # noqa: E402
from migrations_ui.planning.readiness import refresh_readiness  # noqa: E402


def fabric_of(hosts: int, vms: int) -> None:
    call_command("migrate", verbosity=0)
    fabric = build_demo_fabric(seed=1, hosts=hosts, vms=vms)
    sim_store().create(fabric)
    for conn in host_connections(fabric):
        Host.objects.create(fqdn=conn.fqdn, name=conn.fqdn.split(".")[0], address=conn.address, port=conn.port)
    report = sync_inventory(get_driver())
    assert not report.unreachable, report.unreachable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--vms-per-host", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        fabric_of(args.hosts, args.hosts * args.vms_per_host)
        walls, cpus = [], []
        for _ in range(args.repeat):
            started, cpu = time.perf_counter(), time.process_time()
            assessed = refresh_readiness()
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        ready = Host.objects.filter(readiness__ready=True).count()
        print(
            f"{args.hosts} hosts, {VirtualMachine.objects.count()} VMs: refresh {statistics.median(walls):.2f} s"
            f" (CPU {statistics.median(cpus):.2f} s, median of {args.repeat}); {assessed} assessed, {ready} ready"
        )
    finally:
        shutil.rmtree(DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
