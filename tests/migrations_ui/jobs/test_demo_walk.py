"""A walk over the demo: the moves pre-flight allows succeed on the hosts.

Every VM is assessed against every other host (migrations_ui.preflight.assess); from the moves it allows,
a sample covering every transfer type and every kind of pair (standalone <-> standalone, inside a
cluster, cluster -> cluster, cluster -> standalone, standalone -> cluster) is run, each from a fresh
demo world, through the real path: create_job, the runner and the pypsrp driver over WinRM against
the host emulator. Each must succeed and leave the VM where it was sent. A move pre-flight allows
and the host refuses is a disagreement between the rules and Hyper-V.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from fabric.driver import get_driver
from fabric.emulator import build_emulator
from fabric.hyperv.api import HyperVError, MoveRequest
from fabric.models import Host, VirtualMachine
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore
from fabric.sync import sync_inventory
from migrations_ui.jobs.operations import create_job
from migrations_ui.jobs.runner import Runner
from migrations_ui.jobs.scheduler import admit_waiting
from migrations_ui.models import JobState, MigrationJob
from migrations_ui.preflight.assess import Preflight
from tests.fabric.conftest import PASSWORD, USER

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCALE = 200.0  # simulated seconds per wall second: the demo's largest moves take about a second
PER_GROUP = 2  # moves run per (transfer type, kind of pair)
# Named in issue 16: Live (VSM) from a clustered VM to another cluster's node and to a standalone host.
MUST_RUN = [("erp-app02", "hv-new1"), ("erp-app02", "hv-s1"), ("cache-01", "hv-s4")]


def pair_kind(source: Host, destination: Host) -> str:
    if source.pk == destination.pk:
        return "same host"
    if source.cluster_id and source.cluster_id == destination.cluster_id:
        return "inside a cluster"
    if source.cluster_id and destination.cluster_id:
        return "cluster -> cluster"
    if source.cluster_id:
        return "cluster -> standalone"
    if destination.cluster_id:
        return "standalone -> cluster"
    return "standalone <-> standalone"


class Demo:
    """The emulator over one demo world that each move starts afresh."""

    def __init__(self, path):
        self.store = FabricStore(path, time_scale=SCALE)
        self.store.create(build_demo_fabric())
        self.emulator = build_emulator(
            FabricStore(path, time_scale=SCALE),
            username=USER,
            password=PASSWORD,
            free_ports=True,
            progress_interval=0.05,
            allow_basic_http=True,
        )
        self.emulator.start()
        with self.store.session() as fabric:
            # Where each endpoint listens (free_ports may have moved one): a fresh world keeps it.
            self.addresses = {h.fqdn: (h.address, h.port) for h in fabric.hosts.values()}
            for conn in fabric.connections():
                Host.objects.create(
                    fqdn=conn.fqdn,
                    name=conn.fqdn.split(".")[0],
                    address=conn.address,
                    port=conn.port,
                    transport="http",
                )

    def reset(self, touched: list[Host] | None = None) -> None:
        """A fresh demo world; the inventory read again from the hosts the last move touched (all: None)."""
        fabric = build_demo_fabric()
        for fqdn, (address, port) in self.addresses.items():
            fabric.hosts[fqdn].address, fabric.hosts[fqdn].port = address, port
        self.store.create(fabric)
        report = sync_inventory(get_driver(), touched)
        assert not report.unreachable, report.unreachable

    def where(self, vm_name: str):
        with self.store.session() as fabric:
            vm = fabric.vm_by_name(vm_name)
            return vm.host, vm.is_clustered, [d.path for d in vm.disks], vm.config_path

    def stop(self) -> None:
        self.emulator.stop()
        self.store.close()


@pytest.fixture
def demo(settings, tmp_path):
    settings.HYPERV_DRIVER = "psrp"
    settings.HYPERV_EMULATOR = True
    settings.HYPERV_EMULATOR_USER, settings.HYPERV_EMULATOR_PASSWORD = USER, PASSWORD
    settings.HYPERV_ALLOW_BASIC_HTTP = True
    settings.HYPERV_CONNECT_TIMEOUT, settings.HYPERV_READ_TIMEOUT = 3, 15
    settings.SIM_FABRIC_PATH = tmp_path / "fabric.sqlite3"
    settings.SIM_TIME_SCALE = SCALE
    world = Demo(settings.SIM_FABRIC_PATH)
    try:
        world.reset()
        yield world
    finally:
        get_driver().close()
        world.stop()


def allowed_moves() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(transfer type, kind of pair) -> [(VM, destination)] for every move pre-flight allows."""
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for vm in VirtualMachine.objects.select_related("host__cluster").order_by("name"):
        for host, assessment in Preflight(vm).destinations():
            if assessment.allowed:
                groups[(assessment.transfer_type, pair_kind(vm.host, host))].append((vm.name, host.name))
    return groups


def sample(groups) -> list[tuple[str, str]]:
    """PER_GROUP moves of each group, preferring VMs and destinations not taken yet."""
    chosen = list(MUST_RUN)
    for key in sorted(groups):
        moves = groups[key]
        taken = 0
        for wanted_fresh in (True, False):
            for move in moves:
                if taken == PER_GROUP:
                    break
                fresh = move[0] not in {m[0] for m in chosen} and move[1] not in {m[1] for m in chosen}
                if move not in chosen and (fresh or not wanted_fresh):
                    chosen.append(move)
                    taken += 1
    return chosen


def run_move(demo: Demo, vm_name: str, destination: str, **kw):
    """One move through create_job and the runner: (the job, where the hosts then have the VM)."""
    job = create_job(VirtualMachine.objects.get(name=vm_name), Host.objects.get(name=destination), **kw)
    admit_waiting()
    runner = Runner.start(job.pk)
    assert runner is not None
    runner.run()
    job.refresh_from_db()
    where = demo.where(vm_name)
    demo.reset([job.source, job.destination])  # the next move starts from the demo as built
    return job, where


def test_every_sampled_move_pre_flight_allows_succeeds_on_the_demo(demo):
    groups = allowed_moves()
    kinds = {kind for kind, _ in groups}
    pairs = {pair for _, pair in groups}
    assert {"live", "live_vsm", "network"} <= kinds, sorted(groups)
    assert pairs == {
        "standalone <-> standalone",
        "inside a cluster",
        "cluster -> cluster",
        "cluster -> standalone",
        "standalone -> cluster",
    }
    assert ("erp-app02", "hv-new1") in groups[("live_vsm", "cluster -> cluster")]
    assert {("erp-app02", "hv-s1"), ("cache-01", "hv-s4")} <= set(groups[("live_vsm", "cluster -> standalone")])

    failures, started = [], time.monotonic()
    moves = sample(groups)
    for vm_name, destination in moves:
        was_clustered = VirtualMachine.objects.get(name=vm_name).is_clustered
        job, (host, clustered, _, _) = run_move(demo, vm_name, destination)
        # A clustered VM is highly available again on a destination cluster; a standalone one stays as it was.
        expect_clustered = was_clustered and bool(Host.objects.get(name=destination).cluster_id)
        if job.state != JobState.SUCCEEDED or not host.startswith(destination + "."):
            failures.append((vm_name, destination, job.kind, job.state, job.error_code, job.error_message))
        elif clustered != expect_clustered:
            failures.append((vm_name, destination, job.kind, "highly available" if clustered else "not HA"))

    assert failures == [], failures
    assert len(moves) >= len(groups)
    assert time.monotonic() - started < 150


def test_storage_moves_pre_flight_allows_succeed_whole_and_per_disk(demo):
    machine = VirtualMachine.objects.get(name="backup01")
    disk = machine.disks.order_by("path").first()
    target = "E:\\Fast\\" + disk.path.rsplit("\\", 1)[-1]
    assert Preflight(machine).assess(machine.host, storage_path="E:\\VMs\\backup01").allowed
    assert Preflight(machine).assess(machine.host, vhds=((disk.path, target),)).allowed

    whole, (_, _, disks, config) = run_move(demo, "backup01", "hv-s3", storage_path="E:\\VMs\\backup01")
    per_disk, (_, _, disks_after, _) = run_move(demo, "backup01", "hv-s3", vhds=((disk.path, target),))

    assert (whole.kind, whole.state) == ("storage", JobState.SUCCEEDED), whole.error_message
    assert config == "E:\\VMs\\backup01" and all(d.startswith("E:\\VMs\\backup01\\") for d in disks)
    assert (per_disk.kind, per_disk.state) == ("storage", JobState.SUCCEEDED), per_disk.error_message
    assert target in disks_after


def emulated_refusal(
    vm: VirtualMachine, destination: Host, storage_path: str, kind: str, change=lambda fabric: None
) -> str | None:
    """What the emulated hosts' own checks (behind Compare-VM, Move-VM, the cluster cmdlets) say to
    this move, sent in the runner's order on a fresh demo world (changed by `change`); None when it
    completes."""
    fabric = build_demo_fabric()
    change(fabric)
    request = MoveRequest(str(vm.guid), vm.host.fqdn, destination.fqdn, kind, storage_path=storage_path)
    leaves = vm.is_clustered and vm.host.cluster_id != destination.cluster_id
    try:
        if leaves:
            fabric.remove_cluster_role(vm.host.fqdn, request.vm_id)
        found = fabric.compare(request)
        if found:
            return "Compare-VM: " + "; ".join(i.message for i in found)
        migration = fabric.migrations[fabric.start_migration(request)]
        fabric.advance(24 * 3600)
        if migration.state != "completed":
            return f"{migration.state}: {migration.error}"
        if leaves and destination.cluster_id:
            fabric.add_cluster_role(destination.fqdn, request.vm_id)
    except HyperVError as exc:
        return f"{exc.code}: {exc.message}"
    return None


def test_every_move_pre_flight_allows_is_accepted_by_the_emulated_hosts(demo):
    """All of them, not a sample: the emulator's checks for each move pre-flight allows, directly."""
    disagreements, count = [], 0
    for vm in VirtualMachine.objects.select_related("host__cluster").prefetch_related("disks").order_by("name"):
        preflight = Preflight(vm)
        for host, assessment in preflight.destinations():
            if not assessment.allowed:
                continue
            chosen = preflight.assess_move(host)  # as create_job asks (Live (VSM) to the default path)
            assert chosen.allowed, (vm.name, host.name, chosen.findings)
            count += 1
            refusal = emulated_refusal(vm, host, chosen.proposal.storage_path, chosen.transfer_type)
            if refusal:
                disagreements.append((vm.name, host.name, chosen.transfer_type, refusal))

    assert count > 200
    assert disagreements == [], disagreements


def newer_processor(fabric) -> None:
    """hv-new3 gets a later Intel generation than the other nodes of CL-NEW (same vendor)."""
    fabric.hosts["hv-new3.contoso.test"].processor_family = "Intel Xeon Platinum 8380 (Ice Lake)"
    fabric.touch()


def test_a_quick_move_runs_inside_a_cluster_and_is_not_offered_where_the_saved_state_cannot_resume(demo):
    # Pre-flight offers Quick only as a fallback inside a cluster: run one through the runner as a job
    # of that kind (Move-ClusterVirtualMachineRole -MigrationType Quick) between like nodes.
    machine = VirtualMachine.objects.get(name="jump-01")
    job = MigrationJob.objects.create(
        kind="quick",
        vm=machine,
        vm_name=machine.name,
        source=machine.host,
        destination=Host.objects.get(name="hv-new3"),
    )
    admit_waiting()
    Runner.start(job.pk).run()
    job.refresh_from_db()
    host, clustered, _, _ = demo.where("jump-01")
    with demo.store.session() as fabric:
        [sent] = [r for r in fabric.record if r["cmdlet"] == "Move-ClusterVirtualMachineRole"]

    assert job.state == JobState.SUCCEEDED, job.error_message
    assert host == "hv-new3.contoso.test" and clustered
    assert sent["params"]["MigrationType"] == "Quick"

    # A node with other processor features: a saved state cannot resume there without processor
    # compatibility, so Quick helps no more than Live (Microsoft, "Processor compatibility mode":
    # it is what lets a live or a saved VM move between hosts with different processor capabilities).
    demo.reset()
    with demo.store.session() as fabric:
        newer_processor(fabric)
    sync_inventory(get_driver(), list(Host.objects.filter(name="hv-new3")))
    for name in ("jump-01", "k8s-node01"):
        machine = VirtualMachine.objects.select_related("host__cluster").get(name=name)
        assessment = Preflight(machine).assess(Host.objects.get(name="hv-new3"))
        refusal = emulated_refusal(
            machine, Host.objects.get(name="hv-new3"), "", assessment.transfer_type, newer_processor
        )
        assert not assessment.allowed and refusal, (name, assessment.transfer_type, refusal)
