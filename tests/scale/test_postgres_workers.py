"""The scale-out path for real: job_worker processes on PostgreSQL with the Redis channel layer.

4 workers run 500 jobs on a fresh database, the simulator at full speed on a shared fabric file:
every job ends succeeded, none is run twice (the simulator's own migrations and the job's events),
and no host ever took part in more migrations than its limit (from the simulator's record).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from fabric.sim.checks import live_limit
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore
from tests.served import REPO, console_environ, manage_once

pytestmark = pytest.mark.slow

# SCALE_JOBS: fewer for a quick look on a busy machine; CI runs the 500.
JOBS = int(os.environ.get("SCALE_JOBS", "500"))
HOSTS = 20
WORKERS = 4
SCALE = 100_000  # simulated seconds per wall second: a move takes about a millisecond
GIB = 1024**3

# Runs inside `manage.py shell`: one move per VM to the next host of its group (the next node of its
# cluster, or the next standalone host), so every move is allowed and every host sends and receives.
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
refused = []
for vm in VirtualMachine.objects.filter(removed=False).select_related("host").order_by("name")[:JOBS]:
    try:
        create_job(vm, following[vm.host_id])
    except Refused as exc:
        refused.append([vm.name, str(exc)])
print(json.dumps(dict(refused=refused)))
"""


def tiny_fabric(path: Path) -> None:
    """A generated fabric of HOSTS hosts and JOBS VMs of 1 GiB memory and a 1 GiB disk each."""
    fabric = build_demo_fabric(seed=11, hosts=HOSTS, vms=JOBS)
    for vm in fabric.vms.values():
        vm.state = "running"  # an offline move of a clustered VM is refused
        vm.memory_bytes = GIB
        vm.dirty_rate_mbps = 1.0
        for disk in vm.disks:
            disk.size_bytes = GIB
    # Keep every finished migration, so the check below sees all of them.
    fabric.tuning.max_finished_kept = 10 * JOBS
    FabricStore(path, time_scale=SCALE).create(fabric)


def peak_concurrency(migrations) -> dict[str, int]:
    """The most migrations each host took part in at one time (an end before a start at a tie)."""
    events = []
    for m in migrations:
        for host in {m.source, m.destination}:
            events += [(m.started_at, 1, host), (m.ended_at, -1, host)]
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    for _, delta, host in sorted(events, key=lambda e: (e[0], e[1])):
        running[host] = running.get(host, 0) + delta
        peak[host] = max(peak.get(host, 0), running[host])
    return peak


def test_it_runs_500_jobs_on_4_workers_once_each_within_every_hosts_limit(postgres_database, redis_url, tmp_path):
    env = console_environ(
        tmp_path,
        DATABASE_URL=postgres_database,
        REDIS_URL=redis_url,
        HYPERV_DRIVER="sim",
        SIM_TIME_SCALE=str(SCALE),
    )
    tiny_fabric(tmp_path / "fabric.sqlite3")
    for args in (["migrate", "-v0"], ["seed_demo"]):
        done = manage_once(env, *args)
        assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "db.sqlite3").exists()  # everything went to PostgreSQL

    started = time.monotonic()
    logs = open(tmp_path / "workers.log", "w")  # noqa: SIM115 - closed below; a pipe could fill and block them
    workers = [
        subprocess.Popen(
            [sys.executable, str(REPO / "manage.py"), "job_worker", "--no-reload", "-v0"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=logs,
        )
        for _ in range(WORKERS)
    ]
    try:
        # Submitted while the workers run, as operators would: admission races with jobs ending.
        created = manage_once(env, "shell", "-c", CREATE_JOBS.replace("JOBS", str(JOBS)), timeout=900)
        assert created.returncode == 0, created.stderr[-2000:]
        assert json.loads(created.stdout.strip().splitlines()[-1]) == {"refused": []}
        submitted = time.monotonic() - started
        with psycopg.connect(postgres_database, autocommit=True) as db:
            states = {}
            while time.monotonic() - started < 1200:
                states = dict(db.execute("SELECT state, count(*) FROM migrations_ui_migrationjob GROUP BY state"))
                if states.get("succeeded", 0) + states.get("failed", 0) + states.get("cancelled", 0) == JOBS:
                    break
                assert all(w.poll() is None for w in workers), "a worker exited"
                time.sleep(1)
            elapsed = time.monotonic() - started
            print(f"{JOBS} jobs on {WORKERS} workers: submitted in {submitted:.0f} s, all ended after {elapsed:.0f} s")
            failures = list(
                db.execute(
                    "SELECT id, step, error_code, error_message FROM migrations_ui_migrationjob"
                    " WHERE state <> 'succeeded' LIMIT 5"
                )
            )
            assert states == {"succeeded": JOBS}, (states, failures, (tmp_path / "workers.log").read_text()[-3000:])

            runs = dict(
                db.execute(
                    "SELECT job_id, count(*) FROM migrations_ui_jobevent"
                    " WHERE kind = 'state' AND data->>'state' = 'running' GROUP BY job_id"
                )
            )
            by_worker = dict(db.execute("SELECT worker, count(*) FROM migrations_ui_migrationjob GROUP BY worker"))
            # The supervisor gives an admitted job a second task when the worker holding its first
            # sends no heartbeat for STALE_AFTER (it happens on a starved machine); each such task
            # is recorded, and turns up to find the job taken (each job still runs once, above).
            (requeued,) = db.execute("SELECT count(*) FROM migrations_ui_jobevent WHERE kind = 'requeued'").fetchone()
            tasks = db.execute(
                "SELECT status, jsonb_array_length(worker_ids::jsonb) FROM django_tasks_database_dbtaskresult"
                " WHERE task_path = 'migrations_ui.jobs.tasks.run_job'"
            ).fetchall()
            job_vms = {
                r[0]
                for r in db.execute(
                    "SELECT v.guid::text FROM migrations_ui_migrationjob j"
                    " JOIN fabric_virtualmachine v ON v.id = j.vm_id"
                )
            }
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        logs.close()

    assert len(runs) == JOBS and set(runs.values()) == {1}  # each job started running once
    assert len(by_worker) == WORKERS  # every worker took its share
    # Each task claimed by one worker; one task per job, besides the recorded requeues.
    assert len(tasks) == JOBS + requeued and set(tasks) == {("SUCCESSFUL", 1)}, (len(tasks), requeued)

    with FabricStore(tmp_path / "fabric.sqlite3", time_scale=SCALE).session() as fabric:
        migrations = list(fabric.migrations.values())
        limits = {fqdn: live_limit(fabric, h) for fqdn, h in fabric.hosts.items()}
        refused = [r for r in fabric.record if r.get("result") == "refused"]
    moves_per_vm: dict[str, int] = {}
    for m in migrations:
        moves_per_vm[m.vm_id] = moves_per_vm.get(m.vm_id, 0) + 1
    assert set(moves_per_vm) == job_vms and set(moves_per_vm.values()) == {1}  # one Move-VM per job
    assert all(m.state == "completed" for m in migrations)
    assert refused == []  # Hyper-V never had to refuse an over-limit move
    peak = peak_concurrency(migrations)
    over = {fqdn: (n, limits[fqdn]) for fqdn, n in peak.items() if n > limits[fqdn]}
    assert over == {}
