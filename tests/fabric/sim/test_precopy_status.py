"""The pre-copy figures of a migration's status (memory rate, memory left): simulator, emulator, parser."""

import pytest

from fabric.hyperv import psrp_parse
from fabric.hyperv.api import MoveRequest
from fabric.hyperv.psrp import PsrpDriver
from tests.fabric.conftest import FAST, PASSWORD, USER
from tests.fabric.hyperv.test_psrp_driver import follow, vm
from tests.fabric.sim.test_simulator import GIB, MB, add_vm, make_fabric, move


def samples(fabric, migration_id, step=1.0):
    out = []
    while True:
        fabric.advance(step)
        status = fabric.migration_status(migration_id)
        out.append(status)
        if status.state != "running":
            return out


def test_it_reports_the_memory_rate_apart_from_the_wire_rate_with_compression():
    fabric = make_fabric(nic_gbps=1.0, performance="compression")
    vm_ = add_vm(fabric, "vm", memory_gib=2, dirty=100.0)

    copying = [s for s in samples(fabric, move(fabric, vm_, "h2")) if s.state == "running" and s.pass_number]

    assert copying
    for s in copying:
        # Compression halves the bytes on the wire: the memory moves at twice the link's 125 MB/s.
        assert s.transfer_rate_mbps == pytest.approx(125.0)
        assert s.memory_rate_mbps == pytest.approx(250.0)


def test_the_memory_left_falls_when_the_guest_dirties_slower_than_the_copy():
    fabric = make_fabric(nic_gbps=1.0)
    vm_ = add_vm(fabric, "vm", memory_gib=4, dirty=40.0)

    run = samples(fabric, move(fabric, vm_, "h2"))
    left = [s.memory_remaining_bytes for s in run if s.state == "running" and s.pass_number]

    assert left[0] < 4 * GIB
    assert left == sorted(left, reverse=True) and left[-1] < left[0] / 10
    # Within pass 1 it falls at R - D: 125 - 40 MB/s.
    assert left[0] - left[1] == pytest.approx((125 - 40) * MB, rel=0.01)
    assert run[-1].state == "completed" and run[-1].memory_remaining_bytes == 0


def test_the_memory_left_stays_whole_when_the_guest_dirties_faster_than_the_copy():
    fabric = make_fabric(nic_gbps=1.0)
    vm_ = add_vm(fabric, "hot", memory_gib=2, dirty=200.0)

    run = samples(fabric, move(fabric, vm_, "h2"), step=2.0)
    precopy = [s for s in run if s.state == "running" and 2 <= s.pass_number <= fabric.tuning.max_passes]

    assert precopy and all(s.memory_remaining_bytes == 2 * GIB for s in precopy)
    assert all(s.dirty_rate_mbps > s.memory_rate_mbps for s in precopy)


def test_a_storage_move_reports_no_memory_figures():
    fabric = make_fabric()
    vm_ = add_vm(fabric, "vm")

    status = samples(fabric, move(fabric, vm_, None, kind="storage", storage_path="D:\\VMs\\vm"), step=5.0)[0]

    assert status.memory_rate_mbps is None and status.memory_remaining_bytes is None


def test_the_parser_leaves_the_figures_unknown_when_a_host_does_not_give_them():
    real = {"InstanceID": "j1", "VirtualSystemName": "vm", "JobState": 4, "PercentComplete": 30}
    emulated = {**real, "EmulatorMemoryRateMBps": 250.5, "EmulatorMemoryRemainingBytes": 1024}

    assert psrp_parse.job_status(real).memory_rate_mbps is None
    assert psrp_parse.job_status(real).memory_remaining_bytes is None
    assert psrp_parse.job_status(emulated).memory_rate_mbps == 250.5
    assert psrp_parse.job_status(emulated).memory_remaining_bytes == 1024


def test_the_pypsrp_driver_reads_the_figures_from_the_emulator(emulator, emu_store):
    with emu_store.session() as fabric:
        conns = {c.fqdn.split(".")[0]: c for c in fabric.connections(username=USER, password=PASSWORD)}
    driver = PsrpDriver(FAST)
    try:
        vm_id, source = vm(emu_store, "web-dmz02")
        migration_id = driver.start_migration(conns["hv-s2"], MoveRequest(vm_id, source, conns["hv-s1"].fqdn, "live"))
        run = follow(driver, conns["hv-s2"], migration_id)
    finally:
        driver.close()

    # While memory is left to copy: once it is all on the destination the VM resumes there, and
    # the copy rate is 0 (a sample can land in that moment, as the move ends).
    copying = [s for s in run if s.state == "running" and s.pass_number and s.memory_remaining_bytes != 0]
    assert copying, "no sample of the memory copy"
    assert all(s.memory_rate_mbps > 0 and s.memory_remaining_bytes is not None for s in copying)
    assert run[-1].memory_remaining_bytes == 0
