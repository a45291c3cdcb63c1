"""Fixtures for tests that talk to the Hyper-V host emulator over real sockets (emu_* and emulator)."""

from __future__ import annotations

import pytest
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from fabric.emulator import build_emulator
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore

USER, PASSWORD = "hv-admin", "emulator-pass-1"
SCALE = 40.0  # simulated seconds per wall second: demo moves take a second or two
# The pypsrp driver against the emulator: Basic over HTTP allowed (the emulator's fixture allows it),
# short timeouts so a refused or frozen host fails a test quickly.
FAST = PsrpOptions(allow_basic_http=True, connect_timeout=2, read_timeout=6, operation_timeout=4, start_timeout=20)


@pytest.fixture
def emu_fabric_path(tmp_path):
    path = tmp_path / "fabric.sqlite3"
    store = FabricStore(path, time_scale=SCALE)
    store.create(build_demo_fabric())
    store.close()
    return path


@pytest.fixture
def emu_store(emu_fabric_path):
    store = FabricStore(emu_fabric_path, time_scale=SCALE)
    yield store
    store.close()


@pytest.fixture
def emulator(emu_fabric_path):
    emulator = build_emulator(
        FabricStore(emu_fabric_path, time_scale=SCALE),
        username=USER,
        password=PASSWORD,
        free_ports=True,
        progress_interval=0.05,
        allow_basic_http=True,  # the tests' Basic logons over HTTP, explicitly allowed as the demo does
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


def open_pool(emulator, fqdn: str, user: str = USER, password: str = PASSWORD, auth="basic", **kw) -> RunspacePool:
    """A pool logged on with Basic (over HTTP: the fixture allows it), or with CredSSP (NTLM inside,
    messages encrypted), which the cluster cmdlets need."""
    address, port = emulator.address(fqdn)
    if auth == "credssp":
        kw.setdefault("credssp_auth_mechanism", "ntlm")
    wsman = WSMan(
        address,
        port=port,
        username=user,
        password=password,
        ssl=False,
        auth=auth,
        encryption="never" if auth == "basic" else "auto",
        connection_timeout=3,
        read_timeout=10,
        operation_timeout=5,
        **kw,
    )
    pool = RunspacePool(wsman)
    pool.open()
    return pool


@pytest.fixture
def driver():
    driver = PsrpDriver(FAST)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def conns(emulator, emu_store):
    with emu_store.session() as fabric:
        return {c.fqdn.split(".")[0]: c for c in fabric.connections(username=USER, password=PASSWORD)}
