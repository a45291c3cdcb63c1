"""What the simulated hosts report: the fabric's state as the api.py dataclasses."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from fabric.hyperv.api import (
    ClusterInfo,
    ClusterRole,
    DiskInfo,
    HostInfo,
    HostInventory,
    HyperVError,
    MigrationStatus,
    NodeDrain,
    ShareInfo,
    VmInfo,
)
from fabric.hyperv.host_values import share_roots
from fabric.sim import flow as sim_flow
from fabric.sim.world import MB, SimHost, SimMigration, SimVm

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric


def inventory(fabric: Fabric, host: SimHost) -> HostInventory:
    cluster = fabric.clusters.get(host.cluster) if host.cluster else None
    migrating = {m.vm_id for m in fabric.running_migrations()}
    return HostInventory(
        host=host_info(host),
        cluster=None
        if cluster is None
        else ClusterInfo(
            cluster.name,
            cluster.fqdn,
            cluster.functional_level,
            cluster.max_parallel_migrations,
            tuple(cluster.nodes),
        ),
        shares=_shares(fabric, host),
        vms=tuple(
            vm_info(vm, vm.id in migrating, owners(fabric, vm)) for vm in fabric.vms.values() if vm.host == host.fqdn
        ),
    )


def _shares(fabric: Fabric, host: SimHost) -> tuple[ShareInfo, ...]:
    """The shares the host's paths use (what a real host's inventory tells), not those it can reach."""
    vms = [vm for vm in fabric.vms.values() if vm.host == host.fqdn]
    paths = [host.vm_path, host.vhd_path, *(vm.config_path for vm in vms)]
    paths += [disk.path for vm in vms for disk in vm.disks]
    out = []
    for unc, server in share_roots(paths):
        known = fabric.share_for_path(unc)
        out.append(ShareInfo(unc, server, known.file_server_fqdn if known else ""))
    return tuple(out)


def owners(fabric: Fabric, vm: SimVm) -> tuple[str, ...]:
    """Possible owners of a clustered VM's role (Get-ClusterOwnerNode): every node unless restricted."""
    cluster = fabric.clusters.get(fabric.hosts[vm.host].cluster) if vm.is_clustered else None
    if cluster is None:
        return ()
    everyone = [fabric.hosts[f].name for f in cluster.nodes if f in fabric.hosts]
    return tuple(vm.possible_owners or everyone)


def status(fabric: Fabric, m: SimMigration) -> MigrationStatus:
    """A sample of the migration job, as Msvm_MigrationJob and the progress records tell it."""
    running = m.state == "running"
    rate = sim_flow.rates(fabric, fabric.running_migrations())[m.id] if running else 0.0
    storage_left = m.storage_total - m.storage_done
    remaining = 0.0
    if running:
        memory_left = max(0.0, sim_flow.estimate_total(fabric, m, rate) - sim_flow.done_units(m) - storage_left)
        remaining = storage_left + memory_left * sim_flow.wire_ratio(fabric, m)
    error = m.error
    return MigrationStatus(
        migration_id=m.id,
        vm_id=m.vm_id,
        state=m.state,
        percent=m.percent,
        bytes_sent=int(m.wire_sent),
        bytes_remaining=int(remaining),
        pass_number=_round_number(m),
        dirty_rate_mbps=m.dirty_bytes_s / MB,
        transfer_rate_mbps=sim_flow.on_wire(fabric, m, rate) / MB if running else 0.0,
        blackout_ms=None if m.blackout_s is None else round(m.blackout_s * 1000),
        error=None if error is None else HyperVError(error["code"], error["message"], error["remedy"]),
        memory_rate_mbps=None if not m.memory_bytes else (rate / MB if m.phase in _MEMORY_PHASES else 0.0),
        memory_remaining_bytes=_memory_remaining(m),
    )


_MEMORY_PHASES = frozenset({"precopy", "blackout", "quick"})


def _memory_remaining(m: SimMigration) -> int | None:
    """Memory the destination lacks in its current state (None for a move that copies none)."""
    if not m.memory_bytes:
        return None
    if m.phase in ("prepare", "storage"):
        return m.memory_bytes
    if m.phase == "precopy":
        # The rest of this pass, and the pages dirtied since it began (a page counts once).
        dirtied = m.dirty_bytes_s * m.pass_elapsed
        return round(min(m.memory_bytes, m.phase_left + dirtied))
    if m.phase in ("blackout", "quick"):
        return round(m.phase_left)
    return 0  # resume, done: everything is on the destination (or the move ended)


def _round_number(m: SimMigration) -> int:
    """Rounds of memory copy so far: pre-copy passes 1..n, then n+1 for the stop-and-copy (0: none yet)."""
    if not m.memory_bytes or m.phase in ("prepare", "storage"):
        return 0
    if m.phase == "precopy":
        return m.pass_index + 1
    return m.pass_index + 2 if m.kind != "quick" else 1


def host_info(h: SimHost) -> HostInfo:
    return HostInfo(
        fqdn=h.fqdn,
        name=h.name,
        os_version=h.os_version,
        supported_config_versions=tuple(h.supported_config_versions),
        memory_total_bytes=h.memory_total_bytes,
        memory_available_bytes=h.memory_available_bytes,
        processor_family=h.processor_family,
        logical_processors=h.logical_processors,
        cpu_load_percent=h.cpu_load_percent,
        nic_gbps=h.nic_gbps,
        migration_enabled=h.migration_enabled,
        max_live_migrations=h.max_live_migrations,
        max_storage_migrations=h.max_storage_migrations,
        performance_option=h.performance_option,
        auth_type=h.auth_type,
        use_any_network=h.use_any_network,
        migration_networks=tuple(h.migration_networks),
        virtual_switches=tuple(h.virtual_switches),
        vm_path=h.vm_path,
        vhd_path=h.vhd_path,
    )


def vm_info(vm: SimVm, migrating: bool, possible_owners: tuple[str, ...] = ()) -> VmInfo:
    return VmInfo(
        id=vm.id,
        name=vm.name,
        state=vm.state,
        # Configured memory even when off (Hyper-V reports 0 then): the console plans moves with it.
        memory_assigned_bytes=vm.memory_bytes,
        config_version=vm.config_version,
        config_path=vm.config_path,
        is_clustered=vm.is_clustered,
        compat_vector_stale=vm.compat_vector_stale,
        switch_names=tuple(vm.switch_names),
        dirty_rate_mbps=vm.dirty_rate_mbps,
        migrating=migrating,
        processor_compatibility=vm.processor_compat,
        processor_count=vm.processor_count,
        disks=tuple(DiskInfo(d.path, d.size_bytes, d.shared, d.vhd_type, d.virtual_size) for d in vm.disks),
        dvd_isos=tuple(vm.dvd_isos),
        checkpoints=vm.checkpoints,
        snapshot_path=vm.checkpoint_folder,
        smart_paging_path=vm.smart_paging_folder,
        passthrough_disks=tuple(vm.passthrough_disks),
        fc_sans=tuple(vm.fc_sans),
        replication_mode=vm.replication_mode,
        primary_server=vm.primary_server,
        replica_server=vm.replica_server,
        possible_owners=possible_owners,
    )


def node_drain(fabric: Fabric, fqdn: str, node: str, details: bool = True) -> NodeDrain:
    """What Get-ClusterNode, Get-ClusterGroup and Msvm_MigrationJob tell of a node, asked of host fqdn."""
    host = fabric.cluster_node(fqdn, node)
    cluster = fabric.clusters[host.cluster]
    roles = moves = ()
    if details:
        vms = [v for v in fabric.vms.values() if v.is_clustered and v.host in cluster.nodes]
        vms.sort(key=lambda v: v.name)
        roles = tuple(
            ClusterRole(v.name, fabric.hosts[v.host].name, "online" if v.state == "running" else "offline") for v in vms
        )
        asked = fabric.hosts[fqdn]
        mine = [m for m in fabric.migrations.values() if asked.fqdn in (m.source, m.destination)]
        moves = tuple(dataclasses.replace(status(fabric, m), destination=m.destination) for m in mine)
    state = host.node_state if host.reachable else "down"
    return NodeDrain(host.name, state, host.drain_status, roles, moves)
