"""Fault injection against the whole console as an operator runs it: `serve` with the host emulator
(the psrp driver over WinRM), job workers started beside it, moves submitted through manage.py.
While the moves run, seeded SIGKILLs hit the workers at random moments and the emulator is frozen
(SIGSTOP) for longer than both the heartbeat timeout and the driver's read timeout. Afterwards the
records must tell the truth: every job ends in the state the emulator's own record shows, no job
asked for its move twice, no contradictory audit rows, no host above its limit in either record."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime

import pytest

from fabric.sim.checks import live_limit
from fabric.sim.store import FabricStore
from migrations_ui.jobs.runner import STALE_AFTER
from tests.migrations_ui.jobs.test_workers import max_concurrent
from tests.served import REPO, Served

pytestmark = pytest.mark.slow

SEED = 20261205
SCALE = 2  # simulated seconds per wall second: demo moves take several seconds, so kills land mid-move
READ_TIMEOUT = 12  # the driver's read timeout (the least the settings allow)
FREEZE_S = 40  # longer than STALE_AFTER and than two read timeouts (a lost pipeline, then a job read)
KILLS = 24
WORKERS = 3
MOVES = [  # each VM moves once; several share hv-s1 / hv-s2 (limit 2), one leaves its cluster
    ("file-s01", "hv-s2"),
    ("app-s01", "hv-s2"),
    ("web-dmz01", "hv-s2"),
    ("ci-runner01", "hv-s1"),
    ("web-dmz02", "hv-s1"),
    ("dc01", "hv-s1"),
    ("analytics01", "hv-s1"),
    ("sql-fc1", "hv-new1"),
    ("api-01", "hv-new2"),
    ("jump-01", "hv-new3"),
    ("erp-app02", "hv-new1"),
]
FINAL = {"succeeded", "failed", "cancelled"}


class Fleet:
    """Job workers run beside `serve --workers 0`, so the test can kill and replace them at will."""

    def __init__(self, served: Served):
        self.served = served
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        argv = [sys.executable, str(REPO / "manage.py"), "job_worker", "--no-reload", "-v0"]
        self.procs.append(
            subprocess.Popen(argv, cwd=REPO, env=self.served.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def kill_one(self, rng: random.Random) -> None:
        victim = rng.choice(self.alive())
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        self.start()

    def stop(self) -> None:
        for proc in self.alive():
            proc.kill()
            proc.wait(10)


def rows(db: sqlite3.Connection, sql: str, *args) -> list[tuple]:
    return db.execute(sql, args).fetchall()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def console(tmp_path):
    env = {"SIM_TIME_SCALE": str(SCALE), "HYPERV_READ_TIMEOUT": str(READ_TIMEOUT)}
    served = Served(tmp_path, workers=0, env=env, args=("--stop-timeout", "3"))
    fleet = Fleet(served)
    try:
        served.wait_until_running()
        yield served, fleet
    finally:
        fleet.stop()
        served.stop()


def test_frozen_hosts_and_killed_workers_leave_records_that_tell_the_truth(console):
    served, fleet = console
    rng = random.Random(SEED)
    for _ in range(WORKERS):
        fleet.start()
    for vm, to in MOVES:
        json.loads(served.manage("move_vm", vm, "--to", to, "--json"))
    emulator = served.child_pids()["emulator"]
    assert max(STALE_AFTER.total_seconds(), READ_TIMEOUT) < FREEZE_S

    # Half the kills while the first moves run, the freeze once a move is in flight, the rest while
    # the queue drains and the unknown jobs are asked again. No kills during the freeze: a worker
    # must live through a read timeout there for the freeze to leave a job unknown (with kills every
    # second, recovery only asks once the freeze is over).
    kill_some(fleet, rng, KILLS // 2)
    wait_for_a_move_in_flight(served, timeout=120)
    os.kill(emulator, signal.SIGSTOP)
    time.sleep(FREEZE_S)
    os.kill(emulator, signal.SIGCONT)
    kill_some(fleet, rng, KILLS - KILLS // 2)

    db = sqlite3.connect(served.data_dir / "db.sqlite3", timeout=30)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = dict(rows(db, "SELECT id, state FROM migrations_ui_migrationjob"))
        if set(states.values()) <= FINAL:
            break
        time.sleep(1)
    assert set(states.values()) <= FINAL, f"jobs not ended: {states}"
    fleet.stop()

    jobs = rows(
        db,
        "SELECT j.id, j.vm_name, j.state, s.fqdn, d.fqdn, v.guid FROM migrations_ui_migrationjob j "
        "JOIN fabric_host s ON s.id = j.source_id JOIN fabric_host d ON d.id = j.destination_id "
        "JOIN fabric_virtualmachine v ON v.id = j.vm_id",
    )
    assert len(jobs) == len(MOVES)
    store = FabricStore(served.data_dir / "fabric.sqlite3", time_scale=SCALE)
    try:
        with store.session() as fabric:
            check_states_match_the_emulator(jobs, fabric)
            check_no_host_above_its_limit(db, fabric)
    finally:
        store.close()
    check_one_move_request_each(db)
    check_audit_rows_agree(db, jobs)
    assert served.manage("verify_audit").startswith("audit trail intact")
    # The faults bit: workers died holding jobs, and moves were under way when the hosts froze.
    kinds = Counter(kind for (kind,) in rows(db, "SELECT kind FROM migrations_ui_jobevent"))
    unknown = rows(db, "SELECT COUNT(*) FROM migrations_ui_jobevent WHERE kind = 'state' AND data LIKE '%unknown%'")
    print("final states:", Counter(state for _, _, state, *_ in jobs), "events:", dict(kinds), "unknown:", unknown)
    assert kinds["worker_lost"] >= 1 and unknown[0][0] >= 1


def kill_some(fleet: Fleet, rng: random.Random, n: int) -> None:
    for _ in range(n):
        time.sleep(rng.uniform(0.3, 1.6))
        fleet.kill_one(rng)


def wait_for_a_move_in_flight(served: Served, timeout: float) -> None:
    """Until a job follows a move the host has started and not yet ended."""
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(served.data_dir / "db.sqlite3", timeout=30)
    in_flight = (
        "SELECT 1 FROM migrations_ui_migrationjob WHERE state = 'running' AND host_migration_id <> ''"
        " AND slots_released_at IS NULL LIMIT 1"
    )
    try:
        while not rows(db, in_flight):
            assert time.monotonic() < deadline, f"no move in flight within {timeout} s"
            time.sleep(0.1)
    finally:
        db.close()


def check_states_match_the_emulator(jobs, fabric) -> None:
    for pk, name, state, source, destination, _ in jobs:
        vm = fabric.vm_by_name(name)
        completed = [m for m in fabric.migrations.values() if m.vm_id == vm.id and m.state == "completed"]
        moves = [r for r in fabric.record if r["cmdlet"] == "Move-VM" and vm.id in str(r)]
        assert len(moves) <= 1, f"job {pk} ({name}): Move-VM sent {len(moves)} times: {moves}"
        if state == "succeeded":
            assert vm.host == destination and len(completed) == 1, f"job {pk} ({name}) succeeded, VM on {vm.host}"
        else:
            assert vm.host == source and not completed, f"job {pk} ({name}) {state}, VM on {vm.host}"


def check_one_move_request_each(db) -> None:
    requests = rows(
        db, "SELECT job_id, COUNT(*) FROM migrations_ui_jobevent WHERE kind = 'move_requested' GROUP BY job_id"
    )
    assert all(n == 1 for _, n in requests), requests


def check_audit_rows_agree(db, jobs) -> None:
    ends = {"migration.succeeded": "succeeded", "migration.failed": "failed", "migration.cancelled": "cancelled"}
    for pk, name, state, *_ in jobs:
        actions = [
            a for (a,) in rows(db, "SELECT action FROM audit_auditevent WHERE json_extract(details, '$.job') = ?", pk)
        ]
        final = [ends[a] for a in actions if a in ends]
        assert final == [state], f"job {pk} ({name}) is {state}; its audit rows say {actions}"


def check_no_host_above_its_limit(db, fabric) -> None:
    peak = max_concurrent(fabric)
    for fqdn, n in peak.items():
        assert n <= live_limit(fabric, fabric.hosts[fqdn]), f"the emulator ran {n} moves at once on {fqdn}"
    # The console's record: a job holds its hosts' live slots from its admission to the end of its
    # move on the host (or its end, if the move never ended there).
    held = []
    for pk, source, destination in rows(
        db,
        "SELECT j.id, s.fqdn, d.fqdn FROM migrations_ui_migrationjob j "
        "JOIN fabric_host s ON s.id = j.source_id JOIN fabric_host d ON d.id = j.destination_id",
    ):
        events = rows(db, "SELECT time, kind, data FROM migrations_ui_jobevent WHERE job_id = ? ORDER BY sequence", pk)
        start = end = None
        for time_, kind, data in events:
            data = json.loads(data)
            if start is None and kind == "state" and data.get("state") == "admitted":
                start = when(time_)
            released = kind == "step" and data.get("step") == "move" and data.get("done")
            if start and end is None and (released or (kind == "state" and data.get("state") in FINAL)):
                end = when(time_)
        if start:
            held += [(start, 1, h) for h in {source, destination}] + [(end, -1, h) for h in {source, destination}]
    running = Counter()
    for _, delta, fqdn in sorted(held, key=lambda e: (e[0], e[1])):
        running[fqdn] += delta
        assert running[fqdn] <= live_limit(fabric, fabric.hosts[fqdn]), f"the console held {running[fqdn]} on {fqdn}"
