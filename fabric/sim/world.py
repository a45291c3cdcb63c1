"""The simulated fabric's data: clusters, hosts, shares, VMs, disks, migrations, and their JSON form.

Plain mutable dataclasses (the Fabric in simulator.py changes them as migrations run), with lists
rather than tuples so a JSON round trip gives back equal objects. Sizes are bytes, rates MB/s
(1 MB = 10^6 bytes, so 1 Gbps = 125 MB/s), times simulated seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

MB = 1_000_000
GIB = 1024**3

# Move kinds that move a running VM's memory (count against the live limit), and those that copy
# files (count against the storage limit). Live VSM is both (hyperv.md section 3).
LIVE_KINDS = frozenset({"live", "live_vsm", "quick"})
STORAGE_KINDS = frozenset({"storage", "live_vsm", "network"})
MOVE_KINDS = LIVE_KINDS | STORAGE_KINDS
# States in which a VM holds its memory on its host.
MEMORY_STATES = frozenset({"running", "paused"})


@dataclass
class SimCluster:
    name: str
    fqdn: str
    functional_level: int
    # None: a cluster without the property (before WS2022 with the September 2022 update): no cluster cap.
    max_parallel_migrations: int | None = 1
    nodes: list[str] = field(default_factory=list)  # node FQDNs


@dataclass
class SimShare:
    unc_path: str  # as registered, e.g. \\fs01.contoso.test\vms or \\fs01\vmstore2
    file_server: str  # server part as registered
    file_server_fqdn: str = ""


@dataclass
class SimHost:
    fqdn: str
    name: str
    address: str
    port: int = 5985
    transport: str = "http"
    cluster: str = ""  # cluster name, "" for a standalone host
    # The FailoverClusters PowerShell module (Failover Clustering feature) is installed: every node has
    # it; a standalone host usually does not, and then the cluster cmdlets do not exist there.
    failover_clustering_installed: bool = True
    os_version: str = "Windows Server 2022 Datacenter"
    supported_config_versions: list[str] = field(default_factory=lambda: ["8.0", "9.0", "10.0"])
    memory_total_bytes: int = 256 * GIB
    memory_available_bytes: int = 256 * GIB
    processor_family: str = "Intel Xeon Gold 6248R (Cascade Lake)"
    logical_processors: int = 48
    cpu_load_percent: int = 20
    nic_gbps: float = 10.0
    migration_enabled: bool = True
    max_live_migrations: int = 2
    max_storage_migrations: int = 2
    performance_option: str = "compression"
    auth_type: str = "kerberos"
    # Kerberos constrained delegation in AD: the world's hidden truth; a host cannot report it, a move
    # between hosts that lack it fails with 0x8009030E (hyperv.md section 9).
    delegation_configured: bool = True
    use_any_network: bool = False
    migration_networks: list[str] = field(default_factory=lambda: ["10.10.0.0/24"])
    virtual_switches: list[str] = field(default_factory=lambda: ["vSwitch-Prod"])
    vm_path: str = "C:\\ProgramData\\Microsoft\\Windows\\Hyper-V"
    vhd_path: str = "C:\\ProgramData\\Microsoft\\Windows\\Virtual Hard Disks"
    storage_mbps: float = 500.0  # what its storage reads/writes for a copy
    reachable: bool = True
    shares: list[str] = field(default_factory=list)  # UNC paths (as registered) it is connected to
    virtual_sans: list[str] = field(default_factory=list)  # virtual Fibre Channel SANs defined on it (Get-VMSan)
    # A cluster node's state as Get-ClusterNode reports it (fabric/sim/drain.py): State "up" | "paused",
    # DrainStatus "not_initiated" | "in_progress" | "completed" | "failed".
    node_state: str = "up"
    drain_status: str = "not_initiated"
    drain_moves: list[str] = field(default_factory=list)  # migration ids the cluster started for the drain
    drained: list[str] = field(default_factory=list)  # ids of the VM roles the drain moved off the node
    drain_stuck: list[str] = field(default_factory=list)  # ids of the VM roles the drain could not move
    failback: list[str] = field(default_factory=list)  # ids of drained roles still to come back (Resume -Failback)


@dataclass
class SimDisk:
    path: str
    size_bytes: int
    shared: bool = False  # SupportPersistentReservations
    attached: list[str] = field(default_factory=list)  # ids of every VM using it (shared VHDX: several)
    vhd_type: str = "Dynamic"  # Get-VHD VhdType: Fixed, Dynamic or Differencing
    max_bytes: int = 0  # Get-VHD Size, the disk's size as the guest sees it; 0: the default below

    @property
    def virtual_size(self) -> int:
        """Get-VHD Size: what was set, else Hyper-V's default for a new disk (127 GiB), or the file's size."""
        return self.max_bytes or max(self.size_bytes, 127 * GIB)


@dataclass
class SimVm:
    id: str
    name: str
    host: str  # FQDN
    state: str = "running"
    memory_bytes: int = 4 * GIB
    config_version: str = "10.0"
    config_path: str = ""  # folder of the configuration (Get-VM Path)
    is_clustered: bool = False
    compat_vector_stale: bool = False
    switch_names: list[str] = field(default_factory=list)
    dirty_rate_mbps: float = 20.0
    processor_compat: bool = False  # Set-VMProcessor -CompatibilityForMigrationEnabled
    processor_count: int = 2  # Get-VMProcessor Count
    disks: list[SimDisk] = field(default_factory=list)
    # Facts real moves fail on (hyperv.md section 9), as the host reports them:
    dvd_isos: list[str] = field(default_factory=list)  # Get-VMDvdDrive Path of each drive holding an ISO
    checkpoints: int = 0  # Get-VMSnapshot count
    snapshot_path: str = ""  # Get-VM SnapshotFileLocation ("" = the configuration folder)
    smart_paging_path: str = ""  # Get-VM SmartPagingFilePath ("" = the configuration folder)
    passthrough_disks: list[int] = field(default_factory=list)  # Get-VMHardDiskDrive DiskNumber of physical disks
    fc_sans: list[str] = field(default_factory=list)  # Get-VMFibreChannelHba SanName of each adapter
    replication_mode: str = ""  # Get-VMReplication Mode: "" | "primary" | "replica" | "extended_replica"
    primary_server: str = ""  # Get-VMReplication PrimaryServer
    replica_server: str = ""  # Get-VMReplication ReplicaServer (a Replica Broker's name for a cluster)
    possible_owners: list[str] = field(default_factory=list)  # node names; [] = every node of its cluster

    @property
    def checkpoint_folder(self) -> str:
        return self.snapshot_path or self.config_path

    @property
    def smart_paging_folder(self) -> str:
        return self.smart_paging_path or self.config_path


@dataclass
class SimMigration:
    """One running or finished move and where its fluid simulation stands."""

    id: str
    vm_id: str
    vm_name: str
    kind: str
    source: str
    destination: str
    performance_option: str
    storage_path: str = ""
    vhds: list[list[str]] = field(default_factory=list)
    per_disk: bool = False  # asked with -Vhds: checkpoints and smart paging stay where they are
    state: str = "running"  # running | completed | failed | cancelled
    phase: str = "prepare"  # prepare | storage | precopy | blackout | quick | resume | done
    started_at: float = 0.0
    ended_at: float | None = None
    memory_bytes: int = 0  # memory this move copies (0 for storage and offline moves)
    dirty_bytes_s: float = 0.0
    storage_total: int = 0  # file bytes this move copies
    storage_done: float = 0.0
    memory_done: float = 0.0  # memory bytes sent, every round
    wire_sent: float = 0.0  # bytes on the network (after compression)
    phase_left: float = 0.0  # units left in the phase: bytes, or seconds for prepare/resume
    pass_index: int = 0
    pass_elapsed: float = 0.0
    blackout_started_at: float | None = None
    blackout_s: float | None = None
    converged: bool | None = None
    percent: int = 0
    reserved_bytes: int = 0  # memory held on the destination until the move ends
    ha_removed: bool = False  # a clustered VM left its cluster for this move
    failure: dict[str, Any] | None = None  # injected: {"kind", "at_percent"}
    error: dict[str, str] | None = None  # {"code", "message", "remedy"}


@dataclass
class SimTuning:
    """Figures of the model that are easy to get wrong; kept in one place (and in the saved world)."""

    threshold_bytes: int = 32 * 1024 * 1024
    max_passes: int = 10
    resume_s: float = 0.2
    prepare_s: float = 0.0  # checks and planned-VM staging before the copy (Compare-VM, JobType 300-304)
    tcp_stream_gbps: float = 2.5  # one TCP stream used about a quarter of 10 GbE (hyperv.md section 8)
    compression_ratio: float = 0.5  # bytes on the wire per memory byte: compression "about halves" the time
    compression_stream_gbps: float = 5.0  # memory a stream compresses per second: CPU-bound. UNCONFIRMED.
    max_finished_kept: int = 500
    max_record_kept: int = 5000


def to_plain(obj: Any) -> dict[str, Any]:
    """A small dataclass (tuning, a migration) as a JSON-ready dict."""
    return dict(vars(obj))


def from_plain(cls: type, data: dict[str, Any]) -> Any:
    """Back from to_plain; fields the class no longer has are dropped, new ones take their defaults."""
    known = field_names(cls)
    return cls(**{k: v for k, v in data.items() if k in known})


def to_table(objects: Iterable[Any], cls: type) -> dict[str, Any]:
    """Many objects of one class as a header and rows of values.

    The 20,000-VM world is loaded and saved by every session: rows make its JSON about three
    times smaller and faster to parse than one dict per object.
    """
    names = field_names(cls)
    values = attrgetter(*names)
    rows = [list(values(obj)) for obj in objects]
    table: dict[str, Any] = {"fields": list(names), "rows": rows}
    if cls is SimVm:
        disk_names = field_names(SimDisk)
        disk_values = attrgetter(*disk_names)
        at = names.index("disks")
        for row in rows:
            row[at] = [list(disk_values(disk)) for disk in row[at]]
        table["disk_fields"] = list(disk_names)
    return table


def from_table(cls: type, table: dict[str, Any]) -> list[Any]:
    make = _maker(cls, table["fields"])
    objects = [make(row) for row in table["rows"]]
    if cls is SimVm:
        make_disk = _maker(SimDisk, table["disk_fields"])
        for vm in objects:
            vm.disks = [make_disk(row) for row in vm.disks]
    return objects


def _maker(cls: type, names: list[str]) -> Callable[[list[Any]], Any]:
    """A function building one object from a row saved with these field names."""
    if tuple(names) != field_names(cls):
        return lambda row: from_plain(cls, dict(zip(names, row, strict=False)))
    new = object.__new__

    def make(row: list[Any]) -> Any:
        # The saved layout is the current one: fill the instance directly, skipping __init__ (fast).
        obj = new(cls)
        obj.__dict__.update(zip(names, row, strict=True))
        return obj

    return make


_FIELDS: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    if cls not in _FIELDS:
        _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return _FIELDS[cls]


# --- Windows paths -----------------------------------------------------------------------------


def unc_parts(path: str) -> tuple[str, str] | None:
    """(server, share) of \\\\server\\share\\..., lower-cased; None for anything else."""
    if not path.startswith("\\\\"):
        return None
    parts = path[2:].split("\\")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return parts[0].lower(), parts[1].lower()


def is_csv_path(path: str) -> bool:
    """A Cluster Shared Volume path: the same on every node of its cluster."""
    return path.lower().startswith("c:\\clusterstorage\\")


def is_local_path(path: str) -> bool:
    return len(path) >= 3 and path[0].isalpha() and path[1:3] == ":\\"


def join_path(folder: str, name: str) -> str:
    return folder.rstrip("\\") + "\\" + name


def basename(path: str) -> str:
    return path.rstrip("\\").rsplit("\\", 1)[-1]
