"""The pypsrp driver against the Hyper-V host emulator over real sockets."""

import socket
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor

import pytest

from fabric.emulator import build_emulator
from fabric.hyperv.api import Connection, HostSettings, HostUnreachable, HyperVError, MoveRequest
from fabric.hyperv.psrp import PsrpDriver
from fabric.hyperv.psrp_session import PsrpOptions
from fabric.sim.demo import INJECTION_NAME
from fabric.sim.driver import SimDriver
from fabric.sim.store import FabricStore
from tests.fabric.conftest import FAST, PASSWORD, SCALE, USER

D = ".contoso.test"


def vm(store, name):
    with store.session() as fabric:
        found = fabric.vm_by_name(name)
        return found.id, found.host


def follow(driver, conn, migration_id, timeout=60):
    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = driver.migration_status(conn, migration_id)
        samples.append(status)
        if status.state != "running":
            return samples
        time.sleep(0.05)
    raise AssertionError("the move did not end")


def moves_recorded(store, vm_id=None):
    with store.session() as fabric:
        return [
            r
            for r in fabric.record
            if r["cmdlet"] in ("Move-VM", "Move-VMStorage", "Move-ClusterVirtualMachineRole")
            and r.get("result") == "started"
            and (vm_id is None or r["request"]["vm_id"] == vm_id)
        ]


def test_it_opens_one_pool_per_host_and_reuses_it(driver, conns, emulator):
    s3 = conns["hv-s3"]
    for _ in range(3):
        driver.inventory(s3)
    driver.get_vm(s3, "00000000-0000-0000-0000-000000000000")

    assert driver.session(s3).opened == 1
    assert len(emulator.endpoints["hv-s3" + D].shells) == 1


def test_its_inventory_is_what_the_simulator_driver_reads(driver, conns, emu_store):
    sim = SimDriver(FabricStore(emu_store.path, time_scale=SCALE))
    for conn in conns.values():
        assert driver.inventory(conn) == sim.inventory(conn)


def test_it_reads_several_hosts_in_parallel(driver, conns):
    with ThreadPoolExecutor(max_workers=8) as pool:
        inventories = list(pool.map(driver.inventory, conns.values()))

    assert sorted(i.host.fqdn for i in inventories) == sorted(c.fqdn for c in conns.values())
    assert sum(len(i.vms) for i in inventories) >= 40


def test_calls_to_one_host_from_many_threads_share_its_pool_safely(driver, conns):
    s1 = conns["hv-s1"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: len(driver.inventory(s1).vms), range(12)))

    assert len(set(results)) == 1
    assert driver.session(s1).opened == 1


def test_a_move_reports_progress_while_it_runs_and_is_issued_once(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "web-dmz02")
    s2, s1 = conns["hv-s2"], conns["hv-s1"]

    migration_id = driver.start_migration(s2, MoveRequest(vm_id, source, s1.fqdn, "live"))
    samples = follow(driver, s2, migration_id)

    running = [s.percent for s in samples if s.state == "running"]
    assert any(0 < p < 100 for p in running)
    assert running == sorted(running)
    assert samples[-1].state == "completed" and samples[-1].percent == 100
    assert samples[-1].bytes_sent > 0 and samples[-1].blackout_ms is not None
    assert driver.get_vm(s1, vm_id).name == "web-dmz02"
    assert driver.get_vm(s2, vm_id) is None
    [started] = moves_recorded(emu_store, vm_id)
    assert started["params"] == {"Name": "web-dmz02", "DestinationHost": s1.fqdn, "Passthru": True}


def test_the_injection_vm_moves_and_arrives_with_its_literal_name(driver, conns, emu_store, emulator):
    vm_id, source = vm(emu_store, INJECTION_NAME)
    s1, s2 = conns["hv-s1"], conns["hv-s2"]
    before = len(driver.inventory(s1).vms)

    migration_id = driver.start_migration(s1, MoveRequest(vm_id, source, s2.fqdn, "live"))
    assert follow(driver, s1, migration_id)[-1].state == "completed"

    [started] = moves_recorded(emu_store, vm_id)
    assert started["params"]["Name"] == INJECTION_NAME
    # The emulator logs a command when its pipeline ends, which can trail the host's job a little.
    deadline = time.monotonic() + 10
    while not emulator.commands("Move-VM") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c["params"]["Name"] for c in emulator.commands("Move-VM")] == [INJECTION_NAME]
    assert driver.get_vm(s2, vm_id).name == INJECTION_NAME
    assert len(driver.inventory(s1).vms) == before - 1  # nothing else on the host was touched


def test_a_refused_move_raises_the_hyperv_code_and_remedy_from_the_error_record(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "legacy-fax")
    request = MoveRequest(vm_id, source, "hv-new1" + D, "live")

    [incompatibility] = driver.compare(conns["hv-old1"], request)
    with pytest.raises(HyperVError) as info:
        driver.start_migration(conns["hv-old1"], request)

    assert (incompatibility.message_id, incompatibility.source) == (33012, "Network Adapter")
    assert incompatibility.message.startswith("Could not find Ethernet switch 'vSwitch-Legacy'")
    assert info.value.code == "33012"
    assert info.value.message.startswith("Could not find Ethernet switch")
    assert "switch" in info.value.remedy
    assert moves_recorded(emu_store, vm_id) == []


def test_a_failed_pipeline_raises_hyperv_error_too(driver, conns):
    with pytest.raises(HyperVError) as info:
        driver.session(conns["hv-s1"]).run([("Remove-VM", {"Name": "*"})])

    assert info.value.code == "CommandNotFoundException"
    assert "Remove-VM" in info.value.message


def test_a_failure_during_the_move_comes_back_as_the_status_error(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "ci-runner01")
    with emu_store.session() as fabric:
        fabric.inject_failure(vm_id, "network", at_percent=30)

    migration_id = driver.start_migration(conns["hv-s2"], MoveRequest(vm_id, source, "hv-s1" + D, "live"))
    final = follow(driver, conns["hv-s2"], migration_id)[-1]

    assert final.state == "failed"
    assert final.error.code == "0x8007274C"
    assert "6600" in final.error.remedy


def test_it_cancels_a_running_move_and_a_restarted_driver_finds_it(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "analytics01")  # 48 GiB: long enough to cancel
    s2 = conns["hv-s2"]
    migration_id = driver.start_migration(s2, MoveRequest(vm_id, source, "hv-s1" + D, "live"))

    restarted = PsrpDriver(FAST)  # a worker that died and came back: no pipeline, only the host's job
    try:
        found = restarted.find_migration(s2, vm_id)
        restarted.cancel_migration(s2, migration_id)
        status = restarted.migration_status(s2, migration_id)
        with pytest.raises(HyperVError) as again:
            restarted.cancel_migration(s2, migration_id)
    finally:
        restarted.close()

    assert (found.migration_id, found.state) == (migration_id, "running")
    assert status.state == "cancelled"
    assert again.value.code == "InvalidState"
    assert driver.get_vm(s2, vm_id) is not None  # still on its source
    with emu_store.session() as fabric:
        cancels = [r for r in fabric.record if r["cmdlet"] == "Invoke-CimMethod"]
    assert cancels[0]["params"]["MethodName"] == "RequestStateChange"
    assert cancels[0]["params"]["Arguments"] == {"RequestedState": 4}


def test_a_standalone_host_without_the_failover_clusters_module_is_standalone_not_unreachable(driver, conns, emu_store):
    # The usual standalone Hyper-V host: Get-Cluster and Get-ClusterNode do not exist there.
    with emu_store.session() as fabric:
        fabric.hosts["hv-s3" + D].failover_clustering_installed = False
        fabric.touch()
    s3 = conns["hv-s3"]
    vm_id, source = vm(emu_store, "backup01")
    request = MoveRequest(vm_id, source, "hv-s1" + D, "live_vsm", storage_path="\\\\fs01.contoso.test\\vms\\backup01")

    inventory = driver.inventory(s3)
    migration_id = driver.start_migration(s3, request)
    driver.cancel_migration(s3, migration_id)

    assert inventory.cluster is None and len(inventory.vms) == 7
    assert driver.migration_status(s3, migration_id).state == "cancelled"


def test_a_standalone_host_with_the_module_is_standalone_too(driver, conns):
    # Module installed, no cluster: the cluster cmdlets write ClusterEndpointNotRegistered.
    inventory = driver.inventory(conns["hv-s1"])

    assert inventory.cluster is None and inventory.vms


def test_a_job_removed_from_wmi_after_its_end_is_answered_from_where_the_vm_runs(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "web-dmz02")
    s2 = conns["hv-s2"]
    request = MoveRequest(vm_id, source, "hv-s1" + D, "live")
    migration_id = driver.start_migration(s2, request)
    assert follow(driver, s2, migration_id)[-1].state == "completed"

    emu_store.advance(400)  # past TimeBeforeRemoval (5 minutes): the host forgets the job
    restarted = PsrpDriver(FAST)  # a worker that came back knows the move only from its job record
    try:
        by_this_driver = driver.migration_status(s2, migration_id)
        by_request = restarted.migration_status(s2, migration_id, request)
        with pytest.raises(HyperVError) as unknown:
            restarted.migration_status(s2, migration_id)
        with pytest.raises(HyperVError) as cancel:
            restarted.cancel_migration(s2, migration_id)
        found = restarted.find_migration(s2, vm_id)
    finally:
        restarted.close()

    assert (by_this_driver.state, by_this_driver.percent) == ("completed", 100)
    assert by_request.state == "completed"
    assert unknown.value.code == "NotFound"  # no request: nothing to ask the VM about
    assert cancel.value.code == "InvalidState"  # nothing left to cancel: not a failure of the driver
    assert found is None


def test_a_removed_job_whose_vm_never_left_is_a_failed_move(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "ci-runner01")
    with emu_store.session() as fabric:
        fabric.inject_failure(vm_id, "network", at_percent=30)
    s2 = conns["hv-s2"]
    request = MoveRequest(vm_id, source, "hv-s1" + D, "live")
    migration_id = driver.start_migration(s2, request)
    assert follow(driver, s2, migration_id)[-1].state == "failed"

    emu_store.advance(400)
    status = driver.migration_status(s2, migration_id, request)

    assert status.state == "failed" and status.error.code == "JobRemoved"


def test_a_compare_vm_check_job_is_not_taken_for_the_move(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "web-dmz02")
    s2 = conns["hv-s2"]
    request = MoveRequest(vm_id, source, "hv-s1" + D, "live")

    assert driver.compare(s2, request) == ()
    with emu_store.session() as fabric:
        [check] = [j for j in fabric.check_jobs if j["vm_id"] == vm_id]
    assert check["job_type"] == 301  # Checking Virtual Machine Compatibility
    assert driver.find_migration(s2, vm_id) is None
    migration_id = driver.start_migration(s2, request)
    assert driver.find_migration(s2, vm_id).migration_id == migration_id


def test_a_cluster_move_runs_as_a_cluster_role_move_and_cancels_with_cancel(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "sql-prod02")
    new2 = conns["hv-new2"]

    migration_id = driver.start_migration(new2, MoveRequest(vm_id, source, "hv-new3" + D, "live"))
    driver.cancel_migration(new2, migration_id)

    assert driver.migration_status(new2, migration_id).state == "cancelled"
    with emu_store.session() as fabric:
        cmdlets = [(r["cmdlet"], r["params"]) for r in fabric.record[-2:]]
    assert cmdlets[0] == ("Move-ClusterVirtualMachineRole", {"VMId": vm_id, "Node": "hv-new3", "MigrationType": "Live"})
    assert cmdlets[1] == ("Move-ClusterVirtualMachineRole", {"VMId": vm_id, "Cancel": True})


def test_a_vm_leaves_its_cluster_moves_with_its_storage_and_joins_the_other(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "erp-db01")
    old1, new1 = conns["hv-old1"], conns["hv-new1"]
    request = MoveRequest(vm_id, source, new1.fqdn, "live_vsm", storage_path="C:\\ClusterStorage\\Volume1\\VMs\\erp")

    driver.remove_cluster_role(old1, vm_id)
    assert driver.compare(old1, request) == ()
    assert follow(driver, old1, driver.start_migration(old1, request))[-1].state == "completed"
    driver.add_cluster_role(new1, vm_id)

    arrived = driver.get_vm(new1, vm_id)
    assert arrived.is_clustered and arrived.config_path == "C:\\ClusterStorage\\Volume1\\VMs\\erp"
    [started] = moves_recorded(emu_store, vm_id)
    assert started["params"]["IncludeStorage"] is True
    assert started["params"]["DestinationStoragePath"] == "C:\\ClusterStorage\\Volume1\\VMs\\erp"


def test_a_storage_move_goes_through_move_vmstorage(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "dc02")
    s3 = conns["hv-s3"]
    request = MoveRequest(vm_id, source, source, "storage", storage_path="E:\\VMs\\dc02")

    assert follow(driver, s3, driver.start_migration(s3, request))[-1].state == "completed"
    assert driver.get_vm(s3, vm_id).config_path == "E:\\VMs\\dc02"
    [started] = moves_recorded(emu_store, vm_id)
    assert (started["cmdlet"], started["params"]) == (
        "Move-VMStorage",
        {"VMName": "dc02", "DestinationStoragePath": "E:\\VMs\\dc02"},
    )


def test_it_refuses_an_over_limit_move_with_21501(driver, conns, emu_store):
    first, source = vm(emu_store, "sql-prod01")
    second, _ = vm(emu_store, "api-01")
    new1 = conns["hv-new1"]
    driver.start_migration(new1, MoveRequest(first, source, "hv-new2" + D, "live"))

    with pytest.raises(HyperVError) as info:
        driver.start_migration(new1, MoveRequest(second, source, "hv-new3" + D, "live"))

    assert info.value.code == "21501"
    assert info.value.remedy


def test_host_settings_are_set_and_read_back(driver, conns):
    s3 = conns["hv-s3"]

    info = driver.set_host_settings(
        s3, HostSettings(max_live_migrations=4, performance_option="smb", migration_enabled=False)
    )
    with pytest.raises(HyperVError) as refused:
        driver.set_host_settings(s3, HostSettings(max_storage_migrations=0))

    assert (info.max_live_migrations, info.performance_option, info.migration_enabled) == (4, "smb", False)
    assert refused.value.code == "InvalidParameter"
    assert driver.inventory(s3).host.max_storage_migrations == 2


def test_a_host_that_refuses_connections_is_unreachable_at_once(driver):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free, and nothing listens once closed
    started = time.monotonic()
    with pytest.raises(HostUnreachable) as info:
        driver.inventory(Connection("gone" + D, "127.0.0.1", port, "http", "basic", USER, PASSWORD))

    assert time.monotonic() - started < 2
    assert "refused" in info.value.reason


def test_a_host_that_accepts_and_never_answers_is_unreachable_within_the_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # ...and never read or answer
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    driver = PsrpDriver(PsrpOptions(allow_basic_http=True, connect_timeout=1, read_timeout=1.5, operation_timeout=1))
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as info:
            driver.inventory(
                Connection("silent" + D, "127.0.0.1", listener.getsockname()[1], "http", "basic", "u", "p")
            )
        waited = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
        driver.close()

    assert waited < 3
    assert "no answer" in info.value.reason


def test_a_stopped_endpoint_makes_only_its_host_unreachable(driver, conns, emulator):
    driver.inventory(conns["hv-s3"])
    emulator.stop_host("hv-s3" + D)

    with pytest.raises(HostUnreachable):
        driver.inventory(conns["hv-s3"])
    assert driver.inventory(conns["hv-s2"]).host.name == "hv-s2"


def test_basic_over_plain_http_needs_explicit_permission(conns):
    strict = PsrpDriver(PsrpOptions())
    try:
        with pytest.raises(HyperVError) as info:
            strict.inventory(conns["hv-s1"])
    finally:
        strict.close()

    assert info.value.code == "InsecureTransport"


def test_wrong_credentials_are_access_denied(driver, conns):
    conn = conns["hv-s1"]
    wrong = Connection(conn.fqdn, conn.address, conn.port, conn.transport, "basic", USER, "not-the-password")

    with pytest.raises(HyperVError) as info:
        driver.inventory(wrong)

    assert info.value.code == "AccessDenied"
    assert "not-the-password" not in str(info.value)


def test_https_validates_the_host_certificate_by_default(emu_fabric_path, tmp_path):
    store = FabricStore(emu_fabric_path, time_scale=SCALE)
    emulator = build_emulator(
        store,
        username=USER,
        password=PASSWORD,
        https=True,
        cert_dir=tmp_path / "tls",
        free_ports=True,
        hosts=["hv-s1" + D],
    )
    emulator.start()
    trusting = PsrpDriver(PsrpOptions(cert_validation=str(tmp_path / "tls" / "ca.pem"), connect_timeout=2))
    default = PsrpDriver(PsrpOptions(connect_timeout=2))
    try:
        with store.session() as fabric:
            conn = fabric.connections(username=USER, password=PASSWORD)[0]
            conn = next(c for c in fabric.connections(username=USER, password=PASSWORD) if c.fqdn == "hv-s1" + D)
        assert conn.transport == "https"
        assert trusting.inventory(conn).host.name == "hv-s1"
        with pytest.raises(HyperVError) as info:
            default.inventory(conn)
        assert info.value.code == "CertificateError"
    finally:
        trusting.close()
        default.close()
        emulator.stop()
        store.close()


def test_a_per_migration_performance_option_applies_to_that_move_only(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "dc01")  # hv-s3 migrates with TCP/IP
    s3 = conns["hv-s3"]

    request = MoveRequest(
        vm_id,
        source,
        "hv-s1" + D,
        "live_vsm",
        storage_path="\\\\fs01.contoso.test\\vms\\dc01",
        performance_option="smb",
    )
    migration_id = driver.start_migration(s3, request)

    with emu_store.session() as fabric:
        assert fabric.migrations[migration_id].performance_option == "smb"
        settings = [r["params"] for r in fabric.record if r["cmdlet"] == "Set-VMHost"]
    assert settings == [
        {"VirtualMachineMigrationPerformanceOption": "SMB"},
        {"VirtualMachineMigrationPerformanceOption": "TCPIP"},
    ]
    assert driver.inventory(s3).host.performance_option == "tcpip"


def test_a_shared_nothing_move_with_per_file_paths_sends_vhds_as_hashtables(driver, conns, emu_store):
    vm_id, source = vm(emu_store, "app-s01")
    with emu_store.session() as fabric:
        [disk] = [d.path for d in fabric.vms[vm_id].disks]
    target = "D:\\Hyper-V\\app-s01"
    request = MoveRequest(
        vm_id, source, "hv-s3" + D, "live_vsm", storage_path=target, vhds=((disk, f"{target}\\app-s01.vhdx"),)
    )

    assert follow(driver, conns["hv-s1"], driver.start_migration(conns["hv-s1"], request))[-1].state == "completed"

    arrived = driver.get_vm(conns["hv-s3"], vm_id)
    assert [d.path for d in arrived.disks] == [f"{target}\\app-s01.vhdx"]
    [started] = moves_recorded(emu_store, vm_id)
    assert started["params"]["Vhds"] == [{"SourceFilePath": disk, "DestinationFilePath": f"{target}\\app-s01.vhdx"}]
    assert started["params"]["VirtualMachinePath"] == target


def test_its_inventory_reads_what_real_moves_fail_on_with_the_real_cmdlets(driver, conns, emulator):
    """ISOs (Get-VMDvdDrive), checkpoints (Get-VMSnapshot, SnapshotFileLocation), smart paging
    (SmartPagingFilePath), pass-through disks (DiskNumber), vFC (Get-VMFibreChannelHba), Replica
    (Get-VMReplication) and possible owners (Get-ClusterResource | Get-ClusterOwnerNode)."""
    by_name = {}
    for host in ("hv-s1", "hv-s2", "hv-s3", "hv-old2", "hv-new1", "hv-new3"):
        by_name.update({v.name: v for v in driver.inventory(conns[host]).vms})

    assert by_name["iso-s01"].dvd_isos == ("C:\\ISO\\WS2022-install.iso",)
    assert by_name["ckpt-new01"].checkpoints == 2
    assert by_name["ckpt-new01"].snapshot_path == "D:\\Hyper-V\\Checkpoints"
    assert by_name["page-s02"].smart_paging_path == "D:\\SmartPaging"
    # A VM without its own folders reports its configuration folder for both, as Hyper-V does.
    assert by_name["dc01"].snapshot_path == by_name["dc01"].config_path == by_name["dc01"].smart_paging_path
    assert by_name["sqlpt-old01"].passthrough_disks == (3,)
    assert len(by_name["sqlpt-old01"].disks) == 1  # the physical disk is no file
    assert by_name["tape-new01"].fc_sans == ("SAN-Prod",)
    primary, replica = by_name["crm-s02"], by_name["erp-dr01"]
    assert (primary.replication_mode, primary.replica_server) == ("primary", "hv-s3" + D)
    assert (replica.replication_mode, replica.primary_server) == ("replica", "hv-s1" + D)
    assert by_name["lic-new01"].possible_owners == ("hv-new1", "hv-new2")
    assert by_name["sql-prod01"].possible_owners == ("hv-new1", "hv-new2", "hv-new3")
    assert by_name["dc01"].possible_owners == () and by_name["dc01"].replication_mode == ""
    assert by_name["dc01"].dvd_isos == () and by_name["dc01"].checkpoints == 0


def requests_of(driver, conn, monkeypatch) -> list[set[str]]:
    """The cmdlets of each request one inventory of `conn` sends."""
    session = driver.session(conn)
    requests = []
    run = session.run
    monkeypatch.setattr(session, "run", lambda *statements, **kw: requests.append(statements) or run(*statements, **kw))
    driver.inventory(conn)
    return [{command for statement in request for command, _ in statement} for request in requests]


def test_its_inventory_reads_the_new_facts_without_another_round_trip(driver, conns, emulator, monkeypatch):
    # Sync of 100 hosts is benchmarked (bench/sync.py), and every cmdlet costs a real host a WMI query:
    # ISOs, checkpoints and vFC ride in the first request; Replica and possible owners only where a VM
    # needs them, in the second request, which a host with SMB connections makes anyway (DNS lookups).
    # The cluster is read in a request of its own (a host without the FailoverClusters module fails a
    # whole pipeline that names its cmdlets): three requests, none of them for the new facts alone.
    first, cluster, second = requests_of(driver, conns["hv-new1"], monkeypatch)
    assert {"Get-VMDvdDrive", "Get-VMSnapshot", "Get-VMFibreChannelHba"} <= first
    assert cluster == {"Get-Cluster", "Get-ClusterNode"}
    assert {"Resolve-DnsName", "Get-ClusterResource", "Get-ClusterOwnerNode"} <= second
    assert "Get-VMReplication" not in first | second  # no replicated VM on hv-new1

    replicated = requests_of(driver, conns["hv-s2"], monkeypatch)[-1]
    assert "Get-VMReplication" in replicated and "Get-ClusterOwnerNode" not in replicated


def test_a_host_with_the_cluster_module_is_read_in_two_requests_after_the_first_inventory(
    driver, conns, emu_store, monkeypatch
):
    first = driver.inventory(conns["hv-new1"])  # the first tells the driver the module is there
    node = requests_of(driver, conns["hv-new1"], monkeypatch)
    assert len(node) == 2 and {"Get-Cluster", "Get-ClusterNode", "Get-VM"} <= node[0]
    assert driver.inventory(conns["hv-new1"]) == first  # the same inventory either way

    # A host without the module keeps the cluster in a request of its own (it fails a whole pipeline).
    driver.inventory(conns["hv-s4"])
    standalone = requests_of(driver, conns["hv-s4"], monkeypatch)
    assert "Get-Cluster" not in standalone[0] and standalone[1] == {"Get-Cluster", "Get-ClusterNode"}

    # The module removed since: the combined request fails and the inventory is read the other way.
    with emu_store.session() as fabric:
        fabric.hosts["hv-new1" + D].failover_clustering_installed = False
        fabric.touch()
    again = requests_of(driver, conns["hv-new1"], monkeypatch)
    assert {"Get-Cluster", "Get-VM"} <= again[0]
    assert "Get-Cluster" not in again[1] and "Get-VM" in again[1]
    assert again[2] == {"Get-Cluster", "Get-ClusterNode"}
    assert driver.inventory(conns["hv-new1"]).cluster is None
    assert "Get-Cluster" not in requests_of(driver, conns["hv-new1"], monkeypatch)[0]


def test_a_long_pipeline_lets_its_output_gather_between_receives(conns, emulator, monkeypatch):
    # The host answers a Receive with the output it has: 12 statements at 80 ms each otherwise cost a
    # Receive nearly each. The driver waits between Receives as long as the pipeline has run, up to
    # gather, so a quick pipeline is not held up. Asserted on the waits the driver asks for, each with
    # the pipeline's age when asked, not on Receive counts and run times, which move with the machine's
    # load; bench/sync.py measures those.
    from fabric.hyperv import psrp_session

    emulator.side.latency = 0.08
    waits: list[tuple[float, float]] = []  # (when asked, seconds asked for)
    receives = []
    receive = psrp_session._WSMan.receive
    monkeypatch.setattr(psrp_session._WSMan, "receive", lambda *a, **kw: receives.append(1) or receive(*a, **kw))

    def sleep(seconds: float) -> None:
        waits.append((time.monotonic(), seconds))
        time.sleep(seconds)

    monkeypatch.setattr(psrp_session, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    session = psrp_session.HostSession(conns["hv-s1"], FAST)

    def run(count: int, gather: float) -> tuple[int, int, list[tuple[float, float]]]:
        waits.clear()
        receives.clear()
        started = time.monotonic()
        output = session.run(*[[("Get-VMHost", {})]] * count, gather=gather).output
        return len(output), len(receives), [(at - started, seconds) for at, seconds in waits]

    try:
        plain = run(12, 0.0)
        gathered = run(12, 0.3)
        emulator.side.latency = 0
        quick = run(2, 0.3)
    finally:
        session.close()

    assert (plain[0], gathered[0], quick[0]) == (12, 12, 2)
    assert plain[2] == []  # no gather: Receive after Receive
    assert all(0 < seconds <= min(0.3, age) for age, seconds in gathered[2] + quick[2])  # never past its age
    assert max(seconds for _, seconds in gathered[2]) == 0.3  # a pipeline of a second gathers at the cap
    assert gathered[1] <= len(gathered[2]) + 1  # a Receive after each wait, and one to begin


def test_it_saves_and_shuts_down_a_vm_for_a_maintenance(driver, conns, emu_store):
    vm_id, _ = vm(emu_store, "web-dmz01")
    other, _ = vm(emu_store, "file-s01")
    s1 = conns["hv-s1"]

    driver.save_vm(s1, vm_id)
    driver.stop_vm(s1, other)
    driver.stop_vm(s1, other)  # off already: Stop-VM is no error then

    assert driver.get_vm(s1, vm_id).state == "saved"
    assert driver.get_vm(s1, other).state == "off"
    with pytest.raises(HyperVError) as refused:
        driver.save_vm(s1, other)  # an off VM cannot be saved
    assert refused.value.code == "InvalidState"
    with emu_store.session() as fabric:
        freed = fabric.hosts["hv-s1" + D].memory_available_bytes
    driver.start_vm(s1, vm_id)  # resumes from its saved state
    driver.start_vm(s1, other)  # boots
    assert driver.get_vm(s1, vm_id).state == driver.get_vm(s1, other).state == "running"
    with emu_store.session() as fabric:
        powered = ("Save-VM", "Stop-VM", "Start-VM")
        assert [(c["cmdlet"], c["result"]) for c in fabric.record if c["cmdlet"] in powered] == [
            ("Save-VM", "saved"),
            ("Stop-VM", "off"),
            ("Stop-VM", "off"),
            ("Save-VM", "refused"),
            ("Start-VM", "running"),
            ("Start-VM", "running"),
        ]
        # Saved and off VMs hold no memory: started again, they take it back from their host.
        taken = sum(fabric.vms[i].memory_bytes for i in (vm_id, other))
        assert fabric.hosts["hv-s1" + D].memory_available_bytes == freed - taken
