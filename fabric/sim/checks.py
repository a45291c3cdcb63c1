"""What the simulated Hyper-V checks before it accepts a move, and the errors it answers with.

Codes follow hyperv.md section 7 where Hyper-V has one (21501, 0x800705AA, 33012, 0x8009030E,
0x8007274C, 10698, 21502); refusals without a documented code use the error-record ids the Hyper-V
cmdlets write (InvalidParameter, InvalidState, OperationFailed, NotFound).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fabric.hyperv.api import HostUnreachable, HyperVError, MoveRequest
from fabric.hyperv.host_values import processor_vendor, renamed_vhd
from fabric.hyperv.remedies import (
    REMEDY_DELEGATION,
    REMEDY_DRIVE_LETTERS,
    REMEDY_LIMIT,
    REMEDY_MEMORY,
    REMEDY_NETWORK,
    REMEDY_POSSIBLE_OWNER,
    REMEDY_SWITCH,
)
from fabric.sim.world import (
    LIVE_KINDS,
    MEMORY_STATES,
    MOVE_KINDS,
    STORAGE_KINDS,
    SimHost,
    SimVm,
    basename,
    is_csv_path,
    is_local_path,
    join_path,
    unc_parts,
)

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric

PERFORMANCE_OPTIONS = ("tcpip", "compression", "smb")

# Injectable failures: the code Hyper-V reports, its message, remedy and the default percent it fails at.
FAILURES: dict[str, tuple[str, str, str, int]] = {
    "memory": ("0x800705AA", "Insufficient system resources exist to complete the requested service", REMEDY_MEMORY, 5),
    "network": (
        "0x8007274C",
        "A connection attempt failed because the connected party did not properly respond after a period of time",
        REMEDY_NETWORK,
        50,
    ),
    "switch": ("33012", "Could not find Ethernet switch on the destination", REMEDY_SWITCH, 0),
    "delegation": ("0x8009030E", "No credentials are available in the security package", REMEDY_DELEGATION, 0),
    "drive_letters": ("20413", "The system drive letters of the nodes differ", REMEDY_DRIVE_LETTERS, 95),
}


def limit_error(vm_name: str, host: SimHost, limit: int, what: str = "virtual machine migration") -> HyperVError:
    return HyperVError(
        "21501",
        f"Virtual machine migration operation for '{vm_name}' failed: the {what} limit '{limit}' "
        f"was reached on '{host.name}', please wait for completion of an ongoing migration operation.",
        REMEDY_LIMIT,
    )


@dataclass
class MoveDecision:
    """A validated request, resolved into what the simulation needs."""

    request: MoveRequest
    vm: SimVm
    source: SimHost
    destination: SimHost
    performance: str
    storage_path: str = ""
    config_path: str | None = None  # new configuration folder, None when it stays
    disk_moves: dict[str, str] = field(default_factory=dict)  # old path -> new path
    storage_bytes: int = 0
    memory_bytes: int = 0  # memory copied (live kinds of a running VM)
    reserve_bytes: int = 0  # memory to hold on the destination
    ha_removed: bool = False
    cmdlet: str = ""
    params: dict = field(default_factory=dict)


def migration_counts(fabric: Fabric, fqdn: str) -> tuple[int, int]:
    """(live, storage) migrations the host takes part in, in or out (hyperv.md section 3)."""
    live = storage = 0
    for m in fabric.running_migrations():
        if fqdn not in (m.source, m.destination):
            continue
        live += m.kind in LIVE_KINDS
        storage += m.kind in STORAGE_KINDS
    return live, storage


def live_limit(fabric: Fabric, host: SimHost) -> int:
    """A cluster node obeys the cluster's MaximumParallelMigrations, not its own setting."""
    cap = fabric.clusters[host.cluster].max_parallel_migrations if host.cluster in fabric.clusters else None
    return host.max_live_migrations if cap is None else cap


def path_reachable(fabric: Fabric, path: str, host: SimHost, vm_host: SimHost) -> bool:
    """Can `host` open this file of a VM that now runs on `vm_host`?"""
    if unc_parts(path):
        share = fabric.share_for_path(path)
        return share is not None and share.unc_path in host.shares
    if is_csv_path(path):
        return bool(host.cluster) and host.cluster == vm_host.cluster
    return host.fqdn == vm_host.fqdn


def target_path_ok(fabric: Fabric, path: str, host: SimHost) -> bool:
    """Can files be put at `path` for a VM on `host`?"""
    if unc_parts(path):
        share = fabric.share_for_path(path)
        return share is not None and share.unc_path in host.shares
    if is_csv_path(path):
        return bool(host.cluster)
    return is_local_path(path)


# A refused check: raise it (a move) or collect it with the object it concerns (Compare-VM).
Fail = Callable[[HyperVError, str], None]


def _raise(exc: HyperVError, source: str) -> None:
    raise exc


def validate(fabric: Fabric, request: MoveRequest, fail: Fail = _raise, runtime: bool = True) -> MoveDecision:
    """Every check Hyper-V makes before a move starts.

    By default the first refusal raises its HyperVError. With another `fail` (Compare-VM), refusals
    of the move's compatibility are handed to it with the object they concern and the checks go on;
    errors in addressing the move (unknown VM or host, a parameter that makes no sense) always raise.
    runtime=False (Compare-VM): only the configuration is compared; what the move itself meets (the
    hosts' limits 21501, memory 0x800705AA, credentials 0x8009030E, migration settings and networks) is
    not checked (hyperv.md section 9: Compare-VM reports configuration incompatibilities only).
    """
    vm = fabric.vms.get(request.vm_id)
    source = fabric.hosts.get(request.source)
    if source is None or not source.reachable:
        raise HostUnreachable(request.source, "no such host" if source is None else "connection refused")
    if vm is None or vm.host != source.fqdn:
        raise HyperVError(
            "NotFound", f"Hyper-V was unable to find a virtual machine with id '{request.vm_id}' on '{source.name}'"
        )
    if request.kind not in MOVE_KINDS:
        raise HyperVError("InvalidParameter", f"Unknown move kind '{request.kind}'")
    destination = fabric.hosts.get(request.destination)
    if destination is None or not destination.reachable:
        raise HyperVError(
            "0x8007274C",
            f"Migration of '{vm.name}' failed: the destination host '{request.destination}' did not respond",
            REMEDY_NETWORK,
        )
    if fabric.migration_of_vm(vm.id) is not None:
        raise HyperVError("InvalidState", f"A migration of '{vm.name}' is already in progress", "Wait for it to end")
    performance = request.performance_option or source.performance_option
    if performance not in PERFORMANCE_OPTIONS:
        raise HyperVError("InvalidParameter", f"Unknown performance option '{performance}'")

    decision = MoveDecision(request, vm, source, destination, performance)
    _check_direction(decision)
    _check_kind(fabric, decision, fail)
    _check_processor(decision, fail)
    _check_move_blockers(fabric, decision, fail)
    if request.kind in STORAGE_KINDS:
        _resolve_storage(fabric, decision, fail)
    if request.kind in LIVE_KINDS:
        _check_live(fabric, decision, fail)
        if runtime:
            _check_hosts(decision)
    if runtime:
        _check_runtime(fabric, decision)
    _describe_command(decision)
    return decision


def _check_runtime(fabric: Fabric, decision: MoveDecision) -> None:
    """What the move meets when it runs: the hosts' migration limits and the destination's memory."""
    _check_limits(fabric, decision, _raise)
    vm, destination = decision.vm, decision.destination
    if decision.reserve_bytes > destination.memory_available_bytes:
        _raise(
            HyperVError(
                "0x800705AA",
                f"'{destination.name}' could not initialize memory for '{vm.name}': Insufficient system resources "
                f"exist to complete the requested service (needs {vm.memory_bytes // 2**20} MB, "
                f"{destination.memory_available_bytes // 2**20} MB available)",
                REMEDY_MEMORY,
            ),
            "Memory",
        )


def _check_direction(d: MoveDecision) -> None:
    """Parameters that contradict the kind of move: always an error, never an incompatibility."""
    vm, kind, same_host = d.vm, d.request.kind, d.source.fqdn == d.destination.fqdn
    if kind == "storage" and not same_host:
        raise HyperVError("InvalidParameter", "A storage move keeps the VM on its host: destination must be the source")
    if kind != "storage" and same_host:
        raise HyperVError("InvalidParameter", f"'{vm.name}' already runs on '{d.destination.name}'")
    if kind == "live" and (d.request.storage_path or d.request.vhds):
        raise HyperVError("InvalidParameter", "A live move keeps the files in place: use live_vsm to move storage")


def _check_kind(fabric: Fabric, d: MoveDecision, fail: Fail) -> None:
    vm, src, dst, kind = d.vm, d.source, d.destination, d.request.kind
    if vm.is_clustered and kind in STORAGE_KINDS:
        fail(
            HyperVError(
                "InvalidParameter",
                f"Storage options cannot be used for '{vm.name}': it is a clustered virtual machine",
                "Remove the virtual machine from the cluster and then try again",
            ),
            "Cluster role",
        )
    if kind in ("live", "live_vsm") and vm.state != "running":
        fail(
            HyperVError(
                "InvalidState",
                f"'{vm.name}' is {vm.state}: a live migration needs a running virtual machine",
                "Start it, or use a quick or network (offline) move",
            ),
            "Virtual machine state",
        )
    if kind == "network" and vm.state not in ("off", "saved"):
        fail(
            HyperVError("InvalidState", f"'{vm.name}' is {vm.state}: an offline copy needs it off or saved"),
            "Virtual machine state",
        )
    if kind == "quick" and not (vm.is_clustered and src.cluster and src.cluster == dst.cluster):
        fail(
            HyperVError("InvalidParameter", f"A quick migration moves a clustered VM within its cluster: '{vm.name}'"),
            "Cluster role",
        )
    if kind in ("live", "quick"):
        files = [vm.config_path, *(disk.path for disk in vm.disks)]
        unreachable = [p for p in files if not path_reachable(fabric, p, dst, src)]
        if unreachable:
            fail(
                HyperVError(
                    "OperationFailed",
                    f"'{dst.name}' cannot reach the files of '{vm.name}' ({unreachable[0]})",
                    "Connect the destination to the share, or move the storage too (live_vsm)",
                ),
                "Storage",
            )
    if kind != "storage" and vm.config_version not in dst.supported_config_versions:
        fail(
            HyperVError(
                "10698",
                f"'{vm.name}' has configuration version {vm.config_version}, which '{dst.name}' does not support",
                "Upgrade the destination host, or pick a host that supports this version",
            ),
            "Configuration version",
        )


def _check_move_blockers(fabric: Fabric, d: MoveDecision, fail: Fail) -> None:
    """What a real host refuses because of the VM's devices and other files (hyperv.md section 9;
    migrations_ui.preflight.rules names the sources): an ISO the destination cannot open, checkpoints left
    where it cannot reach them, pass-through disks outside a cluster, a virtual SAN it lacks, a
    node that is not a possible owner. Smart paging and Replica only warn (a host does not refuse)."""
    vm, src, dst, kind = d.vm, d.source, d.destination, d.request.kind
    if kind == "storage":
        return
    same_cluster = bool(src.cluster) and src.cluster == dst.cluster
    for iso in vm.dvd_isos:
        if not path_reachable(fabric, iso, dst, src):
            fail(
                HyperVError(
                    "OperationFailed",
                    f"'{dst.name}' cannot open '{iso}' in a DVD drive of '{vm.name}'",
                    "Eject the ISO, or insert it from an SMB share both hosts reach",
                ),
                "DVD Drive",
            )
    # Checkpoints stay where they are in a Live or Quick move, in a per-disk move (no -SnapshotFilePath),
    # and for a clustered VM inside its cluster (whose storage options are refused).
    files_stay = kind in ("live", "quick") or bool(d.request.vhds) or (vm.is_clustered and same_cluster)
    if vm.checkpoints and files_stay and not path_reachable(fabric, vm.checkpoint_folder, dst, src):
        fail(
            HyperVError(
                "OperationFailed",
                f"'{dst.name}' cannot reach the checkpoints of '{vm.name}' in '{vm.checkpoint_folder}'",
                "Move the virtual machine with all its storage, or delete the checkpoints",
            ),
            "Checkpoints",
        )
    if vm.passthrough_disks and not (vm.is_clustered and same_cluster):
        fail(
            HyperVError(
                "OperationFailed",
                f"'{vm.name}' uses a pass-through disk of '{src.name}', which '{dst.name}' cannot attach",
                "Convert the pass-through disk to a virtual hard disk, or move the VM inside its cluster",
            ),
            "Hard Drive",
        )
    for san in [s for s in vm.fc_sans if s not in dst.virtual_sans]:
        fail(
            HyperVError(
                "OperationFailed",
                f"'{dst.name}' has no virtual SAN named '{san}' for a Fibre Channel adapter of '{vm.name}'",
                "Create the virtual SAN on the destination, connected to the same fabric",
            ),
            "Fibre Channel Adapter",
        )
    owners = [o.lower() for o in vm.possible_owners]
    if kind in ("live", "quick") and vm.is_clustered and same_cluster and owners and dst.name.lower() not in owners:
        fail(
            HyperVError(
                "0x80071398",
                f"The cluster node '{dst.name}' is not a possible owner of the cluster role of '{vm.name}'",
                REMEDY_POSSIBLE_OWNER,
            ),
            "Cluster role",
        )


def _resolve_storage(fabric: Fabric, d: MoveDecision, fail: Fail) -> None:
    """Which files move where, and whether Hyper-V would let them."""
    vm, dst, request = d.vm, d.destination, d.request
    path = request.storage_path
    if not path and request.kind in ("live_vsm", "network") and not request.vhds:
        path = join_path(dst.vm_path, vm.name)
    if not path and not request.vhds:
        raise HyperVError("InvalidParameter", "Give -DestinationStoragePath or -Vhds for a storage move")
    by_path = {disk.path.lower(): disk for disk in vm.disks}
    moves: dict[str, str] = {}
    for old, new in request.vhds:
        disk = by_path.get(old.lower())
        if disk is None:
            raise HyperVError("InvalidParameter", f"'{old}' is not a virtual hard disk of '{vm.name}'")
        if problem := renamed_vhd(old, new):
            raise HyperVError("InvalidParameter", problem, "Keep the disk's file name; change only its folder")
        moves[disk.path] = new
    if path and not request.vhds:
        moves = {disk.path: join_path(path, basename(disk.path)) for disk in vm.disks}
    sizes = {disk.path: disk.size_bytes for disk in vm.disks}
    d.storage_path = path
    d.config_path = path or None
    d.disk_moves = moves
    d.storage_bytes = sum(sizes[old] for old in moves)
    if vm.state == "saved" and request.kind == "network":
        d.storage_bytes += vm.memory_bytes  # the saved memory file travels too
    for disk in vm.disks:
        if disk.path in moves and disk.shared:
            fail(
                HyperVError(
                    "OperationFailed",
                    f"Cannot move '{disk.path}' of '{vm.name}': it is a shared virtual hard disk "
                    "(SupportPersistentReservations)",
                    "Shut down the VMs that share the disk, move the file, then start them again",
                ),
                "Virtual hard disk",
            )
    for target in [path, *moves.values()]:
        if target and not target_path_ok(fabric, target, dst):
            fail(
                HyperVError(
                    "0x80070035",
                    f"'{dst.name}' cannot use the path '{target}' (the network path was not found or is not a share "
                    "it is connected to)",
                    "Pick a local path, a CSV of the destination's cluster, or an SMB share the destination reaches "
                    "by its FQDN",
                ),
                "Storage",
            )
            break
    if dst is not d.source:
        # What does not move must still be reachable from the host the VM lands on.
        staying = [] if path else [vm.config_path]
        staying += [disk.path for disk in vm.disks if disk.path not in moves]
        for left in staying:
            if not path_reachable(fabric, left, dst, d.source):
                fail(
                    HyperVError(
                        "InvalidParameter",
                        f"'{dst.name}' cannot reach '{left}', which this move leaves in place",
                        "Move it too (-DestinationStoragePath, or a -Vhds entry for it)",
                    ),
                    "Storage",
                )
                break


def _check_live(fabric: Fabric, d: MoveDecision, fail: Fail) -> None:
    vm, src, dst, kind = d.vm, d.source, d.destination, d.request.kind
    same_cluster = bool(src.cluster) and src.cluster == dst.cluster
    if vm.compat_vector_stale and same_cluster:
        fail(
            HyperVError(
                "21502",
                f"'{vm.name}' still carries the compatibility vector of its older cluster: the hardware on "
                f"'{dst.name}' is not compatible with the hardware requirements of this virtual machine",
                "Restart the virtual machine once, then move it",
            ),
            "Processor",
        )
    # Compare-VM reports each adapter whose switch is missing.
    for name in [name for name in vm.switch_names if name not in dst.virtual_switches]:
        fail(
            HyperVError("33012", f"Could not find Ethernet switch '{name}' on '{dst.name}'", REMEDY_SWITCH),
            "Network Adapter",
        )
    if vm.state in MEMORY_STATES:
        d.memory_bytes = vm.memory_bytes if kind != "quick" or vm.state == "running" else 0
        d.reserve_bytes = vm.memory_bytes
    # A VM leaving its cluster is removed from it first, and re-added where it lands (hyperv.md section 1).
    d.ha_removed = vm.is_clustered and not same_cluster


def _check_processor(d: MoveDecision, fail: Fail) -> None:
    """A running or saved VM restores its processor state on the destination: different features need
    processor compatibility, and a different vendor cannot be bridged at all (hyperv.md section 9)."""
    vm, src, dst, kind = d.vm, d.source, d.destination, d.request.kind
    if kind == "storage" or (kind == "network" and vm.state != "saved"):
        return
    vendors = processor_vendor(src.processor_family), processor_vendor(dst.processor_family)
    if all(vendors) and vendors[0] != vendors[1]:
        fail(
            HyperVError(
                "21502",
                f"The processor of '{dst.name}' is not compatible with the hardware of '{vm.name}': processor "
                "compatibility does not bridge processors of different vendors",
                "Shut the VM down and move it offline",
            ),
            "Processor",
        )
    elif src.processor_family != dst.processor_family and not vm.processor_compat:
        fail(
            HyperVError(
                "21502",
                f"The processor of '{dst.name}' is not compatible with the hardware of '{vm.name}'",
                "Turn the VM off and enable processor compatibility (Set-VMProcessor "
                "-CompatibilityForMigrationEnabled)",
            ),
            "Processor",
        )


def _check_hosts(d: MoveDecision) -> None:
    """The hosts' own migration settings and credentials, met when the move connects: a move the failover
    cluster makes inside itself uses the cluster's account and networks and needs neither (hyperv.md
    section 9). Delegation is Active Directory's: the world knows it, no host reports it."""
    vm, src, dst = d.vm, d.source, d.destination
    if vm.is_clustered and src.cluster and src.cluster == dst.cluster:
        if dst.node_state == "paused":
            # A paused node takes no cluster roles (Suspend-ClusterNode.md: it pauses activity on the
            # node). ERROR_CLUSTER_NODE_PAUSED is Win32 error 5070; the cmdlet's wording is UNCONFIRMED.
            raise HyperVError(
                "0x800713CE",
                f"The cluster node '{dst.name}' is paused: it cannot take the role of '{vm.name}'",
                "Resume the node (Resume-ClusterNode), or move the role to another node",
            )
        return
    for host in (src, dst):
        if not host.migration_enabled:
            raise HyperVError(
                "OperationFailed",
                f"Live migration is not enabled on '{host.name}'",
                "Enable incoming and outgoing live migrations on the host (Enable-VMMigration)",
            )
    if not (dst.use_any_network or dst.migration_networks):
        raise HyperVError("0x8007274C", f"'{dst.name}' has no network for incoming live migrations", REMEDY_NETWORK)
    if src.auth_type == "kerberos" and not (src.delegation_configured and dst.delegation_configured):
        # The words and code of a real Move-VM refusal (hyperv.md section 9): the code mid-text.
        raise HyperVError(
            "0x8009030E",
            f"Virtual machine migration operation for '{vm.name}' failed at migration source '{src.name}'. "
            f"Failed to establish a connection with host '{dst.name}': No credentials are available in the "
            "security package (0x8009030E). Failed to authenticate the connection at the source host: no "
            "suitable credentials available.",
            REMEDY_DELEGATION,
        )


def _check_limits(fabric: Fabric, d: MoveDecision, fail: Fail) -> None:
    kind = d.request.kind
    for host in {d.source.fqdn: d.source, d.destination.fqdn: d.destination}.values():
        live, storage = migration_counts(fabric, host.fqdn)
        if kind in LIVE_KINDS and live + 1 > live_limit(fabric, host):
            fail(limit_error(d.vm.name, host, live_limit(fabric, host)), "Migration limit")
        if kind in STORAGE_KINDS and storage + 1 > host.max_storage_migrations:
            fail(limit_error(d.vm.name, host, host.max_storage_migrations, "storage migration"), "Migration limit")


def _describe_command(d: MoveDecision) -> None:
    """The cmdlet and parameters a host would have received for this move (for the record)."""
    vm, dst, kind = d.vm, d.destination, d.request.kind
    if kind in ("live", "quick") and vm.is_clustered and not d.ha_removed:
        d.cmdlet = "Move-ClusterVirtualMachineRole"
        d.params = {"Name": vm.name, "Node": dst.name, "MigrationType": kind.capitalize(), "Wait": 0}
        return
    if kind == "storage":
        d.cmdlet = "Move-VMStorage"
        d.params = {"VMName": vm.name, "AsJob": True}
    else:
        d.cmdlet = "Move-VM"
        d.params = {"Name": vm.name, "DestinationHost": dst.fqdn, "AsJob": True}
        if kind in ("live_vsm", "network"):
            d.params["IncludeStorage"] = True
    if kind in STORAGE_KINDS:
        if d.request.vhds:
            d.params["Vhds"] = [{"SourceFilePath": o, "DestinationFilePath": n} for o, n in d.request.vhds]
            if d.storage_path:
                d.params["VirtualMachinePath"] = d.storage_path
        else:
            d.params["DestinationStoragePath"] = d.storage_path
