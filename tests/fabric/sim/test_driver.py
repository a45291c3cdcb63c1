"""The simulator driver's whole Driver API over a shared fabric file (manual clock)."""

import pytest

from fabric.hyperv.api import HostSettings, HostUnreachable, HyperVError, MoveRequest
from fabric.sim.demo import build_demo_fabric
from fabric.sim.driver import SimDriver
from fabric.sim.store import FabricStore

D = ".contoso.test"
CSV_NEW = "C:\\ClusterStorage\\Volume1\\VMs"


@pytest.fixture
def store(tmp_path):
    store = FabricStore(tmp_path / "fabric.sqlite3", time_scale=None)
    store.create(build_demo_fabric())
    return store


@pytest.fixture
def driver(store):
    return SimDriver(FabricStore(store.path, time_scale=None))


@pytest.fixture
def conns(store):
    with store.session() as fabric:
        return {c.fqdn.split(".")[0]: c for c in fabric.connections()}


def vm_of(store, name):
    with store.session() as fabric:
        vm = fabric.vm_by_name(name)
        return vm.id, vm.host


def record(store):
    with store.session() as fabric:
        return list(fabric.record)


def run_to_end(store, driver, conn, migration_id):
    for _ in range(10_000):
        status = driver.migration_status(conn, migration_id)
        if status.state != "running":
            return status
        store.advance(5)
    raise AssertionError("the migration never ended")


def test_get_vm_answers_for_the_host_the_vm_runs_on_only(store, driver, conns):
    vm_id, _ = vm_of(store, "dc01")

    vm = driver.get_vm(conns["hv-s3"], vm_id)

    assert (vm.id, vm.name, vm.state) == (vm_id, "dc01", "running")
    assert driver.get_vm(conns["hv-s1"], vm_id) is None
    assert driver.get_vm(conns["hv-s3"], "00000000-0000-0000-0000-000000000000") is None


def test_compare_reports_a_missing_switch_without_starting_anything(store, driver, conns):
    vm_id, host = vm_of(store, "legacy-fax")

    found = driver.compare(conns["hv-old1"], MoveRequest(vm_id, host, "hv-new1" + D, "live"))

    assert [i.message_id for i in found] == [33012]
    assert found[0].message.startswith("Could not find Ethernet switch 'vSwitch-Legacy'")
    assert found[0].source == "Network Adapter"
    with store.session() as fabric:
        assert fabric.migrations == {}
        assert fabric.vm_by_name("legacy-fax").host == host
    assert record(store)[-1]["cmdlet"] == "Compare-VM"
    assert record(store)[-1]["params"]["vm_id"] == vm_id


def test_compare_reports_every_incompatibility_of_a_move(store, driver, conns):
    vm_id, host = vm_of(store, "web-dmz01")

    found = driver.compare(conns["hv-s1"], MoveRequest(vm_id, host, "hv-s3" + D, "live_vsm"))

    assert {i.message_id for i in found} == {10698, 33012}
    assert driver.compare(conns["hv-s1"], MoveRequest(vm_id, host, "hv-s2" + D, "live")) == ()


def test_compare_raises_for_a_vm_that_is_not_there(store, driver, conns):
    vm_id, _ = vm_of(store, "dc01")
    with pytest.raises(HyperVError) as info:
        driver.compare(conns["hv-s1"], MoveRequest(vm_id, "hv-s1" + D, "hv-s2" + D, "live"))
    assert info.value.code == "NotFound"
    assert record(store)[-1]["result"] == "refused"


def test_find_migration_finds_the_latest_move_of_a_vm_running_or_ended(store, driver, conns):
    vm_id, host = vm_of(store, "web-dmz02")
    s2, s1 = conns["hv-s2"], conns["hv-s1"]
    assert driver.find_migration(s2, vm_id) is None

    first = driver.start_migration(s2, MoveRequest(vm_id, host, s1.fqdn, "live"))
    store.advance(2)
    running = driver.find_migration(s2, vm_id)
    ended = run_to_end(store, driver, s2, first)
    back = driver.start_migration(s1, MoveRequest(vm_id, s1.fqdn, s2.fqdn, "live"))

    assert (running.migration_id, running.state) == (first, "running")
    assert ended.state == "completed"
    assert driver.find_migration(s1, vm_id).migration_id == back  # the destination knows the job too
    assert driver.find_migration(s2, vm_id).migration_id == back
    assert driver.find_migration(conns["hv-s3"], vm_id) is None


def test_a_vm_removed_from_its_cluster_moves_like_a_standalone_vm_with_its_storage(store, driver, conns):
    vm_id, host = vm_of(store, "erp-db01")  # on a CSV of CL-OLD: only a shared-nothing move takes it to CL-NEW
    old1, new1 = conns["hv-old1"], conns["hv-new1"]
    request = MoveRequest(vm_id, host, new1.fqdn, "live_vsm", storage_path=f"{CSV_NEW}\\erp-db01")
    assert [i.source for i in driver.compare(old1, request)] == ["Cluster role"]

    driver.remove_cluster_role(old1, vm_id)
    assert not driver.get_vm(old1, vm_id).is_clustered
    assert driver.compare(old1, request) == ()
    status = run_to_end(store, driver, old1, driver.start_migration(old1, request))
    arrived = driver.get_vm(new1, vm_id)

    assert status.state == "completed"
    assert not arrived.is_clustered  # the console removed the role: it adds it back itself
    assert arrived.config_path == f"{CSV_NEW}\\erp-db01"
    driver.add_cluster_role(new1, vm_id)
    assert driver.get_vm(new1, vm_id).is_clustered
    cmdlets = [(r["cmdlet"], r.get("result")) for r in record(store)]
    assert ("Remove-ClusterGroup", "removed") in cmdlets
    assert cmdlets[-1] == ("Add-ClusterVirtualMachineRole", "added")
    assert record(store)[-1]["params"] == {"VMId": vm_id, "Cluster": "CL-NEW"}
    assert [c for c, _ in cmdlets].count("Remove-ClusterGroup") == 1  # no implicit removal as well


def test_a_clustered_vm_moved_across_clusters_without_removal_still_leaves_and_rejoins_implicitly(store, driver, conns):
    vm_id, host = vm_of(store, "erp-web01")  # on the share both clusters reach
    old1, new1 = conns["hv-old1"], conns["hv-new1"]

    run_to_end(store, driver, old1, driver.start_migration(old1, MoveRequest(vm_id, host, new1.fqdn, "live")))

    assert driver.get_vm(new1, vm_id).is_clustered
    cmdlets = [r["cmdlet"] for r in record(store)]
    assert cmdlets[-3:] == ["Remove-ClusterGroup", "Move-VM", "Add-ClusterVirtualMachineRole"]


def test_cluster_role_changes_are_refused_where_hyperv_refuses_them(store, driver, conns):
    standalone, _ = vm_of(store, "dc01")
    local_vm, _ = vm_of(store, "print01")

    with pytest.raises(HyperVError) as not_clustered:
        driver.remove_cluster_role(conns["hv-s3"], standalone)
    with pytest.raises(HyperVError) as no_cluster:
        driver.add_cluster_role(conns["hv-s3"], standalone)
    with pytest.raises(HyperVError) as already:
        driver.add_cluster_role(conns["hv-old1"], local_vm)

    assert not_clustered.value.code == "ObjectNotFound"
    assert no_cluster.value.code == "InvalidOperation"
    assert already.value.code == "InvalidState"
    assert [r["result"] for r in record(store)[-3:]] == ["refused"] * 3


def test_a_vm_on_local_disks_cannot_be_made_highly_available(store, driver, conns):
    vm_id, _ = vm_of(store, "print01")
    old1 = conns["hv-old1"]
    driver.remove_cluster_role(old1, vm_id)
    with store.session() as fabric:
        fabric.vms[vm_id].config_path = "D:\\Hyper-V\\print01"
        fabric.touch()

    with pytest.raises(HyperVError) as info:
        driver.add_cluster_role(old1, vm_id)

    assert info.value.code == "OperationFailed"
    assert info.value.remedy


def test_set_host_settings_returns_the_values_read_back(store, driver, conns):
    s3 = conns["hv-s3"]

    info = driver.set_host_settings(
        s3, HostSettings(max_live_migrations=4, performance_option="smb", migration_enabled=False)
    )

    assert (info.max_live_migrations, info.performance_option, info.migration_enabled) == (4, "smb", False)
    assert info.max_storage_migrations == 2  # left as it was
    assert driver.inventory(s3).host == info
    assert record(store)[-1]["params"] == {
        "ComputerName": s3.fqdn,
        "max_live_migrations": 4,
        "performance_option": "smb",
        "migration_enabled": False,
    }
    with pytest.raises(HyperVError) as info:
        driver.set_host_settings(s3, HostSettings(performance_option="fast"))
    assert info.value.code == "InvalidParameter"
    assert driver.inventory(s3).host.performance_option == "smb"


def test_every_method_meets_an_unreachable_host(store, driver, conns):
    s3 = conns["hv-s3"]
    vm_id, _ = vm_of(store, "dc01")
    with store.session() as fabric:
        fabric.set_reachable(s3.fqdn, False)

    for call in (
        lambda: driver.get_vm(s3, vm_id),
        lambda: driver.compare(s3, MoveRequest(vm_id, s3.fqdn, "hv-s1" + D, "live")),
        lambda: driver.find_migration(s3, vm_id),
        lambda: driver.remove_cluster_role(s3, vm_id),
        lambda: driver.add_cluster_role(s3, vm_id),
        lambda: driver.set_host_settings(s3, HostSettings(max_live_migrations=3)),
    ):
        with pytest.raises(HostUnreachable):
            call()
