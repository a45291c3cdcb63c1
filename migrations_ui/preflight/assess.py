"""Pre-flight against the inventory: turn rows into facts, assess each destination.

The only module that joins the ORM to the pure rules and planner; views, commands and the
scheduler call it, so every entry point sees the same findings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Prefetch

from fabric.hyperv.host_values import share_roots
from fabric.models import Host, SmbShare, VirtualDisk, VirtualMachine
from migrations_ui.models import ACTIVE_STATES, JobState, MigrationJob
from migrations_ui.preflight.facts import DiskFacts, HostFacts, Kind, Proposal, ShareFacts, VmFacts, powered_off
from migrations_ui.preflight.transfer import Assessment, assess
from migrations_ui.slots import LIVE, slots_needed


@dataclass
class SlotUsage:
    live: Counter
    storage: Counter
    queued: Counter


def slot_usage() -> SlotUsage:
    """Migrations each host takes part in now (in or out), and jobs waiting for it."""
    usage = SlotUsage(Counter(), Counter(), Counter())
    rows = MigrationJob.objects.filter(state__in=ACTIVE_STATES).values_list(
        "kind", "state", "source", "destination", "slots_released_at"
    )
    for kind, state, source, destination, released in rows:
        if state == JobState.QUEUED:
            usage.queued.update({source, destination})
            continue
        if released is not None:
            continue  # its move has ended on the hosts: as for admission (scheduler.slots_in_use)
        for host, slot in slots_needed(kind, source, destination):
            (usage.live if slot == LIVE else usage.storage)[host] += 1
    return usage


def host_facts(host: Host, usage: SlotUsage) -> HostFacts:
    cluster = host.cluster
    return HostFacts(
        fqdn=host.fqdn,
        name=host.name,
        cluster=cluster.fqdn if cluster else None,
        cluster_name=cluster.name if cluster else "",
        cluster_max_parallel=cluster.max_parallel_migrations if cluster else None,
        os_version=host.os_version,
        supported_config_versions=tuple(host.supported_config_versions),
        memory_total_bytes=host.memory_total_bytes,
        memory_available_bytes=host.memory_available_bytes,
        cpu_load_percent=host.cpu_load_percent,
        processor_family=host.processor_family,
        reachable=host.reachable,
        last_error=host.last_error,
        migration_enabled=host.migration_enabled,
        max_live=host.max_live_migrations,
        max_storage=host.max_storage_migrations,
        live_in_use=usage.live[host.pk],
        storage_in_use=usage.storage[host.pk],
        queued=usage.queued[host.pk],
        performance_option=host.performance_option,
        auth_type=host.auth_type,
        delegation=host.kerberos_delegation,
        use_any_network=host.use_any_network,
        migration_networks=tuple(host.migration_networks),
        virtual_switches=tuple(host.virtual_switches),
        shares=shares_used(host),
        vm_path=host.vm_path,
    )


def shares_used(host: Host) -> tuple[str, ...]:
    """The shares the host is known to use, from paths (fabric.sync.link_hosts_to_shares), and the share
    storage locations an administrator added for it: "this host reaches that share"."""
    known = [s.unc_path for s in host.shares.all()]
    known += [unc for unc, _ in share_roots(loc.path for loc in host.storage_locations.all())]
    return tuple(dict.fromkeys(known))


def vm_facts(vm: VirtualMachine, moving: bool = False) -> VmFacts:
    return VmFacts(
        id=str(vm.guid),
        name=vm.name,
        state=vm.state,
        memory_bytes=vm.memory_assigned_bytes,
        config_version=vm.config_version,
        config_path=vm.config_path,
        clustered=vm.is_clustered,
        compat_vector_stale=vm.compat_vector_stale,
        processor_compatibility=vm.processor_compatibility,
        switch_names=tuple(vm.switch_names),
        disks=tuple(DiskFacts(d.path, d.shared, d.size_bytes) for d in vm.disks.all()),
        moving=moving,
        dvd_isos=tuple(vm.dvd_isos),
        checkpoints=vm.checkpoints,
        snapshot_path=vm.snapshot_path,
        smart_paging_path=vm.smart_paging_path,
        passthrough_disks=tuple(vm.passthrough_disks),
        fc_sans=tuple(vm.fc_sans),
        replication_mode=vm.replication_mode,
        replication_primary=vm.replication_primary,
        replication_replica=vm.replication_replica,
        possible_owners=tuple(vm.possible_owners),
    )


def shared_disks_by_host() -> dict[int, tuple[tuple[str, str], ...]]:
    """(VM name, shared VHDX path) of the VMs with a shared VHDX, by host pk: Proposal.destination_shared."""
    rows = (
        VirtualDisk.vms.through.objects.filter(virtualdisk__shared=True, virtualmachine__removed=False)
        .order_by("virtualmachine__name", "virtualdisk__path")
        .values_list("virtualmachine__host_id", "virtualmachine__name", "virtualdisk__path")
    )
    by_host: dict[int, list[tuple[str, str]]] = {}
    for host_id, name, path in rows:
        by_host.setdefault(host_id, []).append((name, path))
    return {host_id: tuple(pairs) for host_id, pairs in by_host.items()}


def hosts_for_preflight():
    return Host.objects.select_related("cluster").prefetch_related(
        Prefetch("shares", queryset=SmbShare.objects.only("id", "unc_path")), "storage_locations"
    )


def vm_for_preflight():
    return VirtualMachine.objects.select_related("host__cluster").prefetch_related(
        Prefetch("disks", queryset=VirtualDisk.objects.order_by("path"))
    )


def share_facts() -> tuple[ShareFacts, ...]:
    return tuple(ShareFacts(s.unc_path, s.file_server, s.file_server_fqdn) for s in SmbShare.objects.all())


class Preflight:
    """Assessments of one VM against any destination, sharing one read of the inventory."""

    def __init__(self, vm: VirtualMachine, power: str = ""):
        """power: SAVE or SHUT_DOWN: the VM is assessed as it will be once saved or shut down (an
        offline move the pre-maintenance report chose for it)."""
        self.vm = vm
        self.usage = slot_usage()
        self.hosts = {h.pk: h for h in hosts_for_preflight()}
        self.shares = share_facts()
        self.vm_facts = vm_facts(vm, moving=MigrationJob.objects.filter(vm=vm, state__in=ACTIVE_STATES).exists())
        if power:
            self.vm_facts = powered_off(self.vm_facts, power)
        self._facts: dict[int, HostFacts] = {}
        # Only a VM with a shared VHDX has guest-cluster partners to look for (one query more then).
        self.shared = shared_disks_by_host() if any(d.shared for d in self.vm_facts.disks) else {}

    def facts(self, host: Host) -> HostFacts:
        if host.pk not in self._facts:
            self._facts[host.pk] = host_facts(self.hosts.get(host.pk, host), self.usage)
        return self._facts[host.pk]

    def assess(self, destination: Host, storage_path: str = "", vhds: tuple = ()) -> Assessment:
        proposal = Proposal(
            vm=self.vm_facts,
            source=self.facts(self.vm.host),
            destination=self.facts(destination),
            kind=None,
            storage_path=storage_path,
            vhds=tuple(tuple(pair) for pair in vhds),
            shares=self.shares,
            destination_shared=self.shared.get(destination.pk, ()),
        )
        return assess(proposal)

    def assess_move(self, destination: Host, storage_path: str = "", vhds: tuple = ()) -> Assessment:
        """As assess(), for a move someone asks for: Live (VSM) given no path starts from the
        destination's default VM location, as VMM does (the wizard and the API alike)."""
        selected = self.assess(destination, storage_path, vhds)
        if selected.transfer_type == Kind.LIVE_VSM and not storage_path and destination.vm_path:
            selected = self.assess(destination, destination.vm_path, vhds)
        return selected

    def destinations(self) -> list[tuple[Host, Assessment]]:
        """Every other reachable host, best first: allowed before blocked, hosts in maintenance after
        the others (being emptied, or waiting for their VMs back), then nodes of the VM's own cluster,
        hosts that reach its files, the rest (transfer.preference), each by stars."""
        ranked = [
            (host, self.assess(host)) for host in self.hosts.values() if host.pk != self.vm.host_id and host.reachable
        ]
        return sorted(
            ranked, key=lambda p: (not p[1].allowed, p[0].maintenance, p[1].preference, -p[1].rating, p[0].name)
        )
