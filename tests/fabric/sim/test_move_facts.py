"""The simulated hosts refuse what a real host refuses for the facts of hyperv.md section 9, and
agree with the pre-flight rules: what pre-flight allows starts, what its new rules block is refused."""

import pytest

from fabric.hyperv.api import HyperVError, MoveRequest
from fabric.models import Host
from fabric.sim.checks import validate
from fabric.sim.demo import build_demo_fabric
from fabric.sync import sync_inventory
from tests.fabric.test_sync import driver, register_hosts, store  # noqa: F401 - fixtures

D = ".contoso.test"
NEW_VMS = ("iso-s01", "ckpt-new01", "page-s02", "sqlpt-old01", "tape-new01", "crm-s02", "erp-dr01", "lic-new01")
NEW_BLOCKS = {"dvd-iso-local-path", "checkpoint-files-local", "passthrough-disk", "not-possible-owner"}


@pytest.fixture
def demo():
    return build_demo_fabric()


MINE = {"DVD Drive", "Checkpoints", "Hard Drive", "Fibre Channel Adapter"}


def new_refusals(fabric, request) -> list[HyperVError]:
    """The refusals of the checks this file is about, collected as Compare-VM does (every one)."""
    found = []
    validate(fabric, request, lambda exc, source: found.append((exc, source)))
    return [exc for exc, source in found if source in MINE or exc.code == "0x80071398"]


def refusal(fabric, name, destination, kind, **kw):
    vm = fabric.vm_by_name(name)
    try:
        validate(fabric, MoveRequest(vm.id, vm.host, destination + D, kind, **kw))
    except HyperVError as exc:
        return exc
    return None


def test_an_iso_the_destination_cannot_open_is_refused(demo):
    error = refusal(demo, "iso-s01", "hv-s2", "live")
    assert error is not None and "WS2022-install.iso" in error.message
    demo.vm_by_name("iso-s01").dvd_isos = ["\\\\fs01.contoso.test\\vms\\iso\\WS2022-install.iso"]
    assert refusal(demo, "iso-s01", "hv-s2", "live") is None


def test_checkpoints_left_where_the_destination_cannot_reach_are_refused(demo):
    assert "checkpoints" in refusal(demo, "ckpt-new01", "hv-new2", "live").message
    demo.vm_by_name("ckpt-new01").checkpoints = 0
    assert refusal(demo, "ckpt-new01", "hv-new2", "live") is None


def test_a_passthrough_disk_moves_inside_its_cluster_only(demo):
    vm = demo.vm_by_name("sqlpt-old01")
    assert refusal(demo, "sqlpt-old01", "hv-old1", "live") is None
    [error] = new_refusals(demo, MoveRequest(vm.id, vm.host, "hv-new1" + D, "live"))
    assert "pass-through" in error.message


def test_a_destination_without_the_virtual_san_is_refused(demo):
    assert refusal(demo, "tape-new01", "hv-new2", "live") is None
    demo.hosts["hv-new2" + D].virtual_sans = []
    assert "SAN-Prod" in refusal(demo, "tape-new01", "hv-new2", "live").message


def test_a_node_that_is_not_a_possible_owner_is_refused_with_its_code(demo):
    assert refusal(demo, "lic-new01", "hv-new2", "live") is None
    error = refusal(demo, "lic-new01", "hv-new3", "quick")
    assert error.code == "0x80071398" and "possible owners" in error.remedy


def test_smart_paging_and_replica_are_not_refused(demo):
    assert refusal(demo, "page-s02", "hv-s1", "live") is None
    assert refusal(demo, "crm-s02", "hv-s1", "live") is None


def test_compare_vm_reports_each_refusal_with_its_device(demo):
    vm = demo.vm_by_name("sqlpt-old01")
    vm.dvd_isos = ["C:\\ISO\\a.iso"]
    found = []
    validate(demo, MoveRequest(vm.id, vm.host, "hv-new1" + D, "live"), lambda exc, source: found.append(source))
    assert {"DVD Drive", "Hard Drive"} <= set(found)


@pytest.mark.django_db
def test_preflight_and_the_simulated_hosts_agree_on_the_new_vms(store, driver):  # noqa: F811
    from migrations_ui.preflight.assess import Preflight, vm_for_preflight

    register_hosts(store)
    sync_inventory(driver)
    hosts = list(Host.objects.all())
    checked = 0
    for vm in vm_for_preflight().filter(name__in=NEW_VMS):
        preflight = Preflight(vm)
        for host in hosts:
            if host.pk == vm.host_id:
                continue
            assessment = preflight.assess_move(host)
            if assessment.transfer_type is None:
                continue
            p = assessment.proposal
            request = MoveRequest(str(vm.guid), vm.host.fqdn, host.fqdn, p.kind, p.storage_path, p.vhds)
            with store.session() as fabric:
                refused = new_refusals(fabric, request)
            blocks = {f.rule for f in assessment.findings if f.severity == "block"}
            # Allowed moves start; a move a new rule blocks is refused by the host, and the other way round.
            assert bool(refused) == bool(blocks & NEW_BLOCKS), (vm.name, host.name, p.kind, blocks, refused)
            if assessment.allowed:
                assert not refused
            checked += 1
    assert checked > 50


def run_to_end(fabric, request):
    migration_id = fabric.start_migration(request)
    for _ in range(2000):
        if fabric.migrations[migration_id].state != "running":
            break
        fabric.advance(1)
    return fabric.migrations[migration_id]


def test_moving_the_whole_storage_takes_checkpoints_and_smart_paging_along(demo):
    vm = demo.vm_by_name("page-s02")
    vm.checkpoints, vm.snapshot_path = 1, "D:\\Checkpoints"
    done = run_to_end(demo, MoveRequest(vm.id, vm.host, "hv-s1" + D, "live_vsm", "D:\\Hyper-V\\page-s02"))

    assert done.state == "completed", done.error
    assert vm.checkpoint_folder == vm.smart_paging_folder == "D:\\Hyper-V\\page-s02"


def test_a_per_disk_move_leaves_checkpoints_and_smart_paging_where_they_were(demo):
    vm = demo.vm_by_name("page-s02")
    old_config = vm.config_path
    vhds = ((vm.disks[0].path, "D:\\Hyper-V\\page-s02\\page-s02.vhdx"),)
    done = run_to_end(demo, MoveRequest(vm.id, vm.host, "hv-s1" + D, "live_vsm", "D:\\Hyper-V\\page-s02", vhds))

    assert done.state == "completed", done.error
    assert vm.config_path == "D:\\Hyper-V\\page-s02"
    assert vm.smart_paging_folder == "D:\\SmartPaging" and vm.checkpoint_folder == old_config
