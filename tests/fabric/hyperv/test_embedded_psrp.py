"""The embedded default through the real path: inventory sync and moves over WinRM to the emulator."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fabric.driver import get_driver
from fabric.models import Host, VirtualMachine
from fabric.sim.demo import INJECTION_NAME
from fabric.sim.store import FabricStore
from fabric.sync import sync_inventory
from tests.fabric.conftest import PASSWORD, USER

REPO = Path(__file__).resolve().parents[3]
D = ".contoso.test"


@pytest.fixture
def psrp_settings(settings, emulator, emu_store, monkeypatch):
    settings.HYPERV_DRIVER = "psrp"
    settings.HYPERV_EMULATOR = True
    settings.HYPERV_EMULATOR_USER, settings.HYPERV_EMULATOR_PASSWORD = USER, PASSWORD
    settings.HYPERV_ALLOW_BASIC_HTTP = True
    settings.HYPERV_CONNECT_TIMEOUT, settings.HYPERV_READ_TIMEOUT = 2, 12
    with emu_store.session() as fabric:
        for conn in fabric.connections():
            Host.objects.create(
                fqdn=conn.fqdn, name=conn.fqdn.split(".")[0], address=conn.address, port=conn.port, transport="http"
            )
    yield settings
    get_driver().close()


@pytest.mark.django_db
def test_sync_reaches_every_host_over_winrm_and_names_the_one_that_is_down(psrp_settings, emulator):
    emulator.stop_host("hv-s3" + D)

    report = sync_inventory(get_driver())

    assert len(report.synced) == 8
    down = Host.objects.get(fqdn="hv-s3" + D)
    assert not down.reachable
    assert "hv-s3.contoso.test is unreachable: connection refused" in down.last_error
    assert Host.objects.filter(reachable=True).count() == 8
    # Standalone, with the FailoverClusters module (hv-s1) and without it (hv-s4): reachable, no cluster.
    for name in ("hv-s1", "hv-s4"):
        standalone = Host.objects.get(name=name)
        assert standalone.reachable and standalone.cluster is None and standalone.last_error == ""
    assert VirtualMachine.objects.get(name="ops-s401").host.name == "hv-s4"
    assert VirtualMachine.objects.get(name=INJECTION_NAME).host.fqdn == "hv-s1" + D


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_runs_the_emulator_and_migrates_through_pypsrp(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPERV_", "DATABASE_URL", "REDIS_URL"))}
    env.update(CONSOLE_DATA_DIR=str(tmp_path), SIM_TIME_SCALE="20", PYTHONUNBUFFERED="1")
    lines: list[str] = []
    served = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "serve", "--port", str(_free_port()), "--workers", "1"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in served.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any("Console running at" in line for line in lines):
            assert served.poll() is None and time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.2)
        output = "\n".join(lines)
        assert "Started emulator" in output
        assert re.search(r"Registered 9 hosts; synced 9, \d+ VMs", output), output

        moved = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "move_vm", INJECTION_NAME, "--to", "hv-s2", "--wait", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        job = json.loads(moved.stdout[moved.stdout.index("{") :])
        assert (job["state"], job["vm"], job["destination"]) == ("succeeded", INJECTION_NAME, "hv-s2" + D)

        # A move inside a cluster goes as Move-ClusterVirtualMachineRole, which the emulated hosts run
        # only on a CredSSP logon: the demo's driver opens one with the emulator's account.
        clustered = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), "move_vm", "sql-prod01", "--to", "hv-new3", "--wait", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert clustered.returncode == 0, clustered.stdout + clustered.stderr
        assert json.loads(clustered.stdout[clustered.stdout.index("{") :])["state"] == "succeeded"

        store = FabricStore(tmp_path / "fabric.sqlite3", time_scale=20)
        with store.session() as fabric:
            assert fabric.vm_by_name("sql-prod01").host == "hv-new3" + D
            assert [r["cmdlet"] for r in fabric.record if r.get("result") == "started"][-1] == (
                "Move-ClusterVirtualMachineRole"
            )
            moves = [r for r in fabric.record if r["cmdlet"] == "Move-VM"]
            assert fabric.vm_by_name(INJECTION_NAME).host == "hv-s2" + D
        assert [m["params"]["Name"] for m in moves] == [INJECTION_NAME]
        assert moves[0]["params"]["DestinationHost"] == "hv-s2" + D
        assert "Get-VMHost" in {c["cmdlet"] for c in store.commands()}  # the sync came over WinRM too
        store.close()
    finally:
        if served.poll() is None:
            served.send_signal(signal.SIGTERM)
            try:
                served.wait(timeout=30)
            except subprocess.TimeoutExpired:
                served.kill()
                served.wait()
