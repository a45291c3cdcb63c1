"""What Hyper-V hosts return over PowerShell Remoting, read into the driver API's dataclasses.

Objects arrive as pypsrp GenericComplexObjects; they are told apart by their .NET type name (the
last segment: VirtualMachine, VMHost, Win32_OperatingSystem, Msvm_MigrationJob ...). Properties an
emulated host adds (Emulator*) are used when present and defaulted otherwise.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from typing import Any

from fabric.hyperv.api import (
    ClusterInfo,
    ClusterRole,
    DiskInfo,
    HostInfo,
    HostInventory,
    HyperVError,
    Incompatibility,
    MigrationStatus,
    NodeDrain,
    ShareInfo,
    VmInfo,
)
from fabric.hyperv.host_values import share_roots
from fabric.hyperv.remedies import diagnose

# Msvm_MigrationJob.JobType of a move: the VM, the VM and its storage, storage (hyperv.md section 6);
# 300-304 are the checks Compare-VM leaves for the same VM.
MOVE_JOB_TYPES = frozenset({305, 306, 307})
JOB_STATES = {
    2: "running",
    3: "running",
    4: "running",
    5: "running",
    6: "running",
    7: "completed",
    8: "cancelled",
    9: "cancelled",
    10: "failed",
    11: "running",
    32768: "completed",
}


def props(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return {**(getattr(obj, "extended_properties", None) or {}), **(getattr(obj, "adapted_properties", None) or {})}


def kind(obj: Any) -> str:
    """The object's most derived .NET type, last segment (VirtualMachine, Win32_Processor ...)."""
    names = getattr(obj, "types", None) or []
    if not names:
        return ""
    return re.split(r"[.#/]", names[0])[-1]


def text(value: Any) -> str:
    """An enum (serialized with its ToString) or a plain value as text."""
    if value is None:
        return ""
    to_string = getattr(value, "to_string", None)
    return str(to_string) if to_string is not None else str(value)


def by_kind(objects: list[Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in objects:
        groups[kind(obj)].append(props(obj))
    return groups


def host_info(fqdn: str, g: dict[str, list[dict[str, Any]]]) -> HostInfo:
    vmhost = g["VMHost"][0]
    os_ = (g.get("Win32_OperatingSystem") or [{}])[0]
    cpu = (g.get("Win32_Processor") or [{}])[0]
    caption = str(os_.get("Caption") or "")
    networks = sorted(g.get("VMMigrationNetwork", []), key=lambda n: int(n.get("Priority") or 0))
    versions = sorted((str(v.get("Version")) for v in g.get("VMHostSupportedVersion", [])), key=_version_key)
    total = int(os_.get("TotalVisibleMemorySize") or 0) * 1024 or int(vmhost.get("MemoryCapacity") or 0)
    return HostInfo(
        fqdn=fqdn,
        name=str(vmhost.get("Name") or fqdn.split(".")[0]),
        os_version=caption.removeprefix("Microsoft ").strip(),
        supported_config_versions=tuple(versions),
        memory_total_bytes=total,
        memory_available_bytes=int(os_.get("FreePhysicalMemory") or 0) * 1024,
        processor_family=str(cpu.get("Name") or ""),
        logical_processors=int(vmhost.get("LogicalProcessorCount") or cpu.get("NumberOfLogicalProcessors") or 0),
        cpu_load_percent=int(cpu.get("LoadPercentage") or 0),
        nic_gbps=float(vmhost.get("EmulatorMigrationNicGbps") or 10.0),
        migration_enabled=bool(vmhost.get("VirtualMachineMigrationEnabled")),
        max_live_migrations=int(vmhost.get("MaximumVirtualMachineMigrations") or 0),
        max_storage_migrations=int(vmhost.get("MaximumStorageMigrations") or 0),
        performance_option=text(vmhost.get("VirtualMachineMigrationPerformanceOption")).lower(),
        auth_type=text(vmhost.get("VirtualMachineMigrationAuthenticationType")).lower(),
        use_any_network=bool(vmhost.get("UseAnyNetworkForMigration")),
        migration_networks=tuple(str(n.get("Subnet")) for n in networks),
        virtual_switches=tuple(str(s.get("Name")) for s in g.get("VMSwitch", [])),
        vm_path=str(vmhost.get("VirtualMachinePath") or ""),
        vhd_path=str(vmhost.get("VirtualHardDiskPath") or ""),
    )


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def cluster_info(g: dict[str, list[dict[str, Any]]]) -> ClusterInfo | None:
    if not g.get("Cluster"):
        return None
    c = g["Cluster"][0]
    domain = str(c.get("Domain") or "")
    name = str(c.get("Name"))

    def node_fqdn(n: dict[str, Any]) -> str:
        return str(n.get("EmulatorFullyQualifiedName") or (f"{n.get('Name')}.{domain}" if domain else n.get("Name")))

    return ClusterInfo(
        name=name,
        fqdn=f"{name.lower()}.{domain}" if domain else name.lower(),
        functional_level=int(c.get("ClusterFunctionalLevel") or 0),
        max_parallel_migrations=_optional_int(c.get("MaximumParallelMigrations")),
        nodes=tuple(node_fqdn(n) for n in g.get("ClusterNode", [])),
    )


def _optional_int(value: Any) -> int | None:
    """A property a host may not have at all: MaximumParallelMigrations exists on WS2022 (September 2022
    update) and later; an older cluster has no cap (hyperv.md section 9)."""
    return None if value is None else int(value)


def used_paths(g: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every path the host reports using: its VMs' configuration and disks, its default folders."""
    vmhost = (g.get("VMHost") or [{}])[0]
    paths = [str(vmhost.get("VirtualMachinePath") or ""), str(vmhost.get("VirtualHardDiskPath") or "")]
    paths += [str(v.get("Path") or v.get("ConfigurationLocation") or "") for v in g.get("VirtualMachine", [])]
    paths += [str(d.get("Path") or "") for d in g.get("HardDiskDrive", [])]
    return paths


def share_servers(g: dict[str, list[dict[str, Any]]]) -> list[str]:
    return sorted({server for _, server in share_roots(used_paths(g))})


def shares(g: dict[str, list[dict[str, Any]]], fqdns: dict[str, str]) -> tuple[ShareInfo, ...]:
    """The SMB shares the host uses, by its paths. Not Get-SmbConnection: it lists open sessions only, and an
    idle host that reaches a share has none (hyperv.md section 9)."""
    return tuple(ShareInfo(unc, server, fqdns.get(server.lower(), "")) for unc, server in share_roots(used_paths(g)))


def vms(g: dict[str, list[dict[str, Any]]]) -> tuple[VmInfo, ...]:
    # Get-VHD: FileSize is the file's size on the host's disk, Size the disk's size as the guest sees
    # it, VhdType Fixed, Dynamic or Differencing: the facts of Msvm_VirtualHardDiskInfo (FileSize,
    # MaxInternalSize, Type 2/3/4) that the cmdlet reports, as Microsoft's HyperVDsc Vhd resource reads them.
    vhds = {str(v.get("Path")).lower(): v for v in g.get("VirtualHardDisk", [])}
    disks, switches = defaultdict(list), defaultdict(list)
    for d in g.get("HardDiskDrive", []):
        if d.get("DiskNumber") is not None:
            continue  # a pass-through (physical) disk: no file to move (moves_facts reads it)
        path = str(d.get("Path"))
        vhd = vhds.get(path.lower(), {})  # none when Get-VHD could not read the file (TOLERATED)
        disks[_id(d.get("VMId"))].append(
            DiskInfo(
                path,
                int(vhd.get("FileSize") or 0),
                bool(d.get("SupportPersistentReservations")),
                text(vhd.get("VhdType")),
                int(vhd.get("Size") or 0),
            )
        )
    for a in g.get("VMNetworkAdapter", []):
        if a.get("SwitchName"):
            switches[_id(a.get("VMId"))].append(str(a.get("SwitchName")))
    processors = {_id(p.get("VMId")): p for p in g.get("VMProcessor", [])}
    found = tuple(vm_info(v, disks, switches, processors) for v in g.get("VirtualMachine", []))
    return tuple(dataclasses.replace(vm, **facts) for vm, facts in zip(found, moves_facts(g, found), strict=True))


def moves_facts(g: dict[str, list[dict[str, Any]]], found: tuple[VmInfo, ...]) -> list[dict[str, Any]]:
    """Per VM, what real moves fail on (hyperv.md section 9): ISOs (Get-VMDvdDrive), checkpoints
    (Get-VMSnapshot), pass-through disks (Get-VMHardDiskDrive DiskNumber), virtual Fibre Channel
    (Get-VMFibreChannelHba SanName), Hyper-V Replica (Get-VMReplication) and possible owners
    (Get-ClusterOwnerNode). Properties a host does not send leave the fact empty (unknown)."""
    isos, checkpoints, passthrough, sans = defaultdict(list), defaultdict(int), defaultdict(list), defaultdict(list)
    for d in g.get("DvdDrive", []):
        if text(d.get("DvdMediaType")) == "ISO" and d.get("Path"):
            isos[_id(d.get("VMId"))].append(str(d.get("Path")))
    for s in g.get("VMSnapshot", []):
        checkpoints[_id(s.get("VMId"))] += 1
    for d in g.get("HardDiskDrive", []):
        if d.get("DiskNumber") is not None:
            passthrough[_id(d.get("VMId"))].append(int(d.get("DiskNumber")))
    for h in g.get("VMFibreChannelHba", []):
        sans[_id(h.get("VMId"))].append(str(h.get("SanName") or ""))
    replication = {_id(r.get("VMId")): r for r in g.get("VMReplication", [])}
    owners = possible_owners(g)
    out = []
    for vm, v in zip(found, g.get("VirtualMachine", []), strict=True):
        r = replication.get(vm.id, {})
        mode = text(r.get("Mode") or r.get("ReplicationMode"))
        out.append(
            {
                "dvd_isos": tuple(isos[vm.id]),
                "checkpoints": checkpoints[vm.id],
                "snapshot_path": str(v.get("SnapshotFileLocation") or ""),
                "smart_paging_path": str(v.get("SmartPagingFilePath") or ""),
                "passthrough_disks": tuple(passthrough[vm.id]),
                "fc_sans": tuple(sans[vm.id]),
                "replication_mode": REPLICATION_MODES.get(mode, ""),
                "primary_server": str(r.get("PrimaryServer") or ""),
                "replica_server": str(r.get("ReplicaServer") or ""),
                "possible_owners": owners.get(vm.name.lower(), ()) if vm.is_clustered else (),
            }
        )
    return out


REPLICATION_MODES = {"Primary": "primary", "Replica": "replica", "ExtendedReplica": "extended_replica"}


VM_RESOURCE = "Virtual Machine "  # a VM role's resource is named after its VM: "Virtual Machine <name>"
VM_CONFIGURATION = "Virtual Machine Configuration "  # the role's other resource


def possible_owners(g: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[str, ...]]:
    """VM name (lower-cased) -> the possible owners of its Virtual Machine resource. Nested cluster
    objects arrive as their names (a host serializes them at depth 1), or as objects with a Name.
    A resource renamed by hand is not matched: its VM's owners stay unknown."""
    out = {}
    for o in g.get("ClusterOwnerNodeList", []):
        resource = _name(o.get("ClusterObject"))
        if resource.startswith(VM_RESOURCE) and not resource.startswith(VM_CONFIGURATION) and o.get("OwnerNodes"):
            out[resource.removeprefix(VM_RESOURCE).lower()] = tuple(_name(n) for n in o.get("OwnerNodes"))
    return out


def _name(value: Any) -> str:
    if isinstance(value, str):
        return value
    p = props(value)
    return str(p.get("Name") if p.get("Name") is not None else text(value))


def vm_info(v: dict[str, Any], disks, switches, processors) -> VmInfo:
    vm_id = _id(v.get("Id") or v.get("VMId"))
    assigned = int(v.get("MemoryAssigned") or 0)
    processor = processors.get(vm_id, {})
    return VmInfo(
        id=vm_id,
        name=str(v.get("Name")),
        state=text(v.get("State")).lower() or "other",
        # Hyper-V reports 0 for a VM that is off; the console plans moves with its startup memory.
        memory_assigned_bytes=assigned or int(v.get("MemoryStartup") or 0),
        config_version=str(v.get("Version") or ""),
        config_path=str(v.get("Path") or v.get("ConfigurationLocation") or ""),
        is_clustered=bool(v.get("IsClustered")),
        compat_vector_stale=bool(v.get("EmulatorCompatibilityVectorStale", False)),
        processor_compatibility=bool(processor.get("CompatibilityForMigrationEnabled")),
        processor_count=int(processor.get("Count") or v.get("ProcessorCount") or 0),
        switch_names=tuple(switches.get(vm_id, ())),
        dirty_rate_mbps=float(v.get("EmulatorDirtyRateMBps") or 0.0),
        migrating=text(v.get("SecondaryOperationalStatus")) == "MigratingVirtualMachine",
        disks=tuple(disks.get(vm_id, ())),
    )


def _id(value: Any) -> str:
    return str(value or "").lower()


def inventory(fqdn: str, g: dict[str, list[dict[str, Any]]], fqdns: dict[str, str]) -> HostInventory:
    return HostInventory(host=host_info(fqdn, g), cluster=cluster_info(g), shares=shares(g, fqdns), vms=vms(g))


def incompatibilities(report: Any) -> tuple[Incompatibility, ...]:
    out = []
    for item in props(report).get("Incompatibilities") or []:
        p = props(item)
        out.append(
            Incompatibility(int(p.get("MessageId") or 0), str(p.get("Message") or ""), str(p.get("Source") or ""))
        )
    return tuple(out)


def job_status(job: dict[str, Any], pipeline_percent: int | None = None, pipeline_error: HyperVError | None = None):
    """Msvm_MigrationJob as MigrationStatus; the percent the Move-VM pipeline reported wins when higher."""
    state = JOB_STATES.get(int(job.get("JobState") or 0), "running")
    percent = int(job.get("PercentComplete") or 0)
    if pipeline_percent is not None and state == "running":
        percent = max(percent, min(99, pipeline_percent))
    error = None
    if state == "failed":
        error = job_error(job) or pipeline_error
    blackout = job.get("EmulatorBlackoutMs")
    return MigrationStatus(
        migration_id=str(job.get("InstanceID")),
        vm_id=_id(job.get("VirtualSystemName")),
        state=state,
        percent=100 if state == "completed" else percent,
        bytes_sent=int(job.get("EmulatorBytesSent") or 0),
        bytes_remaining=int(job.get("EmulatorBytesRemaining") or 0),
        pass_number=int(job.get("EmulatorMemoryPass") or 0),
        dirty_rate_mbps=float(job.get("EmulatorDirtyRateMBps") or 0.0),
        transfer_rate_mbps=float(job.get("EmulatorTransferRateMBps") or 0.0),
        blackout_ms=None if blackout is None else int(blackout),
        error=error,
        # Absent on a real host (only the emulator adds them): None, and the chart says so.
        memory_rate_mbps=_optional(job.get("EmulatorMemoryRateMBps"), float),
        memory_remaining_bytes=_optional(job.get("EmulatorMemoryRemainingBytes"), int),
        destination=str(job.get("DestinationHost") or ""),
    )


def _optional(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


def job_error(job: dict[str, Any]) -> HyperVError | None:
    description = str(job.get("ErrorDescription") or "").strip()
    if not description:
        return None
    code, message, remedy = diagnose(description, str(job.get("ErrorCode") or "21502"))
    return HyperVError(code, message, str(job.get("EmulatorRecommendedAction") or "") or remedy)


def snake(value: Any) -> str:
    """An enumeration's name as the console's value: InProgress -> in_progress, NoFailback -> no_failback."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", text(value)).lower()


def node_drain(node: str, g: dict[str, list[dict[str, Any]]]) -> NodeDrain:
    """Get-ClusterNode (State, DrainStatus), Get-ClusterGroup and Msvm_MigrationJob as a NodeDrain."""
    found = [n for n in g.get("ClusterNode", []) if str(n.get("Name")).lower() == node.lower()]
    if not found:
        raise HyperVError("ObjectNotFound", f"The cluster node '{node}' was not found")
    groups = g.get("ClusterGroup", [])
    roles = tuple(ClusterRole(str(r.get("Name")), text(r.get("OwnerNode")), snake(r.get("State"))) for r in groups)
    jobs = [j for j in g.get("Msvm_MigrationJob", []) if int(j.get("JobType") or 0) in MOVE_JOB_TYPES]
    return NodeDrain(
        node=str(found[0].get("Name")),
        state=snake(found[0].get("State")),
        drain_status=snake(found[0].get("DrainStatus") or "NotInitiated"),
        roles=roles,
        moves=tuple(job_status(j) for j in jobs),
    )
