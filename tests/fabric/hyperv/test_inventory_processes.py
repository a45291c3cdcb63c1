"""Inventories read by a helper process: the answers read here would give, in order; a helper that dies
during a read costs no host; a sync of many hosts shares its hosts with a helper."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from fabric.driver import get_driver
from fabric.hyperv import inventory_processes
from fabric.hyperv.api import Connection, HostInventory, HostUnreachable
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions
from fabric.models import Host, VirtualMachine
from fabric.sync import sync_inventory
from tests.fabric.conftest import FAST
from tests.fabric.hyperv.test_embedded_psrp import psrp_settings  # noqa: F401 - the fixture
from tests.served import REPO, alive, free_port, gone_within

D = ".contoso.test"


@pytest.fixture(autouse=True)
def no_helpers_left():
    yield
    inventory_processes.close()


def fqdns_read_here(driver: PsrpDriver) -> set[str]:
    return {session.conn.fqdn for session in driver._sessions.values()}


def test_a_helper_reads_its_share_and_every_answer_comes_back_in_order(conns, emulator):
    hosts = sorted(conns.values(), key=lambda c: c.fqdn)
    emulator.stop_host("hv-s3" + D)
    shared_driver, here_driver = PsrpDriver(FAST), PsrpDriver(FAST)
    try:
        shared = inventory_processes.read_inventories(shared_driver, hosts, 4, helpers=1)
        here = inventory_processes.read_here(here_driver.inventory, hosts, 4)

        assert [type(r) for r in shared] == [type(r) for r in here]
        for mine, theirs in zip(shared, here, strict=True):
            if isinstance(mine, HostUnreachable):  # the error as raised in the helper, fields and all
                assert (mine.fqdn, mine.code, mine.reason) == (theirs.fqdn, theirs.code, theirs.reason)
            else:
                assert mine == theirs
        assert fqdns_read_here(shared_driver) == {c.fqdn for c in hosts[0::2]}  # the rest by the helper
        assert len(inventory_processes.helper_pids()) == 1
    finally:
        shared_driver.close()
        here_driver.close()


def test_a_helper_killed_during_a_read_has_its_hosts_read_here(conns, emulator):
    hosts = sorted(conns.values(), key=lambda c: c.fqdn)
    driver = PsrpDriver(FAST)
    try:
        inventory_processes.read_inventories(driver, hosts, 8, helpers=1)  # the helper starts
        [pid] = inventory_processes.helper_pids()
        emulator.side.latency = 0.03  # 0.86 s a host measured: the helper is killed during its read
        threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
        started = time.monotonic()

        results = inventory_processes.read_inventories(driver, hosts, 8, helpers=1)

        assert time.monotonic() - started > 0.3  # the kill came during the read
        assert all(isinstance(r, HostInventory) for r in results)
        assert [r.host.fqdn for r in results] == [c.fqdn for c in hosts]
        assert fqdns_read_here(driver) == {c.fqdn for c in hosts}
        emulator.side.latency = 0
        inventory_processes.read_inventories(driver, hosts, 8, helpers=1)  # a new helper for the next one
        assert inventory_processes.helper_pids() and pid not in inventory_processes.helper_pids()
    finally:
        driver.close()


@pytest.mark.django_db
def test_a_sync_of_many_hosts_shares_them_with_a_helper(psrp_settings, emulator, monkeypatch):  # noqa: F811
    psrp_settings.INVENTORY_SYNC_PROCESSES = 2
    monkeypatch.setattr("fabric.sync.HELPERS_FROM", 4)  # the demo's 9 hosts count as many
    emulator.stop_host("hv-s3" + D)

    report = sync_inventory(get_driver())

    assert len(inventory_processes.helper_pids()) == 1
    assert len(report.synced) == 8 and list(report.unreachable) == ["hv-s3" + D]
    down = Host.objects.get(fqdn="hv-s3" + D)
    assert not down.reachable and "hv-s3.contoso.test is unreachable" in down.last_error
    assert Host.objects.filter(reachable=True).count() == 8
    assert VirtualMachine.objects.get(name="ops-s401").host.name == "hv-s4"
    assert fqdns_read_here(get_driver()) < {h.fqdn for h in Host.objects.all()}


def test_stopping_the_helpers_does_not_wait_on_one_reading_a_host_that_never_answers(monkeypatch):
    silent = socket.socket()  # listens and never accepts: a connection is made, no answer ever comes
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    driver = PsrpDriver(PsrpOptions(allow_basic_http=True, connect_timeout=1, read_timeout=8, operation_timeout=4))
    hosts = [Connection(f"silent{i}" + D, "127.0.0.1", port, "http", "basic", "u", "p") for i in range(2)]
    monkeypatch.setattr(inventory_processes, "CLOSE_WAIT_S", 0.5)
    monkeypatch.setattr(inventory_processes, "EXIT_WAIT_S", 0.5)
    try:
        reading = threading.Thread(
            target=inventory_processes.read_inventories, args=(driver, hosts, 2, 1), daemon=True
        )  # its own share waits out the read timeout here; the helper's share waits in the helper
        reading.start()
        deadline = time.monotonic() + 10
        while not inventory_processes.helper_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        [pid] = inventory_processes.helper_pids()
        time.sleep(0.5)  # the helper is in its read now

        started = time.monotonic()
        inventory_processes.close()

        assert time.monotonic() - started < 5  # not the 8 s the helper's read would take
        assert gone_within(pid, 3)
    finally:
        silent.close()
        driver.close()


PARENT = """
import os, sys, time
from fabric.hyperv import inventory_processes
from fabric.hyperv.api import Connection
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions

driver = PsrpDriver(PsrpOptions(allow_basic_http=True, connect_timeout=1, read_timeout=2, operation_timeout=1))
closed = Connection("closed.contoso.test", "127.0.0.1", int(sys.argv[1]), "http", "basic", "u", "p")
inventory_processes.read_inventories(driver, [closed, closed], 2, helpers=1)
print(inventory_processes.helper_pids()[0], flush=True)
time.sleep(120)
"""


def test_a_helper_does_not_outlive_a_worker_that_was_killed(tmp_path):
    environ = {**os.environ, "CONSOLE_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "console.settings"}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(free_port())], cwd=REPO, env=environ, stdout=subprocess.PIPE, text=True
    )
    try:
        helper = int(parent.stdout.readline())
        assert alive(helper)
        parent.send_signal(signal.SIGKILL)  # no atexit, no close(): the helper must notice by itself
        parent.wait(timeout=10)
        assert gone_within(helper, 10)
    finally:
        parent.kill()
        parent.wait()
