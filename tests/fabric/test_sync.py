import threading
import time

import pytest
from django.core.management import CommandError, call_command

from fabric.driver import sim_store
from fabric.hyperv.api import MoveRequest
from fabric.models import Cluster, Host, SmbShare, StorageLocation, VirtualDisk, VirtualMachine
from fabric.sim.demo import build_demo_fabric, host_connections
from fabric.sim.driver import SimDriver
from fabric.sync import disk_key, share_for_path, sync_inventory

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(settings, tmp_path):
    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    settings.SIM_TIME_SCALE = None  # manual clock: only explicit advance() moves time
    store = sim_store()
    store.create(build_demo_fabric(seed=1))
    return store


@pytest.fixture
def driver(store):
    return SimDriver(store)


def register_hosts(store):
    with store.session() as fabric:
        connections = host_connections(fabric)
    for conn in connections:
        Host.objects.create(
            fqdn=conn.fqdn, name=conn.fqdn.split(".")[0], address=conn.address, port=conn.port, transport=conn.transport
        )
    return connections


def snapshot():
    return {
        "clusters": sorted(Cluster.objects.values_list("fqdn", "functional_level", "max_parallel_migrations")),
        "hosts": sorted(
            Host.objects.values_list("fqdn", "cluster__fqdn", "reachable", "memory_available_bytes", "virtual_switches")
        ),
        "shares": sorted((s.unc_path, sorted(h.fqdn for h in s.hosts.all())) for s in SmbShare.objects.all()),
        "vms": sorted(
            VirtualMachine.objects.values_list("guid", "name", "host__fqdn", "state", "share__unc_path", "removed")
        ),
        "disks": sorted((d.key, d.shared, sorted(str(v.guid) for v in d.vms.all())) for d in VirtualDisk.objects.all()),
        "locations": sorted(StorageLocation.objects.values_list("host__fqdn", "path", "is_default")),
    }


def test_it_pulls_every_host_of_the_demo_fabric(store, driver):
    connections = register_hosts(store)

    report = sync_inventory(driver)

    assert sorted(report.synced) == sorted(c.fqdn for c in connections)
    assert report.unreachable == {}
    with store.session() as fabric:
        expected_vms = sum(len(fabric.inventory(c.fqdn).vms) for c in connections)
    assert VirtualMachine.objects.filter(removed=False).count() == expected_vms >= 40
    assert Host.objects.filter(reachable=True, last_sync__isnull=False).count() == len(connections)
    assert Cluster.objects.count() == 2
    assert all(h.cluster is not None for h in Host.objects.filter(fqdn__in=Cluster.objects.values("nodes__fqdn")))


def test_it_records_shared_vhdx_share_and_compat_vector(store, driver):
    register_hosts(store)
    sync_inventory(driver)

    shared = VirtualDisk.objects.filter(shared=True)
    assert shared.exists()
    assert all(d.vms.count() >= 2 for d in shared)
    assert VirtualMachine.objects.filter(compat_vector_stale=True).exists()
    on_share = VirtualMachine.objects.filter(share__isnull=False)
    assert on_share.exists()
    for vm in on_share:
        assert vm.config_path.lower().startswith(vm.share.unc_path.lower())
    assert SmbShare.objects.filter(unc_path__istartswith="\\\\fs01\\").exists()


def test_it_is_idempotent(store, driver):
    register_hosts(store)
    sync_inventory(driver)
    first = snapshot()

    sync_inventory(driver)

    assert snapshot() == first


def test_it_marks_an_unreachable_host_and_syncs_the_others(store, driver):
    register_hosts(store)
    sync_inventory(driver)
    down = Host.objects.filter(cluster__isnull=True).order_by("fqdn").first()
    vms_before = set(VirtualMachine.objects.filter(host=down, removed=False).values_list("guid", flat=True))
    with store.session() as fabric:
        fabric.set_reachable(down.fqdn, False)

    report = sync_inventory(driver)

    down.refresh_from_db()
    assert down.reachable is False
    assert down.fqdn in down.last_error and "unreachable" in down.last_error
    assert report.unreachable.keys() == {down.fqdn}
    assert len(report.synced) == Host.objects.count() - 1
    # What was last seen on the unreachable host is kept, not marked removed.
    assert set(VirtualMachine.objects.filter(host=down, removed=False).values_list("guid", flat=True)) == vms_before
    assert vms_before


def test_it_marks_a_vm_gone_from_hyperv_as_removed_not_deleted(store, driver):
    register_hosts(store)
    sync_inventory(driver)
    vm = VirtualMachine.objects.filter(state="off").first()
    with store.session() as fabric:  # as Remove-VM would: the VM is off, so no memory to give back
        del fabric.vms[str(vm.guid)]
        fabric.touch()

    report = sync_inventory(driver)

    vm.refresh_from_db()
    assert vm.removed is True
    assert report.vms_removed == 1
    assert VirtualMachine.objects.filter(removed=True).count() == 1


def test_it_follows_a_vm_that_moved(store, driver):
    register_hosts(store)
    sync_inventory(driver)
    s1, s2 = Host.objects.get(name="hv-s1"), Host.objects.get(name="hv-s2")
    vm = VirtualMachine.objects.filter(host=s1, state="running", share__isnull=False).first()
    with store.session() as fabric:
        fabric.start_migration(MoveRequest(vm_id=str(vm.guid), source=s1.fqdn, destination=s2.fqdn, kind="live"))

    sync_inventory(driver)
    vm.refresh_from_db()
    assert vm.migrating is True and vm.host == s1

    with store.session() as fabric:
        fabric.advance(3600)
    sync_inventory(driver)

    vm.refresh_from_db()
    assert vm.host == s2
    assert vm.migrating is False
    assert vm.removed is False


def test_a_vm_that_finished_moving_between_two_hosts_reads_counts_once_on_its_destination(store, driver):
    """Hosts are read one after another: the source, read while the move ran, still reports the VM
    (migrating) that the destination, read after it ended, reports too. One row, on the destination."""
    connections = {c.fqdn: c for c in register_hosts(store)}
    sync_inventory(driver)
    s1, s2 = Host.objects.get(name="hv-s1"), Host.objects.get(name="hv-s2")
    vm = VirtualMachine.objects.filter(host=s1, state="running", share__isnull=False).first()
    disks = sorted(vm.disks.values_list("key", flat=True))
    with store.session() as fabric:
        fabric.start_migration(MoveRequest(vm_id=str(vm.guid), source=s1.fqdn, destination=s2.fqdn, kind="live"))
    source_before = driver.inventory(connections[s1.fqdn])
    with store.session() as fabric:
        fabric.advance(3600)

    class SourceReadEarly:
        def inventory(self, conn):
            return source_before if conn.fqdn == s1.fqdn else driver.inventory(conn)

    report = sync_inventory(SourceReadEarly(), [s2, s1])  # on SQLite the last copy would win

    vm.refresh_from_db()
    assert (vm.host, vm.migrating, vm.removed) == (s2, False, False)
    assert sorted(vm.disks.values_list("key", flat=True)) == disks
    assert report.vms_seen == VirtualMachine.objects.filter(host__in=[s1, s2], removed=False).count()


def test_it_asks_hosts_in_parallel(store, driver):
    register_hosts(store)
    active, peak, lock = 0, 0, threading.Lock()

    class SlowDriver:
        def inventory(self, conn):
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.05)
            try:
                return driver.inventory(conn)
            finally:
                with lock:
                    active -= 1

    sync_inventory(SlowDriver())

    assert peak > 1


def test_it_keys_disks_by_scope():
    assert disk_key("\\\\FS01.contoso.test\\vms\\a.vhdx", "h1", "c1") == "\\\\fs01.contoso.test\\vms\\a.vhdx"
    assert disk_key("C:\\ClusterStorage\\Volume1\\a.vhdx", "h1", "c1") == "c1|c:\\clusterstorage\\volume1\\a.vhdx"
    assert disk_key("C:\\ClusterStorage\\Volume1\\a.vhdx", "h1", None) == "h1|c:\\clusterstorage\\volume1\\a.vhdx"
    assert disk_key("D:\\VMs\\a.vhdx", "h1", "c1") == "h1|d:\\vms\\a.vhdx"


def test_it_finds_the_share_of_a_path():
    shares = [SmbShare(unc_path="\\\\fs01.contoso.test\\vms"), SmbShare(unc_path="\\\\fs01\\vmstore2")]
    assert share_for_path("\\\\FS01.contoso.test\\VMs\\web\\web.vmcx", shares) == shares[0]
    assert share_for_path("\\\\fs01\\vmstore2", shares) == shares[1]
    assert share_for_path("\\\\fs01.contoso.test\\vms2\\x.vhdx", shares) is None
    assert share_for_path("D:\\Hyper-V\\x.vhdx", shares) is None


def test_seed_demo_is_idempotent(store):
    call_command("seed_demo")
    first = snapshot()

    call_command("seed_demo")

    assert snapshot() == first
    assert Host.objects.filter(reachable=True).count() == Host.objects.count() >= 7


def test_seed_demo_builds_a_larger_fabric_on_request(settings, tmp_path):
    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    settings.SIM_TIME_SCALE = None

    call_command("seed_demo", "--hosts", "6", "--vms", "120", "--seed", "7")

    assert Host.objects.count() == 6
    assert VirtualMachine.objects.count() == 120


def test_seed_demo_refuses_to_replace_a_fabric_without_reset(store):
    with pytest.raises(CommandError, match="--reset"):
        call_command("seed_demo", "--vms", "10")


@pytest.mark.parametrize("args", [["--vms", "-1"], ["--vms", "many"], ["--hosts", "0"], ["--seed", "x"]])
def test_seed_demo_rejects_bad_numbers_with_a_usage_error(store, args):
    with pytest.raises(CommandError, match="argument"):
        call_command("seed_demo", *args)
    assert Host.objects.count() == 0


def test_it_stores_what_real_moves_fail_on_and_preflight_reads_it(store, driver):
    from migrations_ui.preflight.assess import Preflight, vm_for_preflight

    register_hosts(store)
    sync_inventory(driver)
    vms = {v.name: v for v in vm_for_preflight()}

    assert vms["iso-s01"].dvd_isos == ["C:\\ISO\\WS2022-install.iso"]
    assert (vms["ckpt-new01"].checkpoints, vms["ckpt-new01"].snapshot_path) == (2, "D:\\Hyper-V\\Checkpoints")
    assert vms["page-s02"].smart_paging_path == "D:\\SmartPaging"
    assert vms["sqlpt-old01"].passthrough_disks == [3]
    assert vms["tape-new01"].fc_sans == ["SAN-Prod"]
    assert (vms["crm-s02"].replication_mode, vms["crm-s02"].replication_replica) == ("primary", "hv-s3.contoso.test")
    assert vms["erp-dr01"].replication_primary == "hv-s1.contoso.test"
    assert vms["lic-new01"].possible_owners == ["hv-new1", "hv-new2"]

    def rules(vm_name, host_name):
        destination = Host.objects.get(name=host_name)
        return {f.rule: f.severity for f in Preflight(vms[vm_name]).assess(destination).findings}

    assert rules("iso-s01", "hv-s2")["dvd-iso-local-path"] == "block"
    assert rules("ckpt-new01", "hv-new2")["checkpoint-files-local"] == "block"
    assert rules("page-s02", "hv-s1")["smart-paging-local"] == "warn"
    assert rules("sqlpt-old01", "hv-new1")["passthrough-disk"] == "block"
    assert "passthrough-disk" not in rules("sqlpt-old01", "hv-old1")
    assert rules("tape-new01", "hv-new2")["virtual-fibre-channel"] == "warn"
    assert rules("crm-s02", "hv-s1")["hyper-v-replica"] == "warn"
    assert rules("lic-new01", "hv-new3")["not-possible-owner"] == "block"
    assert "not-possible-owner" not in rules("lic-new01", "hv-new2")


def test_it_keeps_each_vms_processors_and_each_disks_type_and_size(store, driver):
    register_hosts(store)
    sync_inventory(driver)

    sql = VirtualMachine.objects.get(name="sql-prod01")
    assert sql.processor_count == 16  # 64 GiB in the demo: vcpus_for caps at 16
    disks = {d.path.rsplit("\\", 1)[1]: (d.vhd_type, d.max_size_bytes) for d in sql.disks.all()}
    assert disks["data.vhdx"] == ("Fixed", 120 * 2**30)
    assert disks["sql-prod01.vhdx"] == ("Dynamic", 127 * 2**30)
    assert not VirtualMachine.objects.filter(processor_count=0).exists()


def test_storage_locations_of_many_hosts_follow_their_defaults_in_one_call():
    from fabric.sync import follow_default_locations

    hosts = [Host.objects.create(fqdn=f"h{i}.x", name=f"h{i}") for i in range(3)]
    a, b, c = hosts
    rows = [
        (a, "D:\\VMs", True, False),  # the host's default that it no longer reports: dropped
        (a, "E:\\Kept", True, True),  # a user's location that was a default: kept, no longer default
        (a, "F:\\Mine", False, True),  # a user's location that becomes a default
        (b, "C:\\Hyper-V", True, False),  # still the default: unchanged
        (c, "G:\\Other", False, True),
    ]
    for host, path, is_default, by_user in rows:
        StorageLocation.objects.create(host=host, path=path, is_default=is_default, added_by_user=by_user)

    follow_default_locations({a.pk: ("F:\\Mine", "F:\\New"), b.pk: ("C:\\Hyper-V", ""), c.pk: ("", "")})

    locations = StorageLocation.objects.filter(host__in=hosts)
    assert sorted(locations.values_list("host__fqdn", "path", "is_default", "added_by_user")) == [
        ("h0.x", "E:\\Kept", False, True),
        ("h0.x", "F:\\Mine", True, True),
        ("h0.x", "F:\\New", True, False),
        ("h1.x", "C:\\Hyper-V", True, False),
        ("h2.x", "G:\\Other", False, True),
    ]
