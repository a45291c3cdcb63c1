"""Logons as deployments use them, against the emulator: NTLM and Kerberos (tickets from a real MIT
KDC) with WinRM message encryption over HTTP, CredSSP, Basic only where allowed, and the cluster
cmdlets that need CredSSP, from pypsrp directly and through the driver."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import threading
import time

import pytest
import spnego
from django.utils import translation
from pypsrp.exceptions import WinRMTransportError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from fabric.emulator import build_emulator
from fabric.emulator.auth import (
    Authenticator,
    ConnectionAuth,
    WinRMService,
    channel_bindings,
    register_account,
    unregister_account,
)
from fabric.emulator.tls import ensure_certificates
from fabric.hyperv.api import Connection, HyperVError, MoveRequest
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore
from tests.conftest import need
from tests.fabric.conftest import PASSWORD, SCALE, USER, open_pool
from tests.fabric.kdc import REALM, Kdc, missing

D = ".contoso.test"
# Basic is not allowed over HTTP here: every logon below is one a real host accepts on port 5985.
OPTIONS = PsrpOptions(connect_timeout=2, read_timeout=6, operation_timeout=4, start_timeout=20)


@pytest.fixture
def strict(emu_fabric_path):
    """An emulator whose hosts keep Windows' default AllowUnencrypted=false."""
    emulator = build_emulator(
        FabricStore(emu_fabric_path, time_scale=SCALE),
        username=USER,
        password=PASSWORD,
        free_ports=True,
        progress_interval=0.05,
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def driver():
    driver = PsrpDriver(OPTIONS)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    absent = missing()
    need(not absent, "an MIT Kerberos KDC and python-gssapi (" + ", ".join(absent) + ")")
    hosts = [host.fqdn for host in build_demo_fabric().hosts.values()]
    with Kdc.start(tmp_path_factory.mktemp("kdc"), hosts, {USER: PASSWORD}) as kdc:
        yield kdc


def connection(emulator, name: str, auth: str, username: str = USER, password: str = PASSWORD) -> Connection:
    address, port = emulator.address(name + D)
    return Connection(name + D, address, port, "http", auth, username, password)


def shell_auths(emulator, name: str) -> set[str]:
    return {shell.auth for shell in emulator.endpoints[name + D].shells.values()}


def vm_of(store, name: str) -> tuple[str, str]:
    with store.session() as fabric:
        vm = fabric.vm_by_name(name)
        return vm.id, vm.host


class Recorder:
    """A TCP relay in front of one endpoint that keeps every byte each way (what a sniffer sees)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.sent = bytearray()
        self.received = bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target)
                threading.Thread(target=self._pipe, args=(client, upstream, self.sent), daemon=True).start()
                threading.Thread(target=self._pipe, args=(upstream, client, self.received), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, seen: bytearray) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                seen.extend(data)
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.server.close()


# --- NTLM and message encryption -------------------------------------------------------------------


def test_an_ntlm_logon_over_http_encrypts_every_message(strict, driver):
    address, port = strict.address("hv-s1" + D)
    relay = Recorder((address, port))
    try:
        conn = Connection("hv-s1" + D, "127.0.0.1", relay.port, "http", "ntlm", USER, PASSWORD)
        inventory = driver.inventory(conn)
    finally:
        relay.close()

    assert inventory.host.name == "hv-s1"
    assert shell_auths(strict, "hv-s1") == {"ntlm"}
    assert driver.session(conn).negotiated == "ntlm"  # what check_host reports
    assert b"HTTP-SPNEGO-session-encrypted" in relay.sent and b"HTTP-SPNEGO-session-encrypted" in relay.received
    # Neither the requests (SOAP envelopes, the cmdlets' PSRP messages) nor the answers (the VMs)
    # cross the wire readable.
    for wire in (relay.sent, relay.received):
        assert b"Envelope" not in wire
        assert b"http://schemas.xmlsoap.org/ws/2004/09/transfer" not in wire
    assert b"Get-VMHost" not in relay.sent
    assert b"app-s01" not in relay.received


def test_an_unencrypted_message_after_an_ntlm_logon_is_refused_over_http(strict):
    address, port = strict.address("hv-s1" + D)
    wsman = WSMan(address, port=port, username=USER, password=PASSWORD, ssl=False, auth="ntlm", encryption="never")

    with pytest.raises(WinRMTransportError) as info:
        RunspacePool(wsman).open()

    assert info.value.code == 500  # as Windows with AllowUnencrypted=false


def test_a_wrong_password_is_refused_with_the_drivers_clear_error(strict, driver):
    for auth in ("ntlm", "negotiate", "credssp"):
        with pytest.raises(HyperVError) as info:
            driver.inventory(connection(strict, "hv-s1", auth, password="not-the-password"))

        assert info.value.code == "AccessDenied", auth
        assert f"hv-s1{D} refused the WinRM credentials ({auth})" in info.value.message
        assert "not-the-password" not in str(info.value)
    assert shell_auths(strict, "hv-s1") == set()


# --- Basic -------------------------------------------------------------------------------------------


def test_basic_over_http_is_refused_unless_allowed(strict, emulator):
    allowing = PsrpDriver(PsrpOptions(allow_basic_http=True, connect_timeout=2, read_timeout=6, operation_timeout=4))
    try:
        with pytest.raises(HyperVError) as info:
            allowing.inventory(connection(strict, "hv-s1", "basic"))
        assert info.value.code == "AccessDenied"

        # The same logon on a host that allows it (AllowUnencrypted, the demo's explicit allowance).
        assert allowing.inventory(connection(emulator, "hv-s1", "basic")).host.name == "hv-s1"
        assert shell_auths(emulator, "hv-s1") == {"basic"}
    finally:
        allowing.close()


def test_basic_over_https_is_accepted_without_the_allowance(emu_fabric_path, tmp_path):
    emulator = build_emulator(
        FabricStore(emu_fabric_path, time_scale=SCALE),
        username=USER,
        password=PASSWORD,
        https=True,
        cert_dir=tmp_path / "tls",
        free_ports=True,
        hosts=["hv-s1" + D],
    )
    emulator.start()
    driver = PsrpDriver(PsrpOptions(cert_validation=str(tmp_path / "tls" / "ca.pem"), connect_timeout=2))
    try:
        address, port = emulator.address("hv-s1" + D)
        conn = Connection("hv-s1" + D, address, port, "https", "basic", USER, PASSWORD)
        assert driver.inventory(conn).host.name == "hv-s1"
    finally:
        driver.close()
        emulator.stop()


# --- CredSSP and the cluster cmdlets -----------------------------------------------------------------


def test_cluster_role_cmdlets_are_refused_without_credssp_and_run_with_it(emulator, emu_store):
    vm_id, _ = vm_of(emu_store, "sql-prod01")
    move = ("Move-ClusterVirtualMachineRole", {"VMId": vm_id, "Node": "hv-new2", "Wait": 0})

    refused = {}
    for auth in ("basic", "ntlm"):
        with open_pool(emulator, "hv-new1" + D, auth=auth) as pool:
            refused[auth] = invoke(pool, move)
    with open_pool(emulator, "hv-new1" + D, auth="credssp") as pool:
        accepted = invoke(pool, move)

    for ps in refused.values():
        [error] = ps.streams.error
        assert error.fq_error == (
            "Move-ClusterVirtualMachineRole,Microsoft.FailoverClusters.PowerShell.MoveClusterVirtualMachineRoleCommand"
        )
        assert "You do not have administrative privileges on the cluster" in str(error)
    assert not accepted.streams.error
    with emu_store.session() as fabric:
        assert fabric.migration_of_vm(vm_id) is not None  # only the CredSSP session started the move


def invoke(pool: RunspacePool, command: tuple[str, dict]) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(command[0])
    for name, value in command[1].items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


def test_a_credssp_logon_over_http_runs_in_credssp_session_encryption(strict, driver):
    address, port = strict.address("hv-s1" + D)
    relay = Recorder((address, port))
    try:
        conn = Connection("hv-s1" + D, "127.0.0.1", relay.port, "http", "credssp", USER, PASSWORD)
        assert driver.inventory(conn).host.name == "hv-s1"
    finally:
        relay.close()

    assert shell_auths(strict, "hv-s1") == {"credssp"}
    assert driver.session(conn).negotiated == "credssp"
    assert b"Authorization: CredSSP " in relay.sent
    assert b"HTTP-CredSSP-session-encrypted" in relay.sent and b"Envelope" not in relay.sent


def test_the_driver_moves_a_clustered_vm_over_credssp_with_an_ntlm_credential(strict, driver, emu_store):
    vm_id, source = vm_of(emu_store, "sql-prod01")
    conn = connection(strict, source.split(".")[0], "ntlm")

    assert moved(driver, conn, MoveRequest(vm_id, source, "hv-new3" + D, "live")) == "completed"

    # Inventory and Get-VM ran on the NTLM session, the cluster cmdlet on a CredSSP one, same account.
    assert shell_auths(strict, source.split(".")[0]) == {"ntlm", "credssp"}
    with emu_store.session() as fabric:
        started = [r["cmdlet"] for r in fabric.record if r.get("result") == "started"]
    assert started == ["Move-ClusterVirtualMachineRole"]
    assert vm_of(emu_store, "sql-prod01")[1] == "hv-new3" + D


def moved(driver, conn, request: MoveRequest, timeout: float = 60) -> str:
    migration = driver.start_migration(conn, request)
    deadline = time.monotonic() + timeout
    while (state := driver.migration_status(conn, migration).state) == "running":
        assert time.monotonic() < deadline, "the move did not end"
        time.sleep(0.05)
    return state


def test_the_driver_says_what_to_configure_when_a_host_refuses_credssp(strict, driver, emu_store):
    vm_id, source = vm_of(emu_store, "sql-prod01")
    strict.configure(source, credssp=False)  # Disable-WSManCredSSP -Role Server
    conn = connection(strict, source.split(".")[0], "ntlm")

    with pytest.raises(HyperVError) as info:
        driver.start_migration(conn, MoveRequest(vm_id, source, "hv-new3" + D, "live"))

    assert info.value.code == "CredSSPNotEnabled"
    assert "Enable-WSManCredSSP -Role Server" in info.value.remedy
    assert "set its authentication to CredSSP" in info.value.remedy
    with translation.override("de"):  # a job page shows the stored remedy in the reader's language
        assert translation.gettext(info.value.remedy).startswith("Auf jedem Clusterknoten Enable-WSManCredSSP")
    assert not [c for c in strict.commands() if c["cmdlet"] == "Move-ClusterVirtualMachineRole"]


def test_a_credential_without_a_password_cannot_delegate_and_the_driver_says_so(driver):
    # A Kerberos ticket from the operator's cache has no password CredSSP could hand on.
    conn = Connection("hv-old1" + D, "127.0.0.1", 9, "http", "kerberos", "", "")

    with pytest.raises(HyperVError) as info:
        driver.add_cluster_role(conn, "00000000-0000-0000-0000-000000000000")

    assert info.value.code == "CredSSPRequired"
    assert "Enable-WSManCredSSP -Role Server" in info.value.remedy


# --- Kerberos with a real KDC ------------------------------------------------------------------------


def test_a_kerberos_logon_uses_a_ticket_from_the_kdc_for_http_fqdn(kdc, strict, driver):
    conn = connection(strict, "hv-s2", "kerberos", username=f"{USER}@{REALM}")

    assert driver.inventory(conn).host.name == "hv-s2"

    assert shell_auths(strict, "hv-s2") == {"kerberos"}
    # The KDC issued the ticket for the host's service principal: Kerberos really ran.
    assert f"{USER}@{REALM} for HTTP/hv-s2{D}@{REALM}" in kdc.log


def test_negotiate_picks_kerberos_when_the_kdc_gives_a_ticket(kdc, strict, driver):
    conn = connection(strict, "hv-s3", "negotiate", username=f"{USER}@{REALM}")

    assert driver.inventory(conn).host.name == "hv-s3"
    assert shell_auths(strict, "hv-s3") == {"kerberos"}
    assert driver.session(conn).negotiated == "kerberos"


def test_a_kerberos_logon_from_the_ticket_cache_needs_no_password(kdc, strict, driver):
    kdc.kinit(USER, PASSWORD)  # what an operator (or a keytab job) does before the console runs
    conn = connection(strict, "hv-s1", "kerberos", username="", password="")

    assert driver.inventory(conn).host.name == "hv-s1"
    assert shell_auths(strict, "hv-s1") == {"kerberos"}


def test_a_kerberos_logon_for_an_unknown_principal_is_refused(kdc, strict, driver):
    conn = connection(strict, "hv-s1", "kerberos", username=f"nobody@{REALM}", password="whatever")

    with pytest.raises(HyperVError) as info:
        driver.inventory(conn)

    assert info.value.code == "AccessDenied"
    assert shell_auths(strict, "hv-s1") == set()


def test_a_kerberos_session_still_moves_clustered_vms_over_credssp(kdc, strict, driver, emu_store):
    vm_id, source = vm_of(emu_store, "sql-prod01")
    conn = connection(strict, source.split(".")[0], "kerberos", username=f"{USER}@{REALM}")

    assert moved(driver, conn, MoveRequest(vm_id, source, "hv-new3" + D, "live")) == "completed"

    # CredSSP with the Kerberos credential's account and password (inside it NTLM: the address dialled
    # has no service principal), the account known as user@realm on the domain's hosts.
    assert shell_auths(strict, source.split(".")[0]) == {"kerberos", "credssp"}


def test_credssp_encryption_carries_half_a_megabyte_in_16_kb_chunks(emulator):
    # CredSSP encrypts at most 16 KB per TLS record: larger messages travel as multipart/x-multi-encrypted.
    with open_pool(emulator, "hv-s1" + D, auth="credssp", max_envelope_size=512000) as pool:
        ps = invoke(pool, ("Get-VM", {"Name": "x" * 300_000}))

    assert not ps.had_errors
    assert ps.streams.error[0].fq_error.startswith("InvalidParameter")


def test_a_negotiate_logon_over_https_is_bound_to_the_hosts_certificate(tmp_path):
    def der(folder):
        _, cert, _ = ensure_certificates(tmp_path / folder, ["hv-s1" + D], ["127.0.0.1"])
        return ssl.PEM_cert_to_DER_cert(cert.read_text())

    host = Authenticator("hv-s1" + D, USER, PASSWORD, WinRMService(), https=True, bindings=channel_bindings(der("a")))

    def logon(bindings) -> int:
        client = spnego.client(USER, PASSWORD, hostname="hv-s1" + D, protocol="ntlm", channel_bindings=bindings)
        state, token = ConnectionAuth(), client.step()
        while True:
            outcome = host.authenticate(state, "Negotiate " + base64.b64encode(token).decode(), "", b"")
            answer = [v for _, v in outcome.headers if v.startswith("Negotiate ")]
            if outcome.status != 401 or not answer:
                return outcome.status
            token = client.step(base64.b64decode(answer[0].split(" ", 1)[1]))

    register_account(USER, PASSWORD)  # what a running emulator does for its account
    try:
        assert logon(channel_bindings(der("a"))) == 200
        # A client that binds nothing is refused, as with CbtHardeningLevel=Strict (Windows' default,
        # Relaxed, would let it in; pyspnego's NTLM acceptor cannot): pypsrp always binds over HTTPS.
        assert logon(None) == 401
        assert logon(channel_bindings(der("b"))) == 401  # bound to another certificate: a relay
    finally:
        unregister_account(USER, PASSWORD)
