"""Inventory sync: ask every managed host what it runs, then write it all in one transaction.

Hosts are asked in parallel (the slow part is the network); the database is written from one
thread afterwards with bulk upserts, so a sync of 20,000 VMs costs a handful of statements.
A VM gone from Hyper-V is marked removed, never deleted (jobs and audit rows point at it). An
unreachable host is marked so with the reason, and its VMs are left as they were last seen.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fabric.hyperv import inventory_processes
from fabric.hyperv.api import Connection, Driver, HostInventory, HyperVError
from fabric.hyperv.host_values import CSV_ROOT
from fabric.hyperv.psrp import PsrpDriver
from fabric.models import Cluster, Host, SmbShare, StorageLocation, VirtualDisk, VirtualMachine
from notifications.emit import notify
from notifications.models import EventKind

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    synced: list[str] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # fqdn -> reason
    vms_seen: int = 0
    vms_removed: int = 0


def connection_for(host: Host) -> Connection:
    return Connection(fqdn=host.fqdn, address=host.address, port=host.port, transport=host.transport)


# Hosts read at once, shared out between this process and its helpers. Each host answers one request
# at a time and spends most of its inventory in its cmdlets (17-20, 50 ms each in bench/sync.py), so the
# threads mostly wait. 100 hosts in one process took 8.4 s with 16 threads, 4.9 s with 48, 4.2-4.4 s with
# 64; with a helper, 3.7-4.0 s with 64 and 3.5-3.7 s with 100 (one round of hosts).
SYNC_THREADS = 100
# A sync of this many hosts or more is shared with helper processes (INVENTORY_SYNC_PROCESSES in all):
# the console's CPU bounds it then (fabric/hyperv/inventory_processes.py). Fewer hosts, or one thread
# (one host at a time), are read here.
HELPERS_FROM = 32


def sync_inventory(driver: Driver, hosts: list[Host] | None = None, max_workers: int = SYNC_THREADS) -> SyncReport:
    """Pull the inventory of the given hosts (default: every managed host) into the database."""
    hosts = list(Host.objects.all()) if hosts is None else hosts
    conns = [connection_for(h) for h in hosts]
    helpers = settings.INVENTORY_SYNC_PROCESSES - 1
    if isinstance(driver, PsrpDriver) and 0 < helpers < max_workers and len(hosts) >= HELPERS_FROM:
        results = inventory_processes.read_inventories(driver, conns, max_workers, helpers)
    else:
        results = inventory_processes.read_here(driver.inventory, conns, max_workers)
    inventories = one_report_per_vm([r for r in results if isinstance(r, HostInventory)])
    failures = {h.fqdn: r for h, r in zip(hosts, results, strict=True) if isinstance(r, HyperVError)}
    for fqdn, exc in failures.items():
        log.warning("sync: %s failed: %s", fqdn, exc.message)
    with transaction.atomic():
        report = _apply(inventories, failures)
    return report


def one_report_per_vm(inventories: list[HostInventory]) -> list[HostInventory]:
    """The inventories with each VM reported by one host only.

    Hosts are read one after another: a VM that finished moving between two reads is reported by
    its source (read before, usually still migrating) and by its destination (read after). The
    report that is not migrating wins, then a running one, then the later in the list; the other
    copy is dropped, disks and all (the database holds one row per VM GUID).
    """
    best: dict[str, tuple[tuple, int]] = {}
    for index, inv in enumerate(inventories):
        for vm in inv.vms:
            rank = (not vm.migrating, vm.state.lower() == "running", index)
            if vm.id not in best or rank > best[vm.id][0]:
                best[vm.id] = (rank, index)
    kept = []
    for index, inv in enumerate(inventories):
        vms = tuple(vm for vm in inv.vms if best[vm.id][1] == index)
        if len(vms) < len(inv.vms):
            log.info("sync: %s reported %d VMs another host also reported", inv.host.fqdn, len(inv.vms) - len(vms))
            inv = dataclasses.replace(inv, vms=vms)
        kept.append(inv)
    return kept


def _apply(inventories: list[HostInventory], failures: dict[str, HyperVError]) -> SyncReport:
    now = timezone.now()
    report = SyncReport(synced=[inv.host.fqdn for inv in inventories])
    for fqdn, exc in failures.items():
        # Told (webhooks, e-mail) when the host answered before: only the sync that flips it tells.
        if Host.objects.filter(fqdn=fqdn, reachable=True).update(reachable=False, last_error=exc.message):
            notify(EventKind.HOST_UNREACHABLE, {"host": fqdn, "error": exc.message, "code": exc.code})
        else:
            Host.objects.filter(fqdn=fqdn).update(last_error=exc.message)
        report.unreachable[fqdn] = exc.message
    if not inventories:
        return report

    clusters = _upsert_clusters(inventories, now)
    hosts = _update_hosts(inventories, clusters, now)
    shares = _upsert_shares(inventories, hosts)
    follow_default_locations({hosts[i.host.fqdn].pk: (i.host.vm_path, i.host.vhd_path) for i in inventories})
    vm_ids = _upsert_vms(inventories, hosts, shares, now)
    _upsert_disks(inventories, hosts, shares, vm_ids)

    link_hosts_to_shares()
    report.vms_seen = len(vm_ids)
    # Every VM seen now carries last_seen=now: what a reachable host no longer reports is gone.
    report.vms_removed = (
        VirtualMachine.objects.filter(host__in=hosts.values(), removed=False)
        .exclude(last_seen=now)
        .update(removed=True, migrating=False)
    )
    return report


def _upsert_clusters(inventories: list[HostInventory], now) -> dict[str, Cluster]:
    infos = {inv.cluster.fqdn: inv.cluster for inv in inventories if inv.cluster}
    Cluster.objects.bulk_create(
        [
            Cluster(
                name=c.name,
                fqdn=c.fqdn,
                functional_level=c.functional_level,
                max_parallel_migrations=c.max_parallel_migrations,
                last_sync=now,
            )
            for c in infos.values()
        ],
        update_conflicts=True,
        unique_fields=["fqdn"],
        update_fields=["name", "functional_level", "max_parallel_migrations", "last_sync"],
    )
    return {c.fqdn: c for c in Cluster.objects.filter(fqdn__in=infos)}


def _update_hosts(inventories: list[HostInventory], clusters: dict[str, Cluster], now) -> dict[str, Host]:
    hosts = {h.fqdn: h for h in Host.objects.filter(fqdn__in=[inv.host.fqdn for inv in inventories])}
    for inv in inventories:
        info, host = inv.host, hosts[inv.host.fqdn]
        for name in _HOST_FIELDS:
            value = getattr(info, name)
            setattr(host, name, list(value) if isinstance(value, tuple) else value)
        host.cluster = clusters[inv.cluster.fqdn] if inv.cluster else None
        host.reachable, host.last_sync, host.last_error = True, now, ""
    # One UPDATE per host: Django's bulk_update writes a CASE WHEN per field and host, which cost more.
    fields = [*_HOST_FIELDS, "cluster", "reachable", "last_sync", "last_error"]
    for host in hosts.values():
        Host.objects.filter(pk=host.pk).update(**{name: getattr(host, name) for name in fields})
    return hosts


_HOST_FIELDS = [
    "name",
    "os_version",
    "supported_config_versions",
    "memory_total_bytes",
    "memory_available_bytes",
    "processor_family",
    "logical_processors",
    "cpu_load_percent",
    "nic_gbps",
    "migration_enabled",
    "max_live_migrations",
    "max_storage_migrations",
    "performance_option",
    "auth_type",
    "use_any_network",
    "migration_networks",
    "virtual_switches",
    "vm_path",
    "vhd_path",
]


def _upsert_shares(inventories: list[HostInventory], hosts: dict[str, Host]) -> list[SmbShare]:
    known = {u.lower(): u for u in SmbShare.objects.values_list("unc_path", flat=True)}
    infos = {}
    for inv in inventories:
        for s in inv.shares:
            # One row per share however a host spells it (Windows paths are case-insensitive).
            unc = known.setdefault(s.unc_path.lower(), s.unc_path)
            infos.setdefault(unc, dataclasses.replace(s, unc_path=unc))
    SmbShare.objects.bulk_create(
        [
            SmbShare(unc_path=s.unc_path, file_server=s.file_server, file_server_fqdn=s.file_server_fqdn)
            for s in infos.values()
        ],
        update_conflicts=True,
        unique_fields=["unc_path"],
        update_fields=["file_server", "file_server_fqdn"],
    )
    return list(SmbShare.objects.all())


def link_hosts_to_shares() -> None:
    """Which hosts use which share, decided from the paths (hyperv.md section 9), not from open SMB sessions:
    a host uses the shares its VMs' files and its default folders lie on, and every node of a cluster uses
    the shares its highly available VMs lie on (any node may own them)."""
    shares = list(SmbShare.objects.all())
    cluster_of = dict(Host.objects.values_list("pk", "cluster_id"))
    used: dict[int, set[int]] = {pk: set() for pk in cluster_of}
    by_cluster: dict[int, set[int]] = {}
    vm_rows = VirtualMachine.objects.filter(removed=False, share__isnull=False).values_list(
        "host_id", "share_id", "is_clustered"
    )
    disk_rows = VirtualDisk.objects.filter(share__isnull=False, vms__removed=False).values_list(
        "vms__host_id", "share_id", "vms__is_clustered"
    )
    for rows in (vm_rows, disk_rows):
        for host_id, share_id, clustered in rows:
            used[host_id].add(share_id)
            if clustered and cluster_of[host_id] is not None:
                by_cluster.setdefault(cluster_of[host_id], set()).add(share_id)
    for pk, vm_path, vhd_path in Host.objects.values_list("pk", "vm_path", "vhd_path"):
        for path in (vm_path, vhd_path):
            if share := share_for_path(path, shares):
                used[pk].add(share.pk)
    for pk, cluster in cluster_of.items():
        used[pk] |= by_cluster.get(cluster, set())
    through = SmbShare.hosts.through
    through.objects.all().delete()
    through.objects.bulk_create([through(smbshare_id=s, host_id=h) for h, ids in used.items() for s in ids])


def share_for_path(path: str, shares: list[SmbShare]) -> SmbShare | None:
    """The share a file lives on, by case-insensitive UNC prefix."""
    lowered = path.lower().rstrip("\\")
    for share in shares:
        prefix = share.unc_path.lower().rstrip("\\")
        if lowered == prefix or lowered.startswith(prefix + "\\"):
            return share
    return None


def follow_default_locations(reported: dict[int, tuple[str, ...]]) -> None:
    """Each host's default folders (VirtualMachinePath, VirtualHardDiskPath), by host id, as its
    storage locations, in a handful of statements for any number of hosts; only what changes is
    written. Locations a user added stay (no longer marked default); the host's own follow it."""
    wanted = {host_id: {p for p in paths if p} for host_id, paths in reported.items()}
    drop, clear, mark, have = [], [], [], set()
    rows = StorageLocation.objects.filter(host_id__in=wanted).values_list(
        "pk", "host_id", "path", "is_default", "added_by_user"
    )
    for pk, host_id, path, is_default, by_user in rows:
        if path in wanted[host_id]:
            have.add((host_id, path))
            if not is_default:
                mark.append(pk)
        elif is_default:
            (clear if by_user else drop).append(pk)
    for ids, change in ((drop, None), (clear, False), (mark, True)):
        for start in range(0, len(ids), 500):
            chunk = StorageLocation.objects.filter(pk__in=ids[start : start + 500])
            if change is None:
                chunk.delete()
            else:
                chunk.update(is_default=change)
    StorageLocation.objects.bulk_create(
        [
            StorageLocation(host_id=host_id, path=path, is_default=True)
            for host_id, paths in wanted.items()
            for path in sorted(paths)
            if (host_id, path) not in have
        ]
    )


def _upsert_vms(inventories, hosts, shares, now) -> dict[uuid.UUID, int]:
    rows = []
    for inv in inventories:
        for vm in inv.vms:
            share = share_for_path(vm.config_path, shares)
            rows.append(
                VirtualMachine(
                    guid=uuid.UUID(vm.id),
                    name=vm.name,
                    host=hosts[inv.host.fqdn],
                    state=vm.state,
                    memory_assigned_bytes=vm.memory_assigned_bytes,
                    config_version=vm.config_version,
                    config_path=vm.config_path,
                    share=share,
                    is_clustered=vm.is_clustered,
                    compat_vector_stale=vm.compat_vector_stale,
                    processor_compatibility=vm.processor_compatibility,
                    processor_count=vm.processor_count,
                    switch_names=list(vm.switch_names),
                    dirty_rate_mbps=vm.dirty_rate_mbps,
                    migrating=vm.migrating,
                    dvd_isos=list(vm.dvd_isos),
                    checkpoints=vm.checkpoints,
                    snapshot_path=vm.snapshot_path,
                    smart_paging_path=vm.smart_paging_path,
                    passthrough_disks=list(vm.passthrough_disks),
                    fc_sans=list(vm.fc_sans),
                    replication_mode=vm.replication_mode,
                    replication_primary=vm.primary_server,
                    replication_replica=vm.replica_server,
                    possible_owners=list(vm.possible_owners),
                    removed=False,
                    last_seen=now,
                )
            )
    VirtualMachine.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["guid"],
        update_fields=_VM_FIELDS,
    )
    seen = {r.guid for r in rows}
    return {g: pk for g, pk in VirtualMachine.objects.values_list("guid", "id") if g in seen}


_VM_FIELDS = [
    "name",
    "host",
    "state",
    "memory_assigned_bytes",
    "config_version",
    "config_path",
    "share",
    "is_clustered",
    "compat_vector_stale",
    "processor_compatibility",
    "processor_count",
    "switch_names",
    "dirty_rate_mbps",
    "migrating",
    "dvd_isos",
    "checkpoints",
    "snapshot_path",
    "smart_paging_path",
    "passthrough_disks",
    "fc_sans",
    "replication_mode",
    "replication_primary",
    "replication_replica",
    "possible_owners",
    "removed",
    "last_seen",
]


def disk_key(path: str, host_fqdn: str, cluster_fqdn: str | None) -> str:
    """A disk's identity: a share path is global, a CSV path is cluster-wide, anything else is the host's."""
    lowered = path.lower()
    if lowered.startswith("\\\\"):
        return lowered
    if cluster_fqdn and lowered.startswith(CSV_ROOT):
        return f"{cluster_fqdn.lower()}|{lowered}"
    return f"{host_fqdn.lower()}|{lowered}"


def _upsert_disks(inventories, hosts, shares, vm_ids: dict[uuid.UUID, int]) -> None:
    disks: dict[str, VirtualDisk] = {}
    attached: dict[str, set[int]] = {}
    for inv in inventories:
        cluster = inv.cluster.fqdn if inv.cluster else None
        for vm in inv.vms:
            for d in vm.disks:
                key = disk_key(d.path, inv.host.fqdn, cluster)
                disks[key] = VirtualDisk(
                    key=key,
                    path=d.path,
                    size_bytes=d.size_bytes,
                    shared=d.shared,
                    vhd_type=d.vhd_type,
                    max_size_bytes=d.max_size_bytes,
                    share=share_for_path(d.path, shares),
                )
                attached.setdefault(key, set()).add(vm_ids[uuid.UUID(vm.id)])
    VirtualDisk.objects.bulk_create(
        disks.values(),
        batch_size=2000,
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["path", "size_bytes", "shared", "vhd_type", "max_size_bytes", "share"],
    )
    disk_ids = dict(VirtualDisk.objects.values_list("key", "id"))
    # Attachments of the VMs seen are replaced by what the hosts report now.
    through = VirtualDisk.vms.through
    seen_vm_ids = list(vm_ids.values())
    for start in range(0, len(seen_vm_ids), 5000):
        through.objects.filter(virtualmachine_id__in=seen_vm_ids[start : start + 5000]).delete()
    through.objects.bulk_create(
        [through(virtualdisk_id=disk_ids[key], virtualmachine_id=vm) for key, vms in attached.items() for vm in vms],
        batch_size=5000,
    )
