"""Orchestration throughput and fidelity, with real job_worker processes.

1. Migrations per minute: --jobs moves of tiny VMs on a generated fabric (--hosts hosts), the
   simulator at full speed (SIM_TIME_SCALE --fast-scale, a move takes about a millisecond), --workers
   job_worker processes; from the moment the workers start until every job has ended. On the
   embedded SQLite files, or on PostgreSQL with --database-url (a database of its own: it is emptied).
2. The console's makespan against the plan's: `evacuate hv-new2` of the demo fabric (a cluster node,
   MaximumParallelMigrations 1) at SIM_TIME_SCALE --plan-scale; the plan's makespan (evacuate
   --plan-only) against the simulated time from the first move's start to the last one's end, read
   from the simulator's own record. Overhead = console / plan - 1 (target at most 2%).

Run from the repository root: .venv/bin/python bench/orchestration.py [--jobs 200] [--workers 4] [--json FILE]
(--only makespan or --only throughput runs one part.)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANAGE = str(ROOT / "manage.py")
sys.path.insert(0, str(ROOT))
# The fabric modules need settings (translated messages): a throwaway data directory, nothing more.
os.environ["CONSOLE_DATA_DIR"] = tempfile.mkdtemp(prefix="console-bench-orch-settings-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

import django  # noqa: E402

django.setup()

from fabric.sim.demo import build_demo_fabric  # noqa: E402
from fabric.sim.store import FabricStore  # noqa: E402
from migrations_ui.jobs.runner import STEPS  # noqa: E402

GIB = 1024**3
# Runs inside `manage.py shell`: one move per VM to the next host of its group (the next node of its
# cluster, or the next standalone host); prints how many were refused.
CREATE_JOBS = """
import json
from collections import defaultdict
from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.operations import Refused, create_job

groups = defaultdict(list)
for host in Host.objects.order_by("fqdn"):
    groups[host.cluster_id].append(host)
following = dict()
for members in groups.values():
    for i, host in enumerate(members):
        following[host.pk] = members[(i + 1) % len(members)]
refused = 0
for vm in VirtualMachine.objects.filter(removed=False).select_related("host").order_by("name")[:JOBS]:
    try:
        create_job(vm, following[vm.host_id])
    except Refused:
        refused += 1
print(json.dumps(dict(refused=refused)))
"""
STATES_SQL = "SELECT state, count(*) FROM migrations_ui_migrationjob GROUP BY state"


def count_states(data: str, database_url: str | None) -> dict[str, int]:
    """Read straight from the database: a manage.py process per look would load the machine."""
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as db:
            return dict(db.execute(STATES_SQL).fetchall())
    with sqlite3.connect(Path(data) / "db.sqlite3", timeout=30) as db:
        return dict(db.execute(STATES_SQL).fetchall())


def environment(data: str, scale: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env.update(CONSOLE_DATA_DIR=data, HYPERV_DRIVER="sim", SIM_TIME_SCALE=str(scale), DEBUG="0")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run(
        [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed: {done.stderr[-1500:]}")
    return done.stdout


def last_json(output: str) -> dict:
    """The JSON document a command printed last (one line, or indented over several)."""
    lines = output.strip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("{"))
    return json.loads("\n".join(lines[start:]))


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, MANAGE, "job_worker", "--no-reload", "-v0"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def stop(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")


def throughput(args) -> dict:
    """Jobs per minute with the simulator at full speed."""
    with tempfile.TemporaryDirectory(prefix="console-bench-orch-") as data:
        if args.database_url:
            reset_postgres(args.database_url)
        env = environment(data, args.fast_scale, args.database_url)
        fabric = build_demo_fabric(seed=11, hosts=args.hosts, vms=args.jobs)
        for vm in fabric.vms.values():
            vm.state, vm.memory_bytes, vm.dirty_rate_mbps = "running", GIB, 1.0
            for disk in vm.disks:
                disk.size_bytes = GIB
        FabricStore(Path(data) / "fabric.sqlite3", time_scale=args.fast_scale).create(fabric)
        manage(env, "migrate", "-v0")
        if not args.database_url:
            manage(env, "migrate", "--database", "channels", "-v0")
        manage(env, "seed_demo")
        created = last_json(manage(env, "shell", "-c", CREATE_JOBS.replace("JOBS", str(args.jobs))))
        jobs = args.jobs - created["refused"]
        workers = start_workers(env, args.workers)
        started = time.monotonic()
        states: dict[str, int] = {}
        try:
            while time.monotonic() - started < args.timeout:
                states = count_states(data, args.database_url)
                if sum(states.get(s, 0) for s in ("succeeded", "failed", "cancelled")) == jobs:
                    break
                time.sleep(0.5)
            elapsed = time.monotonic() - started
        finally:
            stop(workers)
        done = states.get("succeeded", 0)
        print(
            f"{done}/{jobs} jobs succeeded on {args.workers} workers in {elapsed:.1f} s: {60 * done / elapsed:.0f}/min"
        )
        return {"jobs": jobs, "succeeded": done, "elapsed_s": elapsed, "per_minute": 60 * done / elapsed}


def makespan(args) -> dict:
    """The evacuation's simulated makespan against its plan's."""
    with tempfile.TemporaryDirectory(prefix="console-bench-evac-") as data:
        env = environment(data, args.plan_scale, None)
        manage(env, "migrate", "-v0")
        manage(env, "migrate", "--database", "channels", "-v0")
        manage(env, "seed_demo")
        plan = last_json(manage(env, "evacuate", "hv-new2", "--plan-only", "--json"))
        workers = start_workers(env, args.workers)
        try:
            ran = last_json(manage(env, "evacuate", "hv-new2", "--wait", "--json"))
        finally:
            stop(workers)
        moved = {m["vm"] for m in plan["moves"]}
        with FabricStore(Path(data) / "fabric.sqlite3", time_scale=args.plan_scale).session() as fabric:
            runs = [m for m in fabric.migrations.values() if m.vm_name in moved]
        actual = max(m.ended_at for m in runs) - min(m.started_at for m in runs)
        runs.sort(key=lambda m: m.started_at)
        gaps = [b.started_at - a.ended_at for a, b in pairwise(runs)]
        handover = hand_overs(data, [m.vm_name for m in runs])
        states = defaultdict(int)
        for job in ran["jobs"]:
            states[job["state"]] += 1
        overhead = actual / plan["makespan_s"] - 1
        print(
            f"evacuation of hv-new2, {len(plan['moves'])} moves at SIM_TIME_SCALE {args.plan_scale}: plan"
            f" {plan['makespan_s']:.1f} s, console {actual:.1f} s (simulated), overhead {100 * overhead:+.1f}%"
            f"; jobs {dict(states)}"
        )
        print(f"hand-overs (simulated s between one move's end and the next one's start): {fmt(gaps)}")
        for name, values in handover.items():
            print(f"  wall s, {name}: {fmt(values)}")
        return {
            "moves": len(plan["moves"]),
            "plan_s": plan["makespan_s"],
            "console_s": actual,
            "overhead": overhead,
            "scale": args.plan_scale,
            "states": dict(states),
            "gaps_s": gaps,
            "hand_over_wall_s": handover,
        }


def fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


# The moments of a hand-over, as the jobs' event log has them (JobEvent.time).
HAND_OVER = (
    ("end noticed", "step", {"step": "move", "done": True}),
    ("next admitted", "state", {"state": "admitted"}),
    ("next running", "state", {"state": "running"}),
    ("next Compare-VM", "step", {"step": "compare", "label": STEPS["compare"]}),
    ("next move step", "step", {"step": "move", "label": STEPS["move"]}),
    ("next Move-VM sent", "move_requested", {}),
)


def hand_overs(data: str, vm_names: list[str]) -> dict[str, list[float]]:
    """Wall seconds from the end of each move being noticed to each step of the next job's start."""
    with sqlite3.connect(Path(data) / "db.sqlite3", timeout=30) as db:
        rows = db.execute(
            "SELECT j.vm_name, e.time, e.kind, e.data FROM migrations_ui_jobevent e"
            " JOIN migrations_ui_migrationjob j ON j.id = e.job_id ORDER BY e.job_id, e.sequence"
        ).fetchall()
    moments: dict[str, dict[str, float]] = defaultdict(dict)
    for vm, when, kind, raw in rows:
        event = json.loads(raw or "{}")
        for name, want_kind, want in HAND_OVER:
            if kind == want_kind and want.items() <= event.items() and name not in moments[vm]:
                moments[vm][name] = datetime.fromisoformat(when).timestamp()
    out = {}
    for name, *_ in HAND_OVER[1:]:
        out[f"end noticed -> {name}"] = [
            moments[b][name] - moments[a]["end noticed"]
            for a, b in pairwise(vm_names)
            if name in moments[b] and "end noticed" in moments[a]
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fast-scale", type=int, default=100_000, help="SIM_TIME_SCALE for the throughput part")
    parser.add_argument("--plan-scale", type=int, default=4, help="SIM_TIME_SCALE for the makespan part")
    parser.add_argument("--database-url", help="a PostgreSQL database for the throughput part (it is emptied)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--only", choices=("throughput", "makespan"), help="run one part only")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON (bench/run_all.py)")
    args = parser.parse_args()
    parts = {"throughput": throughput, "makespan": makespan}
    figures = {name: part(args) for name, part in parts.items() if args.only in (None, name)}
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
