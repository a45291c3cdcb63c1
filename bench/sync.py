"""Bench of the inventory sync over WinRM: 100 emulated Hyper-V hosts, in parallel versus one at a time.

Run from the repository root:
    .venv/bin/python bench/sync.py [--hosts 100] [--vms-per-host 20] [--repeat 3] [--processes 4] [--latency 0 0.05]

A generated fabric (half the hosts in 4-node clusters) is served by host emulator processes
(manage.py hyperv_emulator, each serving a slice of the hosts on free ports of 127.0.0.1, so the
hosts' work is not done under this process's GIL); the console's sync (fabric.sync.sync_inventory)
reads it through the pypsrp driver into a throwaway SQLite database. For each host latency (the
seconds a real host's WMI spends in each cmdlet; 0 = only protocol and serialization cost) it
prints the first sync (runspace pools opened) and the medians of the next runs (pools reused),
parallel (fabric.sync.SYNC_THREADS, the sync's default) and one host at a time.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = tempfile.mkdtemp(prefix="console-bench-sync-")
# Before django.setup(): a throwaway database, the psrp driver, nothing from the caller's environment.
os.environ["CONSOLE_DATA_DIR"] = DATA_DIR
os.environ["HYPERV_DRIVER"] = "psrp"
os.environ["HYPERV_EMULATOR"] = "1"
os.environ["HYPERV_ALLOW_BASIC_HTTP"] = "1"
for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "HYPERV_EMULATOR_USER", "HYPERV_EMULATOR_PASSWORD"):
    os.environ.pop(name, None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from fabric.driver import get_driver  # noqa: E402
from fabric.hyperv import inventory_processes  # noqa: E402
from fabric.models import Host, VirtualMachine  # noqa: E402
from fabric.sim.demo import build_demo_fabric  # noqa: E402
from fabric.sim.store import FabricStore  # noqa: E402
from fabric.sync import SYNC_THREADS, sync_inventory  # noqa: E402

CPU: list[float] = []  # the console's CPU seconds of each timed sync, its helper processes' too (not the emulators')
EMULATOR_CPU: list[float] = []  # the emulator processes' CPU seconds of each timed sync, together
EMULATORS: list[int] = []  # their pids


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB, from /proc (nan elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    return next(
        (int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), float("nan")
    )


def processes_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far, from /proc."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")  # not Linux, or gone
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def timed_sync(workers: int) -> float:
    helpers = inventory_processes.helper_pids()  # the console's helpers, started by the first sync
    started, emulators = time.perf_counter(), processes_cpu(EMULATORS)
    cpu = time.process_time() + processes_cpu(helpers)
    report = sync_inventory(get_driver(), max_workers=workers)
    elapsed = time.perf_counter() - started
    CPU.append(time.process_time() + processes_cpu(helpers) - cpu)
    EMULATOR_CPU.append(processes_cpu(EMULATORS) - emulators)
    if report.unreachable:
        raise SystemExit(f"unreachable hosts: {report.unreachable}")
    return elapsed


def start_emulators(fqdns: list[str], processes: int, latency: float) -> list[subprocess.Popen]:
    """Emulator processes, each serving a slice of the hosts; returns once every one is ready."""
    procs, ready_files = [], []
    for i in range(processes):
        ready = Path(DATA_DIR) / f"emulator-{i}.ready"
        ready.unlink(missing_ok=True)
        hosts = [arg for fqdn in fqdns[i::processes] for arg in ("--host", fqdn)]
        command = [
            sys.executable,
            str(ROOT / "manage.py"),
            "hyperv_emulator",
            "--free-ports",
            "--ready-file",
            str(ready),
            "--latency",
            str(latency),
            *hosts,
        ]
        procs.append(subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ready_files.append(ready)
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in ready_files):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop_emulators(procs)
            raise SystemExit("the emulator processes did not start")
        time.sleep(0.1)
    return procs


def stop_emulators(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def register_hosts(store: FabricStore) -> None:
    """The console's inventory follows the addresses the emulators serve the hosts on now."""
    with store.session() as fabric:
        connections = fabric.connections()
    for conn in connections:
        Host.objects.update_or_create(
            fqdn=conn.fqdn,
            defaults={"name": conn.fqdn.split(".")[0], "address": conn.address, "port": conn.port, "transport": "http"},
        )


def bench(store: FabricStore, fqdns: list[str], args: argparse.Namespace, latency: float) -> dict:
    procs = start_emulators(fqdns, args.processes, latency)
    EMULATORS[:] = [p.pid for p in procs]
    try:
        register_hosts(store)
        get_driver().close()  # new endpoints: no pool of the previous round is valid
        inventory_processes.close()  # nor any of the helpers'
        print(f"\nhost latency {1000 * latency:.0f} ms per cmdlet ({args.processes} emulator processes)")
        first = timed_sync(SYNC_THREADS)
        print(f"  first sync, parallel (opens {len(fqdns)} runspace pools): {first:7.2f} s")
        CPU.clear()
        EMULATOR_CPU.clear()
        parallel = [timed_sync(SYNC_THREADS) for _ in range(args.repeat)]
        p = statistics.median(parallel)
        print(f"  sync, parallel ({SYNC_THREADS} threads), pools reused:  {p:7.2f} s  (median of {args.repeat})")
        # What a deployment pays: the hosts' own CPU is on the hosts, not beside the console as here.
        print(f"  the console's CPU in that sync (helpers too): {statistics.median(CPU):7.2f} s")
        print(f"  the emulators' CPU in that sync:            {statistics.median(EMULATOR_CPU):7.2f} s")
        for pid in inventory_processes.helper_pids():
            print(f"  a helper process's memory (RSS):            {rss_mb(pid):7.0f} MB")
        print(f"  this process's memory (RSS):                {rss_mb(os.getpid()):7.0f} MB")
        if args.profile:  # where the console's CPU goes: 20 hosts read in this thread, then the write
            import cProfile
            import pstats

            from fabric.sync import connection_for

            hosts = list(Host.objects.order_by("fqdn")[:20])
            profiler = cProfile.Profile()
            profiler.enable()
            for host in hosts:
                get_driver().inventory(connection_for(host))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        for workers in args.more_threads:
            print(f"  sync, parallel ({workers} threads), pools reused:  {timed_sync(workers):7.2f} s")
        serial = [timed_sync(1) for _ in range(args.repeat)] if not args.no_serial else [float("nan")]
        s = statistics.median(serial)
        print(f"  sync, one host at a time, pools reused:     {s:7.2f} s  (median of {args.repeat})")
        print(f"  per host, one at a time:                    {1000 * s / len(fqdns):7.1f} ms")
        print(f"  parallel speed-up:                          {s / p:7.1f}x")
        return {"latency_s": latency, "first_s": first, "parallel_s": p, "sequential_s": s, "speedup": s / p}
    finally:
        get_driver().close()
        inventory_processes.close()
        stop_emulators(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms-per-host", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes", type=int, default=4, help="emulator processes (default 4)")
    parser.add_argument("--more-threads", type=int, nargs="*", default=[], help="also time syncs with N threads")
    parser.add_argument("--no-serial", action="store_true", help="skip the one-host-at-a-time runs (slow)")
    parser.add_argument("--profile", action="store_true", help="print where the console's CPU goes in one sync")
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.05], help="seconds per cmdlet")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON (bench/run_all.py)")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    store = FabricStore(settings.SIM_FABRIC_PATH, time_scale=settings.SIM_TIME_SCALE)
    store.create(build_demo_fabric(seed=1, hosts=args.hosts, vms=args.hosts * args.vms_per_host))
    with store.session() as fabric:
        fqdns = sorted(fabric.hosts)
    try:
        print(f"{args.hosts} emulated hosts, {args.hosts * args.vms_per_host} VMs, WinRM (HTTP, Basic) on 127.0.0.1")
        runs = [bench(store, fqdns, args, latency) for latency in args.latency]
        if args.json:
            Path(args.json).write_text(json.dumps({"hosts": args.hosts, "runs": runs}))
        print(f"\nVMs in the database: {VirtualMachine.objects.filter(removed=False).count()}")
    finally:
        store.close()
        shutil.rmtree(DATA_DIR, ignore_errors=True)


if __name__ == "__main__":
    main()
