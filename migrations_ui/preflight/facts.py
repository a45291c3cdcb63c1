"""Plain data the pre-flight rules and the planner work on (no ORM, no I/O).

migrations_ui.preflight.assess builds these from the inventory; tests build them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fabric.hyperv.host_values import processor_vendor


class Kind:
    """Transfer types, as VMM names them (architecture.md: preflight JSON)."""

    LIVE = "live"
    LIVE_VSM = "live_vsm"
    STORAGE = "storage"
    QUICK = "quick"
    NETWORK = "network"

    LIVE_KINDS = (LIVE, LIVE_VSM, QUICK)  # need the migration service between two hosts
    MOVES_FILES = (LIVE_VSM, STORAGE, NETWORK)
    LABELS = {
        LIVE: "Live",
        LIVE_VSM: "Live (VSM)",
        STORAGE: "Storage",
        QUICK: "Quick",
        NETWORK: "Network",
    }


class Delegation:
    """Kerberos constrained delegation of a host, as an administrator recorded it (fabric.models.Delegation):
    Active Directory holds it, the host cannot report it (hyperv.md section 9)."""

    UNKNOWN = "unknown"
    CONFIGURED = "configured"
    MISSING = "missing"


@dataclass(frozen=True)
class ShareFacts:
    unc_path: str
    file_server: str
    file_server_fqdn: str = ""


@dataclass(frozen=True)
class DiskFacts:
    path: str
    shared: bool = False
    size_bytes: int = 0


@dataclass(frozen=True)
class VmFacts:
    id: str
    name: str
    state: str
    memory_bytes: int
    config_version: str
    config_path: str
    clustered: bool = False
    compat_vector_stale: bool = False
    processor_compatibility: bool = False
    switch_names: tuple[str, ...] = ()
    disks: tuple[DiskFacts, ...] = ()
    moving: bool = False  # a migration job of this VM is queued or running
    # What real moves fail on (hyperv.md section 9); empty or 0 where the host reported none:
    dvd_isos: tuple[str, ...] = ()  # ISO files in its DVD drives
    checkpoints: int = 0
    snapshot_path: str = ""  # checkpoint file location
    smart_paging_path: str = ""
    passthrough_disks: tuple[int, ...] = ()  # disk numbers of physical disks
    fc_sans: tuple[str, ...] = ()  # virtual SAN of each virtual Fibre Channel adapter
    replication_mode: str = ""  # "" | "primary" | "replica" | "extended_replica"
    replication_primary: str = ""
    replication_replica: str = ""
    possible_owners: tuple[str, ...] = ()  # node names; () = not known
    # Taken down for an offline move and started again on its new host (the pre-maintenance report):
    # it needs its memory there as a running VM does.
    restarts: bool = False

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def needs_memory(self) -> bool:
        """Its memory counts where it lands: it runs, or it will be started there."""
        return self.running or self.restarts

    @property
    def file_paths(self) -> tuple[str, ...]:
        """The files a move that leaves storage in place needs the destination to reach: the
        configuration, the disks, and the checkpoints' files when there are checkpoints."""
        checkpoints = (self.snapshot_path,) if self.checkpoints and self.snapshot_path else ()
        return (self.config_path, *(d.path for d in self.disks), *checkpoints)


@dataclass(frozen=True)
class HostFacts:
    fqdn: str
    name: str
    cluster: str | None = None  # cluster FQDN
    cluster_name: str = ""
    cluster_max_parallel: int | None = None
    os_version: str = ""
    supported_config_versions: tuple[str, ...] = ()
    memory_total_bytes: int = 0
    memory_available_bytes: int = 0
    cpu_load_percent: int = 0
    processor_family: str = ""  # the CPU's name (Win32_Processor Name): its vendor decides what may move live
    reachable: bool = True
    last_error: str = ""
    migration_enabled: bool = True
    max_live: int = 2
    max_storage: int = 2
    live_in_use: int = 0
    storage_in_use: int = 0
    queued: int = 0  # jobs already waiting for this host
    performance_option: str = "compression"
    auth_type: str = "kerberos"
    delegation: str = Delegation.UNKNOWN
    use_any_network: bool = False
    migration_networks: tuple[str, ...] = ()
    virtual_switches: tuple[str, ...] = ()
    shares: tuple[str, ...] = ()  # UNC paths of the SMB shares it is known to use (by its paths, not its sessions)
    vm_path: str = ""

    @property
    def processor_vendor(self) -> str:
        """ "intel", "amd" or "" (unknown), from the processor's name."""
        return processor_vendor(self.processor_family)

    @property
    def live_limit(self) -> int:
        """On a cluster node the cluster's MaximumParallelMigrations wins (hyperv.md section 3)."""
        return self.cluster_max_parallel if self.cluster_max_parallel is not None else self.max_live


@dataclass(frozen=True)
class Proposal:
    """One proposed move: a VM, its source, a destination (the source for a storage move), where files go."""

    vm: VmFacts
    source: HostFacts
    destination: HostFacts
    kind: str | None
    storage_path: str = ""  # one destination for all files (Live VSM, whole-VM storage move)
    vhds: tuple[tuple[str, str], ...] = ()  # selected VHDs: (source path, destination path)
    shares: tuple[ShareFacts, ...] = ()  # every share the inventory knows (for the corrected FQDN)
    # (VM name, shared VHDX path) for each VM with a shared VHDX on the destination, or placed there by a
    # plan: where the other nodes of a guest cluster run (rules.guest_cluster_same_host).
    destination_shared: tuple[tuple[str, str], ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def cross_cluster(self) -> bool:
        return self.source.cluster != self.destination.cluster

    @property
    def cluster_move(self) -> bool:
        """A move the failover cluster makes (an HA VM between nodes of its own cluster): it uses the cluster's
        own account and networks, so neither constrained delegation nor the Hyper-V settings of the hosts
        (live migration enabled, migration networks) apply (hyperv.md section 9)."""
        return (
            self.vm.clustered
            and self.source.cluster is not None
            and not self.cross_cluster
            and self.source.fqdn != self.destination.fqdn
        )

    @property
    def moved_paths(self) -> tuple[str, ...]:
        """The destination paths the files will be written to."""
        return tuple(p for p in (self.storage_path, *(dst for _, dst in self.vhds)) if p)

    @property
    def moved_disks(self) -> tuple[DiskFacts, ...]:
        """The disks whose files this move copies."""
        if self.kind not in Kind.MOVES_FILES:
            return ()
        if self.vhds and not self.storage_path:
            selected = {src.lower() for src, _ in self.vhds}
            return tuple(d for d in self.vm.disks if d.path.lower() in selected)
        return self.vm.disks


# How a VM can be taken down before a maintenance moves it (issue 20's pre-maintenance choices).
SAVE, SHUT_DOWN = "save", "shut_down"


def powered_off(vm: VmFacts, power: str) -> VmFacts:
    """The VM as it will be once saved (Save-VM) or shut down (Stop-VM): an offline move's facts. A
    shut-down VM starts again with its new host's compatibility vector, so a stale one no longer
    holds; a saved one keeps its memory state, and with it the vector."""
    if power == SAVE:
        return replace(vm, state="saved", restarts=True)
    return replace(vm, state="off", compat_vector_stale=False, restarts=True)
