"""The Hyper-V host emulator over real sockets, driven by pypsrp as any PowerShell Remoting client would."""

import base64
import time

import pytest
import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from fabric.emulator import build_emulator
from fabric.hyperv.psrp_session import record_text
from fabric.sim.demo import INJECTION_NAME
from fabric.sim.store import FabricStore
from tests.fabric.conftest import PASSWORD, SCALE, USER, open_pool

D = ".contoso.test"
JOBS = {"Namespace": "root\\virtualization\\v2", "ClassName": "Msvm_MigrationJob"}


def ext(obj):
    return {**obj.extended_properties, **obj.adapted_properties}


def invoke(pool, *commands):
    """commands: (cmdlet, {param: value}) piped together; a value of None is a switch."""
    ps = PowerShell(pool)
    for cmdlet, params in commands:
        ps.add_cmdlet(cmdlet)
        for name, value in params.items():
            ps.add_parameter(name, value)
    ps.invoke()
    return ps


def vm_id(store, name):
    with store.session() as fabric:
        return fabric.vm_by_name(name).id


def test_it_refuses_wrong_credentials_with_401(emulator):
    address, port = emulator.address("hv-s1" + D)
    answer = requests.post(f"http://{address}:{port}/wsman", data=b"<x/>", auth=("hv-admin", "wrong"), timeout=5)

    assert answer.status_code == 401
    # Every scheme the host's WinRM service offers, Negotiate first, as Windows answers.
    assert answer.headers["WWW-Authenticate"].startswith("Negotiate")
    assert 'Basic realm="WSMAN"' in answer.headers["WWW-Authenticate"]
    with pytest.raises(AuthenticationError):
        open_pool(emulator, "hv-s1" + D, password="wrong")


def test_it_answers_with_objects_shaped_like_hyperv(emulator):
    with open_pool(emulator, "hv-s3" + D) as pool:
        host = invoke(pool, ("Get-VMHost", {})).output[0]
        vms = invoke(pool, ("Get-VM", {})).output
        versions = invoke(pool, ("Get-VMHostSupportedVersion", {})).output

    props = ext(host)
    assert host.types[0] == "Microsoft.HyperV.PowerShell.VMHost"
    assert props["FullyQualifiedDomainName"] == "contoso.test"  # the domain, as Hyper-V reports it
    assert props["VirtualMachineMigrationPerformanceOption"].to_string == "TCPIP"
    assert props["VirtualMachineMigrationAuthenticationType"].to_string == "Kerberos"
    states = {ext(v)["Name"]: ext(v)["State"].to_string for v in vms}
    assert states["dc01"] == "Running"
    assert states["old-crm01"] == "Off"
    assert ext(vms[0])["Id"].version == 4
    assert "9.0" in [str(ext(v)["Version"]) for v in versions]


def test_it_writes_progress_about_every_interval_while_move_vm_runs(emulator, emu_store):
    store = emu_store
    with open_pool(emulator, "hv-s2" + D) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Move-VM").add_parameter("Name", "web-dmz02").add_parameter("DestinationHost", "hv-s1" + D)
        ps.add_parameter("Passthru")
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            ps.poll_invoke(timeout=1)
        records = ps.streams.progress
        seen_while_running = [p.percent_complete for p in records[:-1]]
        last = records[-1]

    assert ps.state == PSInvocationState.COMPLETED and not ps.streams.error
    assert any(0 < p < 100 for p in seen_while_running)
    assert seen_while_running == sorted(seen_while_running)
    assert (last.activity, last.description, last.percent_complete) == ("Move a virtual machine", "Completed", 100)
    assert ext(ps.output[0])["ComputerName"] == "hv-s1"
    with store.session() as fabric:
        assert fabric.vm_by_name("web-dmz02").host == "hv-s1" + D


def test_it_writes_non_terminating_error_records_with_hyperv_codes(emulator):
    with open_pool(emulator, "hv-old1" + D) as pool:
        ps = invoke(pool, ("Move-VM", {"Name": "legacy-fax", "DestinationHost": "hv-new1" + D}))

    assert not ps.had_errors  # the pipeline completed: the refusal is an error record
    [record] = ps.streams.error
    assert record.fq_error == "OperationFailed,Microsoft.HyperV.PowerShell.Commands.MoveVM"
    assert record.details_message.startswith("Could not find Ethernet switch 'vSwitch-Legacy'")
    assert record.details_message.endswith("(33012)")
    assert "switch" in record.action


def test_it_refuses_a_migration_over_the_cluster_limit_with_21501(emulator, emu_store):
    store = emu_store
    with open_pool(emulator, "hv-new1" + D, auth="credssp") as pool:
        first = invoke(
            pool, ("Move-ClusterVirtualMachineRole", {"VMId": vm_id(store, "sql-prod01"), "Node": "hv-new2", "Wait": 0})
        )
        second = invoke(pool, ("Move-ClusterVirtualMachineRole", {"Name": "k8s-node02", "Node": "hv-new1"}))

    assert not first.streams.error
    [record] = second.streams.error
    assert record.details_message.endswith("(21501)")
    assert "limit '1' was reached" in record.details_message


def test_it_fails_the_pipeline_for_unknown_commands_script_text_and_bad_parameters(emulator):
    with open_pool(emulator, "hv-s1" + D) as pool:
        unknown = invoke(pool, ("Remove-VM", {"Name": "*"}))
        bad_parameter = invoke(pool, ("Get-VM", {"Nmae": "dc01"}))
        script = PowerShell(pool)
        script.add_script("Get-VM | Remove-VM")
        script.invoke()

    for ps, error_id in (
        (unknown, "CommandNotFoundException"),
        (bad_parameter, "NamedParameterNotFound"),
        (script, "ScriptsNotAccepted"),
    ):
        assert ps.had_errors
        assert ps.state == PSInvocationState.FAILED
        assert ps.streams.error[-1].fq_error.split(",")[0] == error_id


def test_a_standalone_host_answers_the_cluster_cmdlets_as_a_real_one(emulator, emu_store):
    """Module installed, no cluster: ClusterEndpointNotRegistered (ConnectionError), the pipeline completes.
    No module: the cmdlets do not exist, every FailoverClusters cmdlet fails the pipeline."""
    with emu_store.session() as fabric:
        fabric.hosts["hv-s3" + D].failover_clustering_installed = False
        fabric.touch()
    with open_pool(emulator, "hv-s1" + D) as pool:
        cluster = invoke(pool, ("Get-Cluster", {}))
        nodes = invoke(pool, ("Get-ClusterNode", {}))
    with open_pool(emulator, "hv-s3" + D) as pool:
        missing = [
            invoke(pool, (cmdlet, params))
            for cmdlet, params in (
                ("Get-Cluster", {}),
                ("Get-ClusterNode", {}),
                ("Move-ClusterVirtualMachineRole", {"Name": "dc01", "Node": "hv-s1"}),
                ("Remove-ClusterGroup", {"Name": "dc01", "RemoveResources": None, "Force": None}),
                ("Add-ClusterVirtualMachineRole", {"VMName": "dc01"}),
            )
        ]
        still_hyperv = invoke(pool, ("Get-VMHost", {}))

    for ps in (cluster, nodes):
        assert not ps.had_errors and ps.output == []
        [record] = ps.streams.error
        assert record.fq_error.startswith("ClusterEndpointNotRegistered,Microsoft.FailoverClusters.PowerShell.")
        assert record.category == 27  # ErrorCategory.ConnectionError
        assert "no more endpoints available from the endpoint mapper" in record_text(record)
    for ps in missing:
        assert ps.had_errors and ps.state == PSInvocationState.FAILED
        assert ps.streams.error[-1].fq_error == "CommandNotFoundException"
    assert not still_hyperv.had_errors and len(still_hyperv.output) == 1


def test_it_answers_an_idle_receive_with_the_wsman_timeout_fault_before_operation_timeout(emulator):
    with open_pool(emulator, "hv-s1" + D) as pool:
        started = time.monotonic()
        with pytest.raises(WSManFaultError) as info:
            pool._receive(timeout=2)  # the pool has nothing more to say once open
        waited = time.monotonic() - started

    assert info.value.code == 2150858793
    assert 1.0 < waited < 2.0


def test_a_pipeline_sent_to_many_hosts_is_read_once_and_answered_by_each(emulator):
    from fabric.emulator import shell

    shell._READ.clear()
    names = {}
    for host in ("hv-s1", "hv-s2", "hv-s3"):
        with open_pool(emulator, host + D) as pool:
            names[host] = sorted(ext(v)["Name"] for v in invoke(pool, ("Get-VM", {})).output)
            one = invoke(pool, ("Get-VM", {"Name": "dc01"})).output
            other = invoke(pool, ("Get-VM", {"Name": "web-dmz02"})).output
            names[host + " dc01"] = [ext(v)["Name"] for v in one]
            names[host + " web-dmz02"] = [ext(v)["Name"] for v in other]

    # The same bytes from three clients: read once; another parameter value is another message.
    assert len(shell._READ) == 3
    assert names["hv-s1"] != names["hv-s2"] and names["hv-s2"] != names["hv-s3"]  # each host its own VMs
    for host in ("hv-s1", "hv-s2", "hv-s3"):
        assert names[host + " dc01"] == (["dc01"] if "dc01" in names[host] else [])
        assert names[host + " web-dmz02"] == (["web-dmz02"] if "web-dmz02" in names[host] else [])


def test_it_keeps_every_command_with_its_parameters_exactly_as_received(emulator, emu_store):
    store = emu_store
    with open_pool(emulator, "hv-s1" + D) as pool:
        found = invoke(pool, ("Get-VM", {"Name": INJECTION_NAME})).output
        move = invoke(pool, ("Move-VM", {"Name": INJECTION_NAME, "DestinationHost": "hv-s2" + D}))

    assert [ext(v)["Name"] for v in found] == [INJECTION_NAME]
    assert not move.streams.error
    with store.session() as fabric:
        moves = [r for r in fabric.record if r["cmdlet"] == "Move-VM"]
        assert fabric.vm_by_name(INJECTION_NAME).host == "hv-s2" + D
    assert len(moves) == 1
    assert moves[0]["params"] == {"Name": INJECTION_NAME, "DestinationHost": "hv-s2" + D}
    emulator.flush_log()
    logged = [c for c in store.commands() if c["cmdlet"] in ("Get-VM", "Move-VM")]
    assert [c["params"]["Name"] for c in logged] == [INJECTION_NAME, INJECTION_NAME]
    assert emulator.commands("Move-VM")[0]["params"]["Name"] == INJECTION_NAME


def test_a_stopped_pipeline_leaves_the_migration_job_running_until_it_is_terminated(emulator, emu_store):
    store = emu_store
    with open_pool(emulator, "hv-new1" + D) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Move-VM").add_parameter("Name", "erp-app01").add_parameter("DestinationHost", "hv-s1" + D)
        ps.begin_invoke()
        ps.poll_invoke(timeout=1)
        ps.stop()
        jobs = invoke(
            pool, ("Get-CimInstance", {"Namespace": "root\\virtualization\\v2", "ClassName": "Msvm_MigrationJob"})
        )
        job = ext(jobs.output[-1])
        cancel = invoke(
            pool,
            ("Get-CimInstance", JOBS),
            ("Where-Object", {"Property": "InstanceID", "EQ": None, "Value": job["InstanceID"]}),
            ("Invoke-CimMethod", {"MethodName": "RequestStateChange", "Arguments": {"RequestedState": 4}}),
        )
        again = invoke(
            pool,
            ("Get-CimInstance", JOBS),
            ("Invoke-CimMethod", {"MethodName": "RequestStateChange", "Arguments": {"RequestedState": 4}}),
        )
        store.advance(301)  # TimeBeforeRemoval: WMI keeps an ended job five minutes
        later = [ext(j)["InstanceID"] for j in invoke(pool, ("Get-CimInstance", JOBS)).output]

    assert job["JobState"] == 4 and job["Cancellable"] and job["JobType"] == 305  # moving a VM
    assert job["Caption"] == "Move a virtual machine"
    # CIM_ConcreteJob.RequestStateChange: 0 completed, 4097 invalid state transition (ended already).
    assert ext(cancel.output[0])["ReturnValue"] == 0
    assert ext(again.output[0])["ReturnValue"] == 4097
    assert job["InstanceID"] not in later
    with store.session() as fabric:
        assert fabric.migrations[job["InstanceID"]].state == "cancelled"
        assert fabric.vm_by_name("erp-app01").host == "hv-new1" + D


def test_it_removes_and_adds_cluster_roles_and_sets_host_settings(emulator, emu_store):
    store = emu_store
    erp = vm_id(store, "erp-db01")
    with open_pool(emulator, "hv-old1" + D, auth="credssp") as pool:
        removed = invoke(pool, ("Remove-ClusterGroup", {"VMId": erp, "RemoveResources": None, "Force": None}))
        added = invoke(pool, ("Add-ClusterVirtualMachineRole", {"VMId": erp}))
        settings = invoke(
            pool,
            (
                "Set-VMHost",
                {
                    "MaximumVirtualMachineMigrations": 5,
                    "VirtualMachineMigrationPerformanceOption": "SMB",
                    "Passthru": None,
                },
            ),
        )
        disabled = invoke(pool, ("Disable-VMMigration", {"Passthru": None}))

    assert not removed.streams.error and not added.streams.error
    assert ext(added.output[0])["Name"] == "erp-db01"
    host = ext(settings.output[0])
    assert (host["MaximumVirtualMachineMigrations"], host["VirtualMachineMigrationPerformanceOption"].to_string) == (
        5,
        "SMB",
    )
    assert ext(disabled.output[0])["VirtualMachineMigrationEnabled"] is False
    with store.session() as fabric:
        cmdlets = [(r["cmdlet"], r["params"]) for r in fabric.record[-4:]]
    assert cmdlets[0] == ("Remove-ClusterGroup", {"VMId": erp, "RemoveResources": True, "Force": True})
    assert cmdlets[1] == ("Add-ClusterVirtualMachineRole", {"VMId": erp})
    assert cmdlets[2][1]["VirtualMachineMigrationPerformanceOption"] == "SMB"


def test_it_accepts_envelopes_of_half_a_megabyte(emulator):
    with open_pool(emulator, "hv-s1" + D, max_envelope_size=512000) as pool:
        ps = invoke(pool, ("Get-VM", {"Name": "x" * 300_000}))

    assert not ps.had_errors
    assert ps.streams.error[0].fq_error.startswith("InvalidParameter")


def test_it_serves_https_with_a_generated_certificate_that_validates(emu_fabric_path, tmp_path):
    emulator = build_emulator(
        FabricStore(emu_fabric_path, time_scale=SCALE),
        username=USER,
        password=PASSWORD,
        https=True,
        cert_dir=tmp_path / "tls",
        free_ports=True,
    )
    emulator.start()
    try:
        address, port = emulator.address("hv-s1" + D)

        def connect(validation):
            wsman = WSMan(
                address,
                port=port,
                username=USER,
                password=PASSWORD,
                ssl=True,
                auth="basic",
                cert_validation=validation,
                connection_timeout=3,
                read_timeout=10,
                operation_timeout=5,
            )
            with RunspacePool(wsman) as pool:
                return ext(invoke(pool, ("Get-VMHost", {})).output[0])["Name"]

        assert connect(str(tmp_path / "tls" / "ca.pem")) == "hv-s1"
        with pytest.raises(requests.exceptions.SSLError):
            connect(True)
    finally:
        emulator.stop()


def test_it_serves_a_host_on_127_0_0_1_when_its_address_cannot_be_bound(emu_fabric_path):
    store = FabricStore(emu_fabric_path, time_scale=SCALE)
    with store.session() as fabric:
        fabric.hosts["hv-s1" + D].address = "192.0.2.10"  # TEST-NET-1: never an address of this machine
        fabric.touch()
    emulator = build_emulator(store, username=USER, password=PASSWORD, hosts=["hv-s1" + D], allow_basic_http=True)
    emulator.start()
    try:
        address, port = emulator.address("hv-s1" + D)
        with store.session() as fabric:
            host = fabric.hosts["hv-s1" + D]
            assert (host.address, host.port) == ("127.0.0.1", port)
        assert address == "127.0.0.1"
        with open_pool(emulator, "hv-s1" + D) as pool:
            assert ext(invoke(pool, ("Get-VMHost", {})).output[0])["Name"] == "hv-s1"
    finally:
        emulator.stop()
        store.close()


def test_it_refuses_unknown_shells_with_a_wsman_fault(emulator):
    address, port = emulator.address("hv-s1" + D)
    envelope = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>'
        "<a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive</a:Action>"
        '<a:MessageID>uuid:1</a:MessageID><w:SelectorSet><w:Selector Name="ShellId">NOPE</w:Selector>'
        "</w:SelectorSet></s:Header><s:Body/></s:Envelope>"
    )
    answer = requests.post(
        f"http://{address}:{port}/wsman",
        data=envelope.encode(),
        headers={"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()},
        timeout=5,
    )

    assert answer.status_code == 500
    assert "2150858843" in answer.text


def test_it_answers_the_cmdlets_of_move_facts_with_hyperv_types_and_properties(emulator):
    with open_pool(emulator, "hv-new1" + D) as pool:
        drives = invoke(pool, ("Get-VMDvdDrive", {"VMName": "*"})).output
        hbas = invoke(pool, ("Get-VMFibreChannelHba", {"VMName": "tape-new01"})).output
        owners = invoke(
            pool, ("Get-ClusterNode", {"Name": "hv-new1"}), ("Get-ClusterResource", {}), ("Get-ClusterOwnerNode", {})
        ).output
        elsewhere = invoke(pool, ("Get-ClusterNode", {"Name": "no-such-node"}), ("Get-ClusterResource", {})).output
    with open_pool(emulator, "hv-s2" + D) as pool:
        replication = invoke(pool, ("Get-VMReplication", {})).output

    assert drives == []  # no ISO on hv-new1's VMs
    [hba] = hbas
    assert hba.types[0] == "Microsoft.HyperV.PowerShell.VMFibreChannelHba"
    assert ext(hba)["SanName"] == "SAN-Prod"
    assert ext(hba)["WorldWidePortNameSetA"] != ext(hba)["WorldWidePortNameSetB"]
    lists = {ext(o)["ClusterObject"]: ext(o)["OwnerNodes"] for o in owners}
    assert lists["Virtual Machine lic-new01"] == ["hv-new1", "hv-new2"]
    assert lists["Virtual Machine sql-prod01"] == ["hv-new1", "hv-new2", "hv-new3"]
    assert not any("k8s-node02" in name for name in lists)  # owned by hv-new3: not piped in
    assert elsewhere == []  # nothing came down the pipeline: no resources
    [primary] = replication  # only the replication-enabled VM of hv-s2
    assert (ext(primary)["VMName"], ext(primary)["Mode"].to_string) == ("crm-s02", "Primary")
    assert ext(primary)["ReplicaServer"] == "hv-s3" + D
