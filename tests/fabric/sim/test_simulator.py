import json

import pytest

from fabric.hyperv.api import HostUnreachable, HyperVError, MoveRequest
from fabric.hyperv.precopy import plan_precopy
from fabric.sim.simulator import Fabric, SimCluster, SimDisk, SimHost, SimShare, SimVm

GIB = 1024**3
MB = 1_000_000
GBIT = 125_000_000  # bytes/s per Gbps
SHARE = "\\\\fs.test\\vms"


def make_fabric(hosts=("h1", "h2", "h3"), nic_gbps=1.0, performance="tcpip", **host_kw) -> Fabric:
    fabric = Fabric(seed=7)
    fabric.add_share(SimShare(SHARE, "fs.test", "fs.test"))
    for i, name in enumerate(hosts):
        fabric.add_host(
            SimHost(
                f"{name}.test",
                name,
                f"127.0.0.{11 + i}",
                nic_gbps=nic_gbps,
                performance_option=performance,
                shares=[SHARE],
                **host_kw,
            )
        )
    return fabric


def add_vm(fabric, name, host="h1", memory_gib=4, dirty=10.0, folder=SHARE, **kw) -> SimVm:
    home = f"{folder}\\{name}"
    disks = kw.pop("disks", [SimDisk(f"{home}\\{name}.vhdx", 20 * GIB)])
    return fabric.add_vm(
        SimVm(
            id=f"id-{name}",
            name=name,
            host=f"{host}.test",
            memory_bytes=memory_gib * GIB,
            dirty_rate_mbps=dirty,
            config_path=home,
            disks=disks,
            **kw,
        )
    )


def move(fabric, vm, destination, kind="live", **kw) -> str:
    target = vm.host if kind == "storage" else f"{destination}.test"
    return fabric.start_migration(MoveRequest(vm.id, vm.host, target, kind, **kw))


def run(fabric, migration_id, step=1.0):
    for _ in range(100_000):
        if fabric.migrations[migration_id].state != "running":
            return fabric.migrations[migration_id]
        fabric.advance(step)
    raise AssertionError("migration never ended")


def elapsed(m):
    return m.ended_at - m.started_at


RESUME = Fabric().tuning.resume_s  # the VM resumes on the destination after the last bytes


def refusal(fabric, vm, destination, kind="live", **kw) -> HyperVError:
    with pytest.raises(HyperVError) as info:
        move(fabric, vm, destination, kind, **kw)
    return info.value


# --- the pre-copy model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("performance", "nic_gbps", "memory_gib", "dirty", "rate"),
    [
        ("tcpip", 1.0, 4, 30.0, 1 * GBIT),  # TCP fills 1 GbE
        ("tcpip", 10.0, 16, 100.0, 2.5 * GBIT),  # one TCP stream: a quarter of 10 GbE
        ("compression", 10.0, 32, 200.0, 5 * GBIT),  # CPU-bound compression stream
        ("compression", 1.0, 8, 20.0, 2 * GBIT),  # half the bytes on a full 1 GbE link
        ("smb", 10.0, 64, 400.0, 10 * GBIT),  # near line rate
    ],
)
def test_it_takes_the_closed_form_time_for_a_single_migration(performance, nic_gbps, memory_gib, dirty, rate):
    fabric = make_fabric(nic_gbps=nic_gbps, performance=performance)
    vm = add_vm(fabric, "vm", memory_gib=memory_gib, dirty=dirty)
    t = fabric.tuning
    plan = plan_precopy(vm.memory_bytes, rate, dirty * MB, threshold_bytes=t.threshold_bytes, max_passes=t.max_passes)

    m = run(fabric, move(fabric, vm, "h2"), step=0.7)
    status = fabric.migration_status(m.id)

    assert m.state == "completed"
    assert elapsed(m) == pytest.approx(plan.duration_s, rel=0.02)
    assert elapsed(m) >= status.bytes_sent / (nic_gbps * GBIT)  # the floor: M_sent / R
    assert status.pass_number == plan.passes + 1  # the pre-copy passes, then the stop-and-copy
    assert status.blackout_ms == pytest.approx(plan.blackout_s * 1000, abs=2)


def test_it_ends_at_the_same_time_whatever_the_steps_of_the_clock():
    results = []
    for step in (0.3, 5.0, 10_000.0):
        fabric = make_fabric()
        vm = add_vm(fabric, "vm", memory_gib=6, dirty=40.0)
        results.append(elapsed(run(fabric, move(fabric, vm, "h2"), step=step)))

    assert results[1] == pytest.approx(results[0], rel=1e-9)
    assert results[2] == pytest.approx(results[0], rel=1e-9)


def test_it_hits_the_pass_cap_when_the_guest_dirties_faster_than_the_link():
    fabric = make_fabric(nic_gbps=1.0)
    vm = add_vm(fabric, "hot", memory_gib=2, dirty=200.0)

    m = run(fabric, move(fabric, vm, "h2"))
    status = fabric.migration_status(m.id)

    assert m.state == "completed"
    assert m.converged is False
    assert status.pass_number == fabric.tuning.max_passes + 1
    # The whole memory is sent again in the blackout: seconds, not milliseconds.
    assert status.blackout_ms >= 2 * GIB / GBIT * 1000
    assert elapsed(m) == pytest.approx(11 * 2 * GIB / GBIT, rel=0.02)


# --- bandwidth -----------------------------------------------------------------------------------


def test_it_shares_the_source_link_between_concurrent_migrations():
    alone = make_fabric()
    vm = add_vm(alone, "a", memory_gib=4, dirty=0.0)
    single = elapsed(run(alone, move(alone, vm, "h2")))

    shared = make_fabric()
    a = add_vm(shared, "a", memory_gib=4, dirty=0.0)
    b = add_vm(shared, "b", memory_gib=4, dirty=0.0)
    first, second = move(shared, a, "h2"), move(shared, b, "h3")
    run(shared, second)

    transfer = 4 * GIB / GBIT
    assert single == pytest.approx(transfer + RESUME, rel=1e-6)
    assert elapsed(shared.migrations[first]) == pytest.approx(2 * transfer + RESUME, rel=1e-3)
    assert elapsed(shared.migrations[second]) == pytest.approx(2 * transfer + RESUME, rel=1e-3)


def test_it_gives_the_link_back_when_a_migration_ends():
    fabric = make_fabric()
    small = add_vm(fabric, "small", memory_gib=2, dirty=0.0)
    big = add_vm(fabric, "big", memory_gib=4, dirty=0.0)
    first, second = move(fabric, small, "h2"), move(fabric, big, "h3")
    run(fabric, second)

    # Both at half rate until the small one is sent (4 GiB in all), then the big one alone.
    assert elapsed(fabric.migrations[first]) == pytest.approx(4 * GIB / GBIT + RESUME, rel=1e-3)
    assert elapsed(fabric.migrations[second]) == pytest.approx(6 * GIB / GBIT + RESUME, rel=1e-3)


def test_it_lets_tcp_streams_add_up_until_the_link_is_full():
    fabric = make_fabric(nic_gbps=10.0)
    a = add_vm(fabric, "a", memory_gib=8, dirty=0.0)
    b = add_vm(fabric, "b", memory_gib=8, dirty=0.0)
    first, second = move(fabric, a, "h2"), move(fabric, b, "h3")
    run(fabric, second)

    # Two quarter-link streams fit in 10 GbE: neither slows the other.
    assert elapsed(fabric.migrations[first]) == pytest.approx(8 * GIB / (2.5 * GBIT) + RESUME, rel=1e-3)
    assert elapsed(fabric.migrations[second]) == pytest.approx(8 * GIB / (2.5 * GBIT) + RESUME, rel=1e-3)


@pytest.mark.parametrize("nic_gbps", [1.0, 10.0])
def test_it_halves_the_time_with_compression(nic_gbps):
    times = {}
    for performance in ("tcpip", "compression"):
        fabric = make_fabric(nic_gbps=nic_gbps, performance=performance)
        vm = add_vm(fabric, "vm", memory_gib=8, dirty=5.0)
        times[performance] = elapsed(run(fabric, move(fabric, vm, "h2")))

    assert times["compression"] / times["tcpip"] == pytest.approx(0.5, abs=0.05)


def test_it_lets_a_migration_choose_its_performance_option():
    fabric = make_fabric(nic_gbps=10.0, performance="tcpip")
    vm = add_vm(fabric, "vm", memory_gib=8, dirty=0.0)

    m = run(fabric, move(fabric, vm, "h2", performance_option="smb"))

    assert m.performance_option == "smb"
    assert elapsed(m) == pytest.approx(8 * GIB / (10 * GBIT) + RESUME, rel=1e-3)


# --- limits --------------------------------------------------------------------------------------


def test_it_refuses_a_third_migration_out_of_a_host():
    fabric = make_fabric()
    vms = [add_vm(fabric, f"vm{i}") for i in range(3)]
    move(fabric, vms[0], "h2")
    move(fabric, vms[1], "h3")

    error = refusal(fabric, vms[2], "h2")

    assert error.code == "21501"
    assert "'2'" in error.message
    assert error.remedy


def test_it_counts_incoming_and_outgoing_migrations_of_a_host():
    fabric = make_fabric()
    incoming = add_vm(fabric, "in", host="h2")
    outgoing = add_vm(fabric, "out", host="h1")
    third = add_vm(fabric, "third", host="h3")
    move(fabric, incoming, "h1")
    move(fabric, outgoing, "h3")

    assert refusal(fabric, third, "h1").code == "21501"  # h1: one in, one out
    fabric.hosts["h1.test"].max_live_migrations = 3
    assert move(fabric, third, "h1")


def test_it_counts_live_vsm_as_one_live_and_one_storage_migration():
    fabric = make_fabric(max_live_migrations=1, max_storage_migrations=1)
    vsm = add_vm(fabric, "vsm")
    live = add_vm(fabric, "live")
    storage = add_vm(fabric, "storage")
    move(fabric, vsm, "h2", kind="live_vsm", storage_path="D:\\VMs\\vsm")

    assert refusal(fabric, live, "h3").code == "21501"
    assert refusal(fabric, storage, None, kind="storage", storage_path="D:\\VMs\\storage").code == "21501"


def test_it_refuses_live_vsm_when_only_the_storage_limit_is_reached():
    fabric = make_fabric(max_live_migrations=2, max_storage_migrations=1)
    storage = add_vm(fabric, "storage")
    vsm = add_vm(fabric, "vsm")
    move(fabric, storage, None, kind="storage", storage_path="D:\\VMs\\storage")

    assert move(fabric, add_vm(fabric, "live"), "h2")  # the live limit still has room
    error = refusal(fabric, vsm, "h3", kind="live_vsm", storage_path="D:\\VMs\\vsm")
    assert error.code == "21501"
    assert "storage migration limit '1'" in error.message


def make_cluster(parallel=1) -> Fabric:
    fabric = make_fabric(hosts=())
    fabric.add_cluster(SimCluster("CL", "cl.test", 11, max_parallel_migrations=parallel))
    for i in (1, 2, 3):
        fabric.add_host(SimHost(f"n{i}.test", f"n{i}", f"127.0.0.{20 + i}", cluster="CL", max_live_migrations=2))
    for i in (1, 2):
        add_vm(fabric, f"c{i}", host="n1", folder="C:\\ClusterStorage\\Volume1", is_clustered=True)
    return fabric


def test_it_holds_cluster_nodes_to_the_cluster_parallel_limit():
    fabric = make_cluster(parallel=1)
    first, second = fabric.vms["id-c1"], fabric.vms["id-c2"]
    m = move(fabric, first, "n2")

    error = refusal(fabric, second, "n3")  # the nodes' own limit (2) would allow it
    assert error.code == "21501"
    assert "'1'" in error.message
    assert fabric.record[-1]["cmdlet"] == "start_migration"
    assert fabric.record[-2]["cmdlet"] == "Move-ClusterVirtualMachineRole"
    assert fabric.record[-2]["migration_id"] == m

    fabric.set_cluster_parallel_migrations("CL", 2)
    assert move(fabric, second, "n3")
    assert fabric.inventory("n3.test").cluster.max_parallel_migrations == 2


# --- what Hyper-V refuses ------------------------------------------------------------------------


def test_it_refuses_a_destination_without_the_memory():
    fabric = make_fabric()
    vm = add_vm(fabric, "big", memory_gib=64)
    fabric.hosts["h2.test"].memory_available_bytes = 32 * GIB

    error = refusal(fabric, vm, "h2")

    assert error.code == "0x800705AA"
    assert "another host" in error.remedy


def test_it_reserves_destination_memory_while_a_move_runs():
    fabric = make_fabric()
    a, b = add_vm(fabric, "a", memory_gib=40), add_vm(fabric, "b", host="h3", memory_gib=40)
    fabric.hosts["h2.test"].memory_available_bytes = 64 * GIB
    move(fabric, a, "h2")

    assert refusal(fabric, b, "h2").code == "0x800705AA"


def test_it_refuses_a_missing_virtual_switch():
    fabric = make_fabric()
    vm = add_vm(fabric, "dmz", switch_names=["vSwitch-Prod", "vSwitch-DMZ"])

    error = refusal(fabric, vm, "h2")

    assert error.code == "33012"
    assert "vSwitch-DMZ" in error.message


def test_it_refuses_kerberos_without_delegation():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm")
    fabric.hosts["h2.test"].delegation_configured = False

    assert refusal(fabric, vm, "h2").code == "0x8009030E"
    fabric.hosts["h1.test"].auth_type = "credssp"
    assert move(fabric, vm, "h2")


def test_it_refuses_to_move_a_shared_vhdx_but_not_the_other_files():
    fabric = make_fabric()
    shared = SimDisk(f"{SHARE}\\fc\\shared.vhdx", 100 * GIB, shared=True, attached=["id-fc1", "id-fc2"])
    own = SimDisk(f"{SHARE}\\fc1\\os.vhdx", 30 * GIB)
    vm = add_vm(fabric, "fc1", disks=[own, shared])

    whole = refusal(fabric, vm, None, kind="storage", storage_path="D:\\VMs\\fc1")
    assert whole.code == "OperationFailed"
    assert "shared" in whole.message
    assert "Shut down" in whole.remedy
    assert refusal(fabric, vm, "h2", kind="live_vsm", storage_path="D:\\VMs\\fc1").code == "OperationFailed"
    assert move(fabric, vm, None, kind="storage", vhds=((own.path, f"{SHARE}\\fc1-new\\os.vhdx"),))
    run(fabric, fabric.migration_of_vm(vm.id).id)
    assert [d.path for d in vm.disks] == [f"{SHARE}\\fc1-new\\os.vhdx", shared.path]
    assert move(fabric, vm, "h2")  # a plain live migration leaves the files alone


def test_it_refuses_storage_options_for_a_clustered_vm():
    fabric = make_cluster()
    vm = fabric.vms["id-c1"]

    error = refusal(fabric, vm, None, kind="storage", storage_path="C:\\ClusterStorage\\Volume2\\c1")

    assert error.code == "InvalidParameter"
    assert "Remove the virtual machine from the cluster" in error.remedy


def test_it_refuses_to_live_migrate_a_vm_that_is_not_running():
    fabric = make_fabric()
    vm = add_vm(fabric, "off", state="off")

    assert refusal(fabric, vm, "h2").code == "InvalidState"
    assert move(fabric, vm, "h2", kind="network")


def test_it_refuses_when_migration_is_disabled_on_a_host():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm")
    fabric.set_host_settings("h2.test", migration_enabled=False)

    assert "not enabled" in refusal(fabric, vm, "h2").message
    assert move(fabric, vm, None, kind="storage", storage_path="D:\\VMs\\vm")  # storage moves need no migration


def test_it_refuses_a_configuration_version_the_destination_cannot_run():
    fabric = make_fabric()
    vm = add_vm(fabric, "new", config_version="10.0")
    fabric.hosts["h2.test"].supported_config_versions = ["8.0", "9.0"]

    assert refusal(fabric, vm, "h2").code == "10698"


def test_it_refuses_a_stale_compatibility_vector_inside_the_cluster_until_a_restart():
    fabric = make_cluster()
    vm = fabric.vms["id-c1"]
    vm.compat_vector_stale = True

    error = refusal(fabric, vm, "n2")
    assert error.code == "21502"
    assert "Restart" in error.remedy

    fabric.restart_vm(vm.id)
    assert move(fabric, vm, "n2")


def test_it_refuses_a_live_move_when_the_destination_cannot_reach_the_files():
    fabric = make_fabric()
    vm = add_vm(fabric, "local", folder="D:\\Hyper-V")

    assert refusal(fabric, vm, "h2").code == "OperationFailed"
    assert move(fabric, vm, "h2", kind="live_vsm")


def test_it_refuses_a_shared_nothing_move_that_leaves_files_the_destination_cannot_reach():
    fabric = make_fabric()
    os_disk, data = SimDisk("D:\\Hyper-V\\vm\\os.vhdx", 20 * GIB), SimDisk("D:\\Hyper-V\\vm\\data.vhdx", 5 * GIB)
    vm = add_vm(fabric, "vm", folder="D:\\Hyper-V", disks=[os_disk, data])

    error = refusal(fabric, vm, "h2", kind="live_vsm", vhds=((os_disk.path, "E:\\VMs\\os.vhdx"),))

    assert error.code == "InvalidParameter"
    assert "D:\\Hyper-V\\vm" in error.message


def test_it_refuses_a_second_move_of_a_migrating_vm():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm")
    move(fabric, vm, "h2")

    assert refusal(fabric, vm, "h3").code == "InvalidState"


def test_it_reports_unknown_and_unreachable_hosts():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm")
    fabric.set_reachable("h1.test", False)

    with pytest.raises(HostUnreachable):
        fabric.inventory("h1.test")
    with pytest.raises(HostUnreachable):
        fabric.inventory("nope.test")
    with pytest.raises(HostUnreachable):
        move(fabric, vm, "h2")
    fabric.set_reachable("h1.test", True)
    assert fabric.inventory("h1.test").vms[0].name == "vm"


# --- failures and cancelling ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("memory", "0x800705AA"),
        ("network", "0x8007274C"),
        ("switch", "33012"),
        ("delegation", "0x8009030E"),
        ("drive_letters", "20413"),
    ],
)
def test_it_fails_an_injected_failure_and_leaves_the_vm_running_on_the_source(kind, code):
    fabric = make_fabric()
    vm = add_vm(fabric, "vm", memory_gib=8)
    available = fabric.hosts["h2.test"].memory_available_bytes
    fabric.inject_failure(vm.id, kind)

    m = run(fabric, move(fabric, vm, "h2"), step=0.5)
    status = fabric.migration_status(m.id)

    assert status.state == "failed"
    assert status.error.code == code
    assert status.error.remedy
    assert vm.host == "h1.test"
    assert vm.state == "running"
    assert fabric.hosts["h2.test"].memory_available_bytes == available
    assert not fabric.inventory("h1.test").vms[0].migrating
    assert fabric.inventory("h2.test").vms == ()


def test_it_fails_for_lack_of_memory_before_ten_percent():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm", memory_gib=8)
    fabric.inject_failure(vm.id, "memory")

    m = run(fabric, move(fabric, vm, "h2"), step=0.5)

    assert 0 < m.percent < 10
    assert elapsed(m) < 0.1 * 8 * GIB / GBIT


def test_it_drops_the_network_at_the_percent_asked():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm", memory_gib=8, dirty=20.0)
    mid = move(fabric, vm, "h2")
    fabric.advance(10)
    assert fabric.migration_status(mid).percent < 40

    fabric.inject_failure(mid, "network", at_percent=40)
    m = run(fabric, mid)

    assert m.state == "failed"
    assert 40 <= fabric.migration_status(mid).percent <= 41
    assert m.error["code"] == "0x8007274C"


def test_it_cancels_a_running_migration():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm", memory_gib=8)
    mid = move(fabric, vm, "h2")
    fabric.advance(5)

    fabric.cancel_migration(mid)
    fabric.advance(100)

    assert fabric.migration_status(mid).state == "cancelled"
    assert vm.host == "h1.test"
    assert fabric.hosts["h2.test"].memory_available_bytes == fabric.hosts["h2.test"].memory_total_bytes
    with pytest.raises(HyperVError) as info:
        fabric.cancel_migration(mid)
    assert info.value.code == "InvalidState"
    with pytest.raises(HyperVError):
        fabric.migration_status("no-such-job")


# --- what a finished move changes ----------------------------------------------------------------


def test_it_moves_the_vm_and_its_memory_with_a_live_migration():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm", memory_gib=16)
    src, dst = fabric.hosts["h1.test"], fabric.hosts["h2.test"]
    mid = move(fabric, vm, "h2")
    fabric.advance(20)

    running = fabric.migration_status(mid)
    assert running.state == "running"
    assert [v.migrating for v in fabric.inventory("h1.test").vms] == [True]
    assert running.transfer_rate_mbps == pytest.approx(125.0)
    assert running.dirty_rate_mbps == 10.0
    assert running.pass_number == 1
    assert running.bytes_sent == pytest.approx(20 * GBIT, rel=1e-6)
    assert running.bytes_remaining > 0
    assert dst.memory_available_bytes == dst.memory_total_bytes - 16 * GIB  # reserved at the start

    run(fabric, mid)
    assert vm.host == "h2.test"
    assert src.memory_available_bytes == src.memory_total_bytes
    assert [v.name for v in fabric.inventory("h2.test").vms] == ["vm"]
    assert not fabric.inventory("h2.test").vms[0].migrating
    assert fabric.migration_status(mid).percent == 100


def test_it_reports_progress_that_only_goes_up_and_reaches_100_at_the_end():
    fabric = make_fabric()
    a = add_vm(fabric, "a", memory_gib=4, dirty=60.0)
    b = add_vm(fabric, "b", memory_gib=1, dirty=5.0)
    first = move(fabric, a, "h2")
    fabric.advance(3)
    move(fabric, b, "h3")  # halves the first one's rate: its passes grow
    samples = []
    while fabric.migrations[first].state == "running":
        fabric.advance(1)
        samples.append(fabric.migration_status(first))

    percents = [s.percent for s in samples]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert max(percents[:-1]) <= 99
    assert [s.bytes_sent for s in samples] == sorted(s.bytes_sent for s in samples)
    assert len(set(percents)) > 20


def test_it_moves_the_files_with_a_storage_migration():
    fabric = make_fabric()
    vm = add_vm(fabric, "vm")
    m = run(fabric, move(fabric, vm, None, kind="storage", storage_path="D:\\VMs\\vm"))

    assert m.state == "completed"
    assert vm.host == "h1.test"
    assert vm.config_path == "D:\\VMs\\vm"
    assert vm.disks[0].path == "D:\\VMs\\vm\\vm.vhdx"
    # 20 GiB at the host's storage bandwidth.
    assert elapsed(m) == pytest.approx(20 * GIB / (fabric.hosts["h1.test"].storage_mbps * MB), rel=1e-3)
    assert fabric.migration_status(m.id).blackout_ms is None


def test_it_moves_vm_and_files_with_live_vsm_and_marks_the_vector_stale_on_a_newer_host():
    fabric = make_fabric()
    fabric.hosts["h1.test"].supported_config_versions = ["8.0", "9.0"]  # an older Hyper-V
    vm = add_vm(fabric, "vm", folder="D:\\Hyper-V", config_version="9.0")

    m = run(fabric, move(fabric, vm, "h2", kind="live_vsm", storage_path="E:\\VMs\\vm"))

    assert m.state == "completed"
    assert (vm.host, vm.config_path, vm.disks[0].path) == ("h2.test", "E:\\VMs\\vm", "E:\\VMs\\vm\\vm.vhdx")
    assert vm.compat_vector_stale
    # The 20 GiB disk crossed the 1 GbE link first (storage is faster), then the 4 GiB of memory.
    assert elapsed(m) == pytest.approx((20 + 4) * GIB / GBIT, rel=0.05)
    assert elapsed(m) > (20 + 4) * GIB / GBIT


def test_it_takes_a_clustered_vm_out_of_its_cluster_for_the_move_and_back_in_after():
    fabric = make_cluster()
    fabric.add_cluster(SimCluster("CL2", "cl2.test", 11))
    fabric.add_host(SimHost("m1.test", "m1", "127.0.0.31", cluster="CL2", shares=[SHARE]))
    fabric.hosts["n1.test"].shares = [SHARE]
    vm = add_vm(fabric, "ha", host="n1", is_clustered=True)
    mid = move(fabric, vm, "m1")

    assert not fabric.inventory("n1.test").vms[-1].is_clustered  # high availability lost meanwhile
    run(fabric, mid)

    assert vm.host == "m1.test"
    assert vm.is_clustered
    cmdlets = [r["cmdlet"] for r in fabric.record]
    assert cmdlets[-3:] == ["Remove-ClusterGroup", "Move-VM", "Add-ClusterVirtualMachineRole"]
    assert fabric.record[-1]["params"]["Cluster"] == "CL2"


def test_it_runs_a_quick_migration_as_one_long_blackout():
    fabric = make_cluster()
    vm = fabric.vms["id-c1"]

    m = run(fabric, move(fabric, vm, "n2", kind="quick"))

    assert vm.host == "n2.test"
    assert m.blackout_s == pytest.approx(elapsed(m))
    assert fabric.record[-1]["params"]["MigrationType"] == "Quick"


# --- the record, persistence, determinism --------------------------------------------------------


def test_it_records_each_command_once_with_its_parameters_as_given():
    fabric = make_fabric()
    name = 'legacy-app\'; $(Remove-VM -Name *) ; "x"'
    vm = add_vm(fabric, name)
    mid = move(fabric, vm, "h2")
    run(fabric, mid)
    with pytest.raises(HyperVError):
        move(fabric, add_vm(fabric, "off", state="off"), "h2")

    started = [r for r in fabric.record if r.get("migration_id") == mid]
    assert len(started) == 1
    assert started[0]["cmdlet"] == "Move-VM"
    assert started[0]["params"]["Name"] == name
    assert started[0]["request"]["destination"] == "h2.test"
    assert fabric.record[-1]["result"] == "refused"
    assert fabric.record[-1]["code"] == "InvalidState"


def scenario() -> Fabric:
    fabric = make_fabric()
    vms = [add_vm(fabric, f"vm{i}", host=h, memory_gib=2 + i, dirty=15.0 * i) for i, h in enumerate(["h1", "h1", "h3"])]
    move(fabric, vms[0], "h2")
    fabric.advance(3.3)
    move(fabric, vms[1], "h3", kind="live_vsm", storage_path="D:\\VMs\\vm1")
    fabric.inject_failure(vms[2].id, "network", at_percent=30)
    move(fabric, vms[2], "h2", performance_option="compression")
    fabric.advance(7.1)
    return fabric


def test_it_survives_a_json_round_trip_in_the_middle_of_migrations():
    original = scenario()
    data = json.loads(json.dumps(original.to_dict()))
    copy = Fabric.from_dict(data)

    assert copy.to_dict() == original.to_dict()
    original.advance(500)
    copy.advance(500)
    assert copy.to_dict() == original.to_dict()
    assert {m.state for m in copy.migrations.values()} == {"completed", "failed"}


def test_it_gives_the_same_world_for_the_same_calls():
    first, second = scenario(), scenario()
    first.advance(100)
    second.advance(100)

    assert first.to_dict() == second.to_dict()
    assert list(first.migrations) == list(second.migrations)


def test_a_stopped_link_stalls_a_move_that_is_still_preparing_without_failing_the_clock():
    fabric = make_fabric()
    vm = add_vm(fabric, "a", memory_gib=4, dirty=10.0)
    fabric.set_link("h1.test", 0.0)  # before the move leaves its prepare phase (fault injection)
    migration = fabric.migrations[move(fabric, vm, "h2")]

    fabric.advance(600)

    assert migration.state == "running" and migration.memory_done == 0
    assert 0 <= migration.percent < 100
