"""The driver boundary: what the console asks of Hyper-V, as plain data.

Two implementations follow this API: the pypsrp driver (production, and the embedded default
through the host emulator) and the simulator driver (fast unit tests). Nothing above this module
knows which one it talks to. Enumerations travel as the console's values (the TextChoices of
fabric.models): "tcpip" | "compression" | "smb", "kerberos" | "credssp", "running" | "off" | ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Connection:
    """How to reach one host's WinRM endpoint. The password is never logged or rendered."""

    fqdn: str
    address: str
    port: int = 5986
    transport: str = "https"
    auth: str = "negotiate"
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class DiskInfo:
    path: str
    size_bytes: int  # Get-VHD FileSize: what a storage move copies
    shared: bool = False  # SupportPersistentReservations
    vhd_type: str = ""  # Get-VHD VhdType: Fixed, Dynamic, Differencing; "" = not read
    max_size_bytes: int = 0  # Get-VHD Size: the disk's size as the guest sees it; 0 = not read


@dataclass(frozen=True)
class VmInfo:
    id: str  # GUID
    name: str
    state: str
    memory_assigned_bytes: int
    config_version: str
    config_path: str
    is_clustered: bool = False
    compat_vector_stale: bool = False
    processor_compatibility: bool = False  # Get-VMProcessor CompatibilityForMigrationEnabled
    processor_count: int = 0  # Get-VMProcessor Count (Get-VM ProcessorCount); 0 = not read
    switch_names: tuple[str, ...] = ()
    dirty_rate_mbps: float = 0.0
    migrating: bool = False  # SecondaryOperationalStatus MigratingVirtualMachine
    disks: tuple[DiskInfo, ...] = ()
    # Facts real moves fail on (hyperv.md section 9):
    dvd_isos: tuple[str, ...] = ()  # Get-VMDvdDrive: Path of each drive holding an ISO
    checkpoints: int = 0  # Get-VMSnapshot: how many
    snapshot_path: str = ""  # Get-VM SnapshotFileLocation
    smart_paging_path: str = ""  # Get-VM SmartPagingFilePath
    passthrough_disks: tuple[int, ...] = ()  # Get-VMHardDiskDrive: DiskNumber of each physical disk
    fc_sans: tuple[str, ...] = ()  # Get-VMFibreChannelHba: SanName of each virtual Fibre Channel adapter
    replication_mode: str = ""  # Get-VMReplication Mode: "" | "primary" | "replica" | "extended_replica"
    primary_server: str = ""
    replica_server: str = ""
    possible_owners: tuple[str, ...] = ()  # cluster node names (Get-ClusterOwnerNode); () = not known


@dataclass(frozen=True)
class ShareInfo:
    unc_path: str  # as registered on the host
    file_server: str
    file_server_fqdn: str = ""


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    fqdn: str
    functional_level: int
    max_parallel_migrations: int | None  # None: no such property (WS2016/2019): no cluster cap
    nodes: tuple[str, ...] = ()  # node FQDNs


@dataclass(frozen=True)
class HostInfo:
    fqdn: str
    name: str
    os_version: str
    supported_config_versions: tuple[str, ...]
    memory_total_bytes: int
    memory_available_bytes: int
    processor_family: str
    logical_processors: int
    cpu_load_percent: int
    nic_gbps: float
    migration_enabled: bool
    max_live_migrations: int
    max_storage_migrations: int
    performance_option: str
    auth_type: str
    use_any_network: bool
    migration_networks: tuple[str, ...]
    virtual_switches: tuple[str, ...]
    vm_path: str
    vhd_path: str


@dataclass(frozen=True)
class HostInventory:
    """Everything one host reports in one sync."""

    host: HostInfo
    cluster: ClusterInfo | None
    shares: tuple[ShareInfo, ...]
    vms: tuple[VmInfo, ...]


@dataclass(frozen=True)
class MoveRequest:
    """One migration as Hyper-V is asked for it (Move-VM / Move-VMStorage)."""

    vm_id: str
    source: str  # host FQDN
    destination: str  # host FQDN; equals source for a storage move
    kind: str  # "live" | "live_vsm" | "storage" | "quick" | "network"
    storage_path: str = ""  # -DestinationStoragePath
    vhds: tuple[tuple[str, str], ...] = ()  # selected VHDs: (source path, destination path)
    performance_option: str = ""  # "" = the host's default


@dataclass(frozen=True)
class MigrationStatus:
    """A sample of a running (or finished) migration, as Msvm_MigrationJob and the progress stream tell it."""

    migration_id: str
    vm_id: str
    state: str  # "running" | "completed" | "failed" | "cancelled"
    percent: int
    bytes_sent: int = 0
    bytes_remaining: int = 0
    pass_number: int = 0
    dirty_rate_mbps: float = 0.0
    transfer_rate_mbps: float = 0.0
    blackout_ms: int | None = None
    error: HyperVError | None = None
    # Pre-copy figures a real host may not report (the emulator does; psrp_parse reads its Emulator*
    # properties). None means unknown, not zero: the convergence chart then says the host gives none.
    # memory_rate_mbps is memory copied per second (more than the wire carries with compression): it
    # is what competes with the dirty rate. memory_remaining_bytes is memory the destination does not
    # yet have in its current state: the rest of this pass plus what the guest dirtied during it.
    memory_rate_mbps: float | None = None
    memory_remaining_bytes: int | None = None
    destination: str = ""  # Msvm_MigrationJob DestinationHost, where read ("" = not read)


@dataclass(frozen=True)
class ClusterRole:
    """A cluster group as Get-ClusterGroup reports it (a VM role is named after its VM by default)."""

    name: str
    owner_node: str  # the node's name
    state: str  # "online" | "offline" | "failed" | "partial_online" | "pending" | ...


@dataclass(frozen=True)
class NodeDrain:
    """A cluster node as Get-ClusterNode reports it after Suspend-ClusterNode -Drain, with what moves.

    state: "up" | "down" | "paused" | "joining"; drain_status: "not_initiated" | "in_progress" |
    "completed" | "failed" (Get-ClusterNode DrainStatus). roles: the cluster's groups; moves: the node's
    migration jobs (Msvm_MigrationJob: the live migrations the cluster runs for it, running and recent).
    """

    node: str
    state: str
    drain_status: str
    roles: tuple[ClusterRole, ...] = ()
    moves: tuple[MigrationStatus, ...] = ()


class HyperVError(Exception):
    """A failure as Hyper-V reports it: its code (hex HRESULT or event id), message and the remedy to show."""

    def __init__(self, code: str, message: str, remedy: str = ""):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.remedy = remedy

    def __reduce__(self):  # pickled as made (an inventory read in a helper process comes back so)
        return type(self), (self.code, self.message, self.remedy)


class HostUnreachable(HyperVError):
    """The host did not answer (refused, timed out, name not found)."""

    def __init__(self, fqdn: str, reason: str):
        remedy = "Check that the host is up, WinRM runs and the port is open"
        super().__init__("unreachable", f"{fqdn} is unreachable: {reason}", remedy)
        self.fqdn = fqdn
        self.reason = reason

    def __reduce__(self):
        return type(self), (self.fqdn, self.reason)


@dataclass(frozen=True)
class Incompatibility:
    """One entry of Compare-VM's report (hyperv.md section 5), e.g. 33012 for a missing switch."""

    message_id: int
    message: str
    source: str = ""


@dataclass(frozen=True)
class HostSettings:
    """Set-VMHost values to change; None leaves a value as it is."""

    max_live_migrations: int | None = None
    max_storage_migrations: int | None = None
    performance_option: str | None = None
    auth_type: str | None = None
    migration_enabled: bool | None = None
    use_any_network: bool | None = None  # Set-VMHost -UseAnyNetworkForMigration
    add_networks: tuple[str, ...] = ()  # Add-VMMigrationNetwork -Subnet (CIDR), after the host's own
    remove_networks: tuple[str, ...] = ()  # Remove-VMMigrationNetwork -Subnet
    vm_path: str | None = None  # Set-VMHost -VirtualMachinePath: the default folder for VM files
    vhd_path: str | None = None  # Set-VMHost -VirtualHardDiskPath: the default folder for virtual disks

    def is_empty(self) -> bool:
        return (
            not self.add_networks
            and not self.remove_networks
            and all(getattr(self, name) is None for name in SCALAR_SETTINGS)
        )


SCALAR_SETTINGS = (
    "max_live_migrations",
    "max_storage_migrations",
    "performance_option",
    "auth_type",
    "migration_enabled",
    "use_any_network",
    "vm_path",
    "vhd_path",
)


class Driver(Protocol):
    """What the console asks of one host. Moves are asked of the source host (Move-VM runs there);
    a migration id is the host's own job id (Msvm_MigrationJob), valid across console restarts."""

    def inventory(self, conn: Connection) -> HostInventory: ...

    def get_vm(self, conn: Connection, vm_id: str) -> VmInfo | None:
        """Get-VM -Id on that host; None when the VM is not there."""

    def compare(self, conn: Connection, request: MoveRequest) -> tuple[Incompatibility, ...]:
        """Compare-VM with the move's parameters: what would stop it on the destination."""

    def start_migration(self, conn: Connection, request: MoveRequest) -> str: ...

    def migration_status(
        self, conn: Connection, migration_id: str, request: MoveRequest | None = None
    ) -> MigrationStatus:
        """The job's state; with the request, a job the host already removed is answered from where
        the VM runs instead of NotFound."""

    def find_migration(self, conn: Connection, vm_id: str) -> MigrationStatus | None:
        """The latest migration of a VM the host knows of (running or finished), e.g. after a worker died."""

    def cancel_migration(self, conn: Connection, migration_id: str) -> None: ...

    def stop_vm(self, conn: Connection, vm_id: str) -> None:
        """Get-VM -Id | Stop-VM -Force: the guest shuts down (Hyper-V forces it after five minutes if
        applications hold it up); returns when the VM is off. For a maintenance that cannot wait."""

    def save_vm(self, conn: Connection, vm_id: str) -> None:
        """Get-VM -Id | Save-VM: the VM's memory is saved to disk; returns when it is saved."""

    def start_vm(self, conn: Connection, vm_id: str) -> None:
        """Get-VM -Id | Start-VM: an off VM boots, a saved one resumes from its saved state; returns when
        it runs. After a maintenance's offline move, on the VM's new host."""

    def remove_cluster_role(self, conn: Connection, vm_id: str) -> None:
        """Remove-ClusterGroup -VMId -RemoveResources -Force: the VM leaves HA before a cross-cluster move."""

    def add_cluster_role(self, conn: Connection, vm_id: str) -> None:
        """Add-ClusterVirtualMachineRole -VMId on the cluster of the host connected to: HA again after the move."""

    def set_host_settings(self, conn: Connection, settings: HostSettings) -> HostInfo:
        """Set-VMHost (and Enable-/Disable-VMMigration); returns the values read back."""

    def suspend_node(self, conn: Connection, node: str, drain: bool = True) -> NodeDrain:
        """Suspend-ClusterNode -Name node [-Drain], asked of a node of its cluster: the node pauses and
        the cluster moves its roles; returns at once (no -Wait), node_drain follows the drain."""

    def resume_node(self, conn: Connection, node: str, failback: str = "immediate") -> NodeDrain:
        """Resume-ClusterNode -Name node -Failback Immediate|NoFailback|Policy ("immediate",
        "no_failback", "policy"): the node takes roles again; Immediate brings the drained ones back."""

    def node_drain(self, conn: Connection, node: str) -> NodeDrain:
        """Get-ClusterNode -Name node, Get-ClusterGroup and the Msvm_MigrationJob instances of the host
        connected to, in one round trip: how the node's drain (or failback) goes."""

    def set_cluster_parallel_migrations(self, conn: Connection, cluster: str, value: int) -> ClusterInfo:
        """The cluster's MaximumParallelMigrations, asked of one of its nodes (no cmdlet sets it: a
        constant script, powershell.SET_CLUSTER_PARALLEL_MIGRATIONS); returns the cluster read back."""
