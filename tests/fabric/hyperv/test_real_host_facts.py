"""What a real host reports and refuses, as the emulator and the simulator must model it (hyperv.md section 9):
no delegation property, no MaximumParallelMigrations on a WS2019 cluster, -Vhds keeping the file name,
Compare-VM reporting configuration only, shares known from paths rather than open SMB sessions."""

import pytest

from fabric.emulator import objects as o
from fabric.emulator.records import plain
from fabric.hyperv.api import HyperVError, MoveRequest
from fabric.sim.demo import SHARE_FQDN, SHARE_SHORT, build_demo_fabric
from fabric.sim.world import GIB

D = ".contoso.test"


def vm_of(fabric, name):
    vm = fabric.vm_by_name(name)
    return vm.id, vm.host


def test_no_host_object_tells_kerberos_delegation():
    # Delegation is an attribute of the computer account in Active Directory, not of Get-VMHost.
    fabric = build_demo_fabric()
    for host in fabric.hosts.values():
        properties = plain(o.vm_host(host))
        assert not [name for name in properties if "delegation" in name.lower()]


def test_a_ws2019_cluster_has_no_maximum_parallel_migrations(driver, conns):
    old = driver.inventory(conns["hv-old1"]).cluster
    new = driver.inventory(conns["hv-new1"]).cluster

    assert old.name == "CL-OLD" and old.max_parallel_migrations is None  # no property: no cluster cap
    assert new.max_parallel_migrations == 1
    assert "MaximumParallelMigrations" not in plain(o.cluster_object(build_demo_fabric().clusters["CL-OLD"]))


def test_setting_the_cap_of_a_cluster_without_the_property_is_refused(driver, conns, emu_store):
    with pytest.raises(HyperVError) as info:
        driver.set_cluster_parallel_migrations(conns["hv-old1"], "CL-OLD", 3)

    assert info.value.code == "PropertyNotFound"
    assert "cannot be found on this object" in info.value.message
    with emu_store.session() as fabric:
        assert fabric.clusters["CL-OLD"].max_parallel_migrations is None


def test_a_node_of_a_cluster_without_the_property_works_to_its_own_limit():
    fabric = build_demo_fabric()
    vm_ids = [vm.id for vm in fabric.vms.values() if vm.host == "hv-old1" + D and vm.state == "running"]
    assert fabric.hosts["hv-old1" + D].max_live_migrations == 2
    # Two at once between the nodes of CL-OLD: the host limit (2), not a cluster cap of 1.
    for vm_id in vm_ids[:2]:
        fabric.start_migration(MoveRequest(vm_id, "hv-old1" + D, "hv-old2" + D, "live"))
    with pytest.raises(HyperVError) as info:
        fabric.start_migration(MoveRequest(vm_ids[2], "hv-old1" + D, "hv-old2" + D, "live"))
    assert info.value.code == "21501" and "'2'" in info.value.message


def test_move_vmstorage_refuses_a_renamed_disk_and_changes_nothing(driver, conns, emu_store):
    with emu_store.session() as fabric:
        vm_id, host = vm_of(fabric, "file-s01")
        disk = fabric.vms[vm_id].disks[0].path
    request = MoveRequest(vm_id, host, host, "storage", vhds=((disk, "E:\\Fast\\renamed.vhdx"),))

    with pytest.raises(HyperVError) as info:
        driver.start_migration(conns["hv-s1"], request)

    # Per the -Vhds help of Move-VMStorage: the virtual hard disk name must be identical in both entries.
    assert info.value.code == "InvalidParameter"
    assert "The virtual hard disk name must be identical in both entries" in info.value.message
    with emu_store.session() as fabric:
        assert fabric.vms[vm_id].disks[0].path == disk and not fabric.migrations


def test_move_vmstorage_keeps_the_name_in_another_folder(driver, conns, emu_store):
    with emu_store.session() as fabric:
        vm_id, host = vm_of(fabric, "file-s01")
        disk = fabric.vms[vm_id].disks[0].path
    name = disk.rsplit("\\", 1)[-1]
    request = MoveRequest(vm_id, host, host, "storage", vhds=((disk, "E:\\Fast\\" + name),))

    assert driver.start_migration(conns["hv-s1"], request)


def test_compare_vm_reports_configuration_not_what_the_move_meets():
    fabric = build_demo_fabric()
    vm_id, host = vm_of(fabric, "ci-runner01")  # hv-s2 -> hv-s1: a clean Live move on the share
    destination = fabric.hosts["hv-s1" + D]
    request = MoveRequest(vm_id, host, destination.fqdn, "live")
    # What only the move meets: no memory on the destination, no delegation in AD, the limit reached.
    destination.memory_available_bytes = 1 * GIB
    fabric.hosts[host].delegation_configured = False
    fabric.hosts[host].max_live_migrations = 0

    assert fabric.compare(request) == ()
    with pytest.raises(HyperVError) as info:
        fabric.start_migration(request)
    assert info.value.code in ("21501", "0x800705AA", "0x8009030E")


def test_compare_vm_still_reports_a_missing_switch():
    fabric = build_demo_fabric()
    vm_id, host = vm_of(fabric, "legacy-fax")
    fabric.hosts["hv-new1" + D].memory_available_bytes = 0

    found = fabric.compare(MoveRequest(vm_id, host, "hv-new1" + D, "live"))

    assert [(i.message_id, i.source) for i in found] == [(33012, "Network Adapter")]


def test_a_move_inside_a_cluster_needs_no_hyperv_migration_settings_nor_delegation():
    fabric = build_demo_fabric()
    vm_id, host = vm_of(fabric, "api-01")  # HA VM of CL-NEW on its CSV
    for node in ("hv-new1", "hv-new2"):
        h = fabric.hosts[node + D]
        h.migration_enabled, h.migration_networks, h.use_any_network = False, [], False
        h.delegation_configured = False
    # The cluster moves its role with its own account and networks (hyperv.md section 9).
    assert fabric.start_migration(MoveRequest(vm_id, host, "hv-new2" + D, "live"))


def test_a_move_between_hosts_fails_for_want_of_delegation_with_the_code_mid_text():
    fabric = build_demo_fabric()
    vm_id, host = vm_of(fabric, "ci-runner01")
    fabric.hosts[host].delegation_configured = False

    with pytest.raises(HyperVError) as info:
        fabric.start_migration(MoveRequest(vm_id, host, "hv-s1" + D, "live"))

    assert info.value.code == "0x8009030E"
    assert "(0x8009030E). Failed to authenticate" in info.value.message
    assert "use any authentication protocol" in info.value.remedy


def test_the_inventory_reads_shares_from_paths_not_smb_sessions(driver, conns, emu_store):
    with emu_store.session() as fabric:
        # hv-s3 could reach both shares (say), but nothing of it lies there: an idle host has no SMB session
        # to show, and the console must not rely on sessions either way.
        fabric.hosts["hv-s3" + D].shares = [SHARE_FQDN, SHARE_SHORT]
        fabric.hosts["hv-s1" + D].shares = []
        fabric.touch()

    s1 = driver.inventory(conns["hv-s1"])
    s3 = driver.inventory(conns["hv-s3"])

    assert [s.unc_path.lower() for s in s1.shares] == [SHARE_FQDN.lower()]  # its VMs and default folders
    assert s3.shares == ()
