"""The simulated fabric as Hyper-V, Failover Clustering, SMB and CIM objects (property names as Hyper-V's).

Properties a real host does not report but the simulator knows (a VM's memory dirty rate, whether its
compatibility vector is stale, the migration NIC's speed, a migration's byte counts) travel as extra
properties named Emulator*: a client reading a real host finds them absent and falls back to what it
can tell otherwise. Kerberos delegation is not among them: it lives in Active Directory, the console
never reads it from a host (hyperv.md section 9).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from psrpcore.types import PSVersion

from fabric.emulator.records import (
    AUTH,
    CIM,
    CLUSTER,
    PERFORMANCE,
    REPLICATION_MODES,
    STATES,
    ClusterGroupState,
    ClusterNodeDrainStatus,
    ClusterNodeState,
    DvdMediaType,
    VMOperationalStatus,
    VMReplicationMode,
    VMState,
    cim_object,
    guid,
    hyperv_object,
    int64,
    ps_object,
    uint16,
    uint32,
    uint64,
)
from fabric.sim import report as sim_report
from fabric.sim.world import SimCluster, SimDisk, SimHost, SimMigration, SimVm, unc_parts

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric

VIRT_NS = "root\\virtualization\\v2"
CIMV2_NS = "root\\cimv2"
JOB_STATES = {"running": 4, "completed": 7, "cancelled": 8, "failed": 10}
JOB_TYPES = {"live": 305, "quick": 305, "live_vsm": 306, "network": 306, "storage": 307}
# Msvm_MigrationJob.TimeBeforeRemoval: a job is kept this long after it ends, then WMI removes it.
TIME_BEFORE_REMOVAL_S = 300.0
ACTIVITY_MOVE = "Move a virtual machine"
ACTIVITY_STORAGE = "Move a virtual machine's storage"
MIGRATION_PHASE = "EmulatorPhase"


def domain_of(fqdn: str) -> str:
    return fqdn.split(".", 1)[1] if "." in fqdn else ""


def vm_host(h: SimHost) -> object:
    return hyperv_object(
        "VMHost",
        Name=h.name,
        ComputerName=h.name,
        # As on Hyper-V: the domain, not the host's FQDN (hyperv.md section 5).
        FullyQualifiedDomainName=domain_of(h.fqdn),
        LogicalProcessorCount=h.logical_processors,
        MemoryCapacity=int64(h.memory_total_bytes),
        MaximumVirtualMachineMigrations=uint32(h.max_live_migrations),
        MaximumStorageMigrations=uint32(h.max_storage_migrations),
        VirtualMachineMigrationEnabled=h.migration_enabled,
        VirtualMachineMigrationPerformanceOption=PERFORMANCE[h.performance_option],
        VirtualMachineMigrationAuthenticationType=AUTH[h.auth_type],
        UseAnyNetworkForMigration=h.use_any_network,
        VirtualMachinePath=h.vm_path,
        VirtualHardDiskPath=h.vhd_path,
        EmulatorFullyQualifiedName=h.fqdn,
        EmulatorMigrationNicGbps=float(h.nic_gbps),
    )


def supported_versions(h: SimHost) -> list[object]:
    newest = max(h.supported_config_versions, key=float)
    return [
        hyperv_object(
            "VMHostSupportedVersion", Name=f"Configuration version {v}", Version=PSVersion(v), IsDefault=v == newest
        )
        for v in h.supported_config_versions
    ]


def migration_networks(h: SimHost) -> list[object]:
    return [
        hyperv_object("VMMigrationNetwork", Subnet=subnet, Priority=uint32(i + 1))
        for i, subnet in enumerate(h.migration_networks)
    ]


def switches(h: SimHost) -> list[object]:
    return [
        hyperv_object("VMSwitch", Name=name, SwitchType="External", ComputerName=h.name) for name in h.virtual_switches
    ]


def operating_system(h: SimHost) -> object:
    return cim_object(
        "Win32_OperatingSystem",
        CIMV2_NS,
        ("CIM_OperatingSystem",),
        Caption=f"Microsoft {h.os_version}",
        CSName=h.name.upper(),
        TotalVisibleMemorySize=uint64(h.memory_total_bytes // 1024),
        FreePhysicalMemory=uint64(max(0, h.memory_available_bytes) // 1024),
    )


def processor(h: SimHost) -> object:
    return cim_object(
        "Win32_Processor",
        CIMV2_NS,
        ("CIM_Processor",),
        Name=h.processor_family,
        NumberOfLogicalProcessors=uint32(h.logical_processors),
        LoadPercentage=uint16(h.cpu_load_percent),
    )


def vm_object(fabric: Fabric, vm: SimVm, migrating: bool) -> object:
    host = fabric.hosts[vm.host]
    state = STATES.get(vm.state, VMState.Other)
    return hyperv_object(
        "VirtualMachine",
        Name=vm.name,
        Id=guid(vm.id),
        VMId=guid(vm.id),
        VMName=vm.name,
        ComputerName=host.name,
        State=state,
        Path=vm.config_path,
        ConfigurationLocation=vm.config_path,
        SnapshotFileLocation=vm.checkpoint_folder,
        SmartPagingFilePath=vm.smart_paging_folder,
        ReplicationMode=REPLICATION_MODES.get(vm.replication_mode, VMReplicationMode.none),
        IsClustered=vm.is_clustered,
        Version=vm.config_version,
        Generation=2,
        ProcessorCount=int64(vm.processor_count),
        # Hyper-V reports 0 for a VM that is off; the startup memory is what a move must find.
        MemoryAssigned=int64(vm.memory_bytes if state in (VMState.Running, VMState.Paused) else 0),
        MemoryStartup=int64(vm.memory_bytes),
        PrimaryOperationalStatus=VMOperationalStatus.InService if migrating else VMOperationalStatus.Ok,
        SecondaryOperationalStatus=VMOperationalStatus.MigratingVirtualMachine if migrating else None,
        EmulatorDirtyRateMBps=float(vm.dirty_rate_mbps),
        EmulatorCompatibilityVectorStale=vm.compat_vector_stale,
    )


def _drive(vm: SimVm, host: SimHost, index: int, **props) -> object:
    """A HardDiskDrive at SCSI 0:index; props tell what is attached (a file's Path, or a DiskNumber)."""
    return hyperv_object(
        "HardDiskDrive",
        Name=f"Hard Drive on SCSI controller number 0 at location {index}",
        VMName=vm.name,
        VMId=guid(vm.id),
        ComputerName=host.name,
        ControllerType="SCSI",
        ControllerNumber=0,
        ControllerLocation=index,
        **props,
    )


def hard_disk(vm: SimVm, host: SimHost, disk: SimDisk, index: int) -> object:
    return _drive(vm, host, index, Path=disk.path, SupportPersistentReservations=disk.shared)


def passthrough_disk(vm: SimVm, host: SimHost, number: int, index: int) -> object:
    """A physical disk attached to the VM: Hyper-V reports its DiskNumber and no virtual disk file."""
    return _drive(vm, host, index, Path="", DiskNumber=uint32(number), SupportPersistentReservations=False)


def dvd_drives(vm: SimVm, host: SimHost) -> list[object]:
    """Get-VMDvdDrive: one drive per ISO the VM holds (IDE controller 1, as Hyper-V attaches them)."""
    return [
        hyperv_object(
            "DvdDrive",
            Name=f"DVD Drive on IDE controller number 1 at location {i}",
            VMName=vm.name,
            VMId=guid(vm.id),
            ComputerName=host.name,
            ControllerType="IDE",
            ControllerNumber=1,
            ControllerLocation=i,
            DvdMediaType=DvdMediaType.ISO,
            Path=path,
        )
        for i, path in enumerate(vm.dvd_isos)
    ]


def snapshots(vm: SimVm, host: SimHost) -> list[object]:
    """Get-VMSnapshot: the VM's checkpoints, their files in its SnapshotFileLocation."""
    return [
        hyperv_object(
            "VMSnapshot",
            Name=f"{vm.name} - checkpoint {i + 1}",
            Id=guid(str(uuid.uuid5(uuid.UUID(vm.id), f"checkpoint-{i}"))),
            VMName=vm.name,
            VMId=guid(vm.id),
            ComputerName=host.name,
            SnapshotType="Standard",
            Path=vm.checkpoint_folder,
        )
        for i in range(vm.checkpoints)
    ]


def fibre_channel_hbas(vm: SimVm, host: SimHost) -> list[object]:
    """Get-VMFibreChannelHba: one adapter per virtual SAN, each with its two WWN sets (A and B)."""
    base = uuid.UUID(vm.id).hex[:8].upper()
    return [
        hyperv_object(
            "VMFibreChannelHba",
            Name="Fibre Channel Adapter",
            VMName=vm.name,
            VMId=guid(vm.id),
            ComputerName=host.name,
            SanName=san,
            # 16 hex digits each, from Hyper-V's default range (C003FF...); set B is the one a live move uses.
            WorldWideNodeNameSetA=f"C003FF{base}{4 * i:02X}",
            WorldWidePortNameSetA=f"C003FF{base}{4 * i + 1:02X}",
            WorldWideNodeNameSetB=f"C003FF{base}{4 * i + 2:02X}",
            WorldWidePortNameSetB=f"C003FF{base}{4 * i + 3:02X}",
        )
        for i, san in enumerate(vm.fc_sans)
    ]


def replication(vm: SimVm, host: SimHost) -> object:
    """Get-VMReplication for a replication-enabled VM (property names as its table shows them)."""
    return hyperv_object(
        "VMReplication",
        VMName=vm.name,
        VMId=guid(vm.id),
        ComputerName=host.name,
        Mode=REPLICATION_MODES[vm.replication_mode],
        State="Replicating",
        Health="Normal",
        FrequencySec=uint32(300),
        PrimaryServer=vm.primary_server,
        ReplicaServer=vm.replica_server,
        ReplicaPort=uint32(80),
        AuthType="Kerberos",
    )


def vhd(disk: SimDisk, host: SimHost) -> object:
    return ps_object(
        ["Microsoft.Vhd.PowerShell.VirtualHardDisk"],
        ComputerName=host.name,
        Path=disk.path,
        VhdFormat="VHDX",
        VhdType=disk.vhd_type,
        FileSize=uint64(disk.size_bytes),
        Size=uint64(disk.virtual_size),
        Attached=True,
    )


def network_adapters(vm: SimVm, host: SimHost) -> list[object]:
    return [
        hyperv_object(
            "VMNetworkAdapter",
            Name="Network Adapter",
            VMName=vm.name,
            VMId=guid(vm.id),
            ComputerName=host.name,
            SwitchName=switch,
            IsLegacy=False,
            MacAddress=f"00155D{vm.id.replace('-', '')[-6:].upper()}"[:-1] + str(i % 10),
        )
        for i, switch in enumerate(vm.switch_names)
    ]


def vm_processor(vm: SimVm, host: SimHost) -> object:
    return hyperv_object(
        "VMProcessor",
        VMName=vm.name,
        VMId=guid(vm.id),
        ComputerName=host.name,
        Count=int64(vm.processor_count),
        CompatibilityForMigrationEnabled=vm.processor_compat,
    )


def cluster_object(c: SimCluster) -> object:
    # A WS2016/2019 cluster has no MaximumParallelMigrations property at all (hyperv.md section 9).
    cap = {} if c.max_parallel_migrations is None else {"MaximumParallelMigrations": uint32(c.max_parallel_migrations)}
    return ps_object(
        [f"{CLUSTER}.Cluster"],
        Name=c.name,
        Domain=domain_of(c.fqdn),
        ClusterFunctionalLevel=uint32(c.functional_level),
        **cap,
    )


def cluster_node(fabric: Fabric, c: SimCluster, fqdn: str) -> object:
    host = fabric.hosts.get(fqdn)
    return ps_object(
        [f"{CLUSTER}.ClusterNode"],
        Name=host.name if host else fqdn.split(".")[0],
        Cluster=c.name,
        State=_node_state(host),
        DrainStatus=getattr(ClusterNodeDrainStatus, DRAIN_NAMES[host.drain_status if host else "not_initiated"]),
        EmulatorFullyQualifiedName=fqdn,
    )


DRAIN_NAMES = {
    "not_initiated": "NotInitiated",
    "in_progress": "InProgress",
    "completed": "Completed",
    "failed": "Failed",
}


def _node_state(host: SimHost | None) -> ClusterNodeState:
    if host is None or not host.reachable:
        return ClusterNodeState.Down
    return ClusterNodeState.Paused if host.node_state == "paused" else ClusterNodeState.Up


def cluster_group(vm: SimVm, host: SimHost, cluster: str) -> object:
    return ps_object(
        [f"{CLUSTER}.ClusterGroup"],
        Name=vm.name,
        OwnerNode=host.name,
        Cluster=cluster,
        State=ClusterGroupState.Online if vm.state == "running" else ClusterGroupState.Offline,
        GroupType="VirtualMachine",
    )


def cluster_resources(vm: SimVm, node: str, cluster: str) -> list[object]:
    """The resources of a VM's cluster role: the virtual machine and its configuration. Nested objects
    (OwnerGroup, OwnerNode, ResourceType) arrive as their names, as a host serializes them at depth 1."""
    return [
        ps_object(
            [f"{CLUSTER}.ClusterResource"],
            Name=f"{kind} {vm.name}",
            OwnerGroup=vm.name,
            OwnerNode=node,
            ResourceType=kind,
            Cluster=cluster,
            State=ClusterGroupState.Online if vm.state == "running" else ClusterGroupState.Offline,
        )
        for kind in ("Virtual Machine", "Virtual Machine Configuration")
    ]


def owner_nodes(resource: str, nodes: list[str]) -> object:
    """Get-ClusterOwnerNode for a resource: its possible owners (ClusterObject, OwnerNodes)."""
    return ps_object([f"{CLUSTER}.ClusterOwnerNodeList"], ClusterObject=resource, OwnerNodes=list(nodes))


def smb_connections(fabric: Fabric, h: SimHost) -> list[object]:
    """Get-SmbConnection: the shares the host's SMB client is connected to, by the name it used."""
    rows = []
    for unc in h.shares:
        server, share = unc_parts(unc) or ("", "")
        registered = fabric.shares.get(unc)
        rows.append(
            ps_object(
                [f"{CIM}#ROOT/Microsoft/Windows/SMB/MSFT_SmbConnection", CIM],
                ServerName=registered.file_server if registered else server,
                ShareName=unc.rstrip("\\").split("\\")[3] if registered else share,
                Dialect="3.1.1",
                UserName=f"{domain_of(h.fqdn).split('.')[0].upper()}\\{h.name.upper()}$",
                NumOpens=uint32(1),
            )
        )
    return rows


def dns_record(name: str, fqdn: str) -> object:
    return ps_object(
        ["Microsoft.DnsClient.Commands.DnsRecord_A", "Microsoft.DnsClient.Commands.DnsRecord"],
        Name=fqdn,
        Type="A",
        Section="Answer",
        QueryName=name,
    )


def migration_job(fabric: Fabric, m: SimMigration) -> object:
    """Msvm_MigrationJob (hyperv.md section 6) for one simulated migration."""
    status = sim_report.status(fabric, m)
    error = status.error
    running = m.state == "running"
    return cim_object(
        "Msvm_MigrationJob",
        VIRT_NS,
        ("Msvm_ConcreteJob", "CIM_ConcreteJob", "CIM_Job"),
        InstanceID=m.id,
        Caption=ACTIVITY_STORAGE if m.kind == "storage" else ACTIVITY_MOVE,
        ElementName=ACTIVITY_STORAGE if m.kind == "storage" else ACTIVITY_MOVE,
        JobState=uint16(JOB_STATES[m.state]),
        JobType=uint16(JOB_TYPES[m.kind]),
        PercentComplete=uint16(status.percent),
        VirtualSystemName=m.vm_id,
        DestinationHost=m.destination,
        Cancellable=running,
        ErrorCode=uint16(0 if error is None else 32768),
        # Hyper-V writes the failure's code at the end of its description: the client reads it from there.
        ErrorDescription="" if error is None else f"{error.message} ({error.code})",
        EmulatorSourceHost=m.source,
        EmulatorMigrationKind=m.kind,
        EmulatorStartedAt=float(m.started_at),
        EmulatorBytesSent=uint64(status.bytes_sent),
        EmulatorBytesRemaining=uint64(status.bytes_remaining),
        EmulatorMemoryPass=uint32(status.pass_number),
        EmulatorDirtyRateMBps=float(status.dirty_rate_mbps),
        EmulatorTransferRateMBps=float(status.transfer_rate_mbps),
        EmulatorBlackoutMs=None if status.blackout_ms is None else int64(status.blackout_ms),
        EmulatorMemoryRateMBps=status.memory_rate_mbps,
        EmulatorMemoryRemainingBytes=None
        if status.memory_remaining_bytes is None
        else uint64(status.memory_remaining_bytes),
        EmulatorRecommendedAction="" if error is None else error.remedy,
        **{MIGRATION_PHASE: m.phase},
    )


def check_job(job: dict) -> object:
    """The finished Msvm_MigrationJob a Compare-VM check leaves (JobType 301/302)."""
    return cim_object(
        "Msvm_MigrationJob",
        VIRT_NS,
        ("Msvm_ConcreteJob", "CIM_ConcreteJob", "CIM_Job"),
        InstanceID=job["id"],
        JobState=uint16(JOB_STATES["completed"]),
        JobType=uint16(job["job_type"]),
        PercentComplete=uint16(100),
        VirtualSystemName=job["vm_id"],
        DestinationHost=job["destination"],
        Cancellable=False,
        ErrorCode=uint16(0),
        ErrorDescription="",
        EmulatorSourceHost=job["source"],
        EmulatorStartedAt=float(job["at"]),
    )


def compare_report(vm: SimVm, destination: str, incompatibilities: list) -> object:
    return hyperv_object(
        "VMCompatibilityReport",
        VM=vm.name,
        VMId=guid(vm.id),
        OperationType="MoveVirtualMachine",
        Destination=destination,
        Incompatibilities=[
            hyperv_object("VMCompatibilityError", Message=i.message, MessageId=int64(i.message_id), Source=i.source)
            for i in incompatibilities
        ],
    )


def cim_method_result(return_value: int, **props: object) -> object:
    return ps_object(["Microsoft.Management.Infrastructure.CimMethodResult"], ReturnValue=uint32(return_value), **props)


def is_migrating(fabric: Fabric, vm_id: str) -> bool:
    return fabric.migration_of_vm(vm_id) is not None
