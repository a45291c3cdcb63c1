"""Pre-flight rules: what stands in the way of one proposed move, and what to do about it.

Pure functions over migrations_ui.facts (no ORM, no I/O). Each rule has a stable id
(architecture.md); never rename one, tests and scripts outside this repository use them.
Facts: hyperv.md sections 2, 3 and 7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from migrations_ui.facts import Kind, Proposal, ShareFacts
from migrations_ui.paths import parse_share_path

BLOCK, WARN, INFO = "block", "warn", "info"
SEVERITY_ORDER = {BLOCK: 0, WARN: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    message: str
    remedy: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


Rule = Callable[[Proposal], Iterator[Finding]]


def known_fqdn(server: str, shares: tuple[ShareFacts, ...]) -> str:
    """The FQDN the inventory knows for a server written by its short name (or by its FQDN)."""
    wanted = server.lower().rstrip(".")
    for share in shares:
        fqdn = share.file_server_fqdn.rstrip(".")
        if fqdn and wanted in (fqdn.lower(), fqdn.lower().split(".")[0]):
            return fqdn
    return ""


def share_path_finding(path: str, shares: tuple[ShareFacts, ...] = ()) -> Finding | None:
    """smb-path-not-fqdn for one path, or None when it is a good share path or not a share path at all."""
    parsed = parse_share_path(path)
    if parsed is None:
        return None
    fqdn = known_fqdn(parsed.host, shares)
    corrected = parsed.with_server(fqdn) if fqdn else ""
    kind = parsed.server_kind
    if kind == "fqdn" and not parsed.forward_slashes:
        return None
    if kind == "ip":
        problem = f"uses the IP address {parsed.host}"
    elif kind == "short":
        problem = f"uses the short name '{parsed.host}'"
    else:
        problem = "is written with forward slashes"
        corrected = parsed.with_server(parsed.host)
    fix = f" Use {corrected}." if corrected else " Write the file server's fully qualified domain name."
    return Finding(
        "smb-path-not-fqdn",
        BLOCK,
        f"The SMB path {path} {problem}; Hyper-V needs SMB 3.0 share paths with the file server's FQDN.{fix}",
        f"Write the path as {corrected}" if corrected else "Write the path as \\\\fileserver.domain.tld\\share\\...",
    )


def smb_path_not_fqdn(p: Proposal) -> Iterator[Finding]:
    # The typed targets always; the VM's current files too when they stay where they are.
    paths = list(p.moved_paths)
    if p.kind in (Kind.LIVE, Kind.QUICK):
        paths += p.vm.file_paths
    seen = set()
    for path in paths:
        finding = share_path_finding(path, p.shares)
        if finding and finding.message not in seen:
            seen.add(finding.message)
            yield finding


def shared_vhdx_not_movable(p: Proposal) -> Iterator[Finding]:
    for disk in p.moved_disks:
        if disk.shared:
            yield Finding(
                "shared-vhdx-not-movable",
                BLOCK,
                f"{disk.path} is a shared VHDX (attached to several VMs); it cannot be moved while they run.",
                "Shut down the VMs sharing the disk, move the file, then start them again; "
                "or leave the shared disk out of the move.",
            )


def compat_vector_restart_required(p: Proposal) -> Iterator[Finding]:
    if p.vm.compat_vector_stale and p.source.cluster and p.destination.cluster == p.source.cluster:
        yield Finding(
            "compat-vector-restart-required",
            BLOCK,
            f"{p.vm.name} came from an older cluster version and still carries its compatibility vector; "
            f"it cannot migrate within {p.source.cluster_name or p.source.cluster} until it restarts.",
            "Restart the VM (shut down and start), then migrate it.",
        )


def config_version_unsupported(p: Proposal) -> Iterator[Finding]:
    supported = p.destination.supported_config_versions
    if supported and p.vm.config_version not in supported:
        yield Finding(
            "config-version-unsupported",
            BLOCK,
            f"{p.destination.name} ({p.destination.os_version or 'its OS'}) does not run VM configuration version "
            f"{p.vm.config_version}; it supports {', '.join(supported)}.",
            "Choose a host that supports this version. Update-VMVersion only goes up, and needs the VM off.",
        )


def ha_lost_during_move(p: Proposal) -> Iterator[Finding]:
    if p.vm.clustered and p.cross_cluster and p.kind is not None:
        where = p.destination.cluster_name or p.destination.cluster
        after = f"it is added to {where} again after the move" if where else "the destination is not clustered"
        yield Finding(
            "ha-lost-during-move",
            WARN,
            f"High availability is lost during this move: {p.vm.name} leaves its cluster role, so a host failure "
            f"during the move leaves it unavailable; {after}.",
            "Move in a maintenance window, or choose a node of the same cluster.",
        )


def vm_not_running(p: Proposal) -> Iterator[Finding]:
    if p.vm.running:
        return
    if p.kind == Kind.NETWORK:
        yield Finding(
            "vm-not-running",
            INFO,
            f"{p.vm.name} is {p.vm.state}: its files are copied offline (Network), the slowest kind of move.",
            "Start the VM first to live-migrate it instead.",
        )
    elif p.kind in Kind.LIVE_KINDS:
        yield Finding(
            "vm-not-running",
            BLOCK,
            f"A live migration needs a running VM; {p.vm.name} is {p.vm.state}.",
            "Start the VM, or move it offline.",
        )


def _hosts_of(p: Proposal):
    return (p.source,) if p.source.fqdn == p.destination.fqdn else (p.source, p.destination)


def migration_disabled(p: Proposal) -> Iterator[Finding]:
    if p.kind not in Kind.LIVE_KINDS:
        return
    for host in _hosts_of(p):
        if not host.migration_enabled:
            yield Finding(
                "migration-disabled",
                BLOCK,
                f"Live migration is disabled on {host.name}.",
                f"Enable incoming and outgoing live migrations on {host.name} (Enable-VMMigration).",
            )


def no_migration_network(p: Proposal) -> Iterator[Finding]:
    if p.kind not in Kind.LIVE_KINDS:
        return
    for host in _hosts_of(p):
        if not host.use_any_network and not host.migration_networks:
            yield Finding(
                "no-migration-network",
                BLOCK,
                f"{host.name} has no live-migration network and does not allow any network.",
                f"Add a migration network on {host.name} (Add-VMMigrationNetwork) or allow any available network.",
            )


def insufficient_memory(p: Proposal) -> Iterator[Finding]:
    if p.source.fqdn == p.destination.fqdn or not p.vm.running or p.kind is None:
        return
    need, free = p.vm.memory_bytes, p.destination.memory_available_bytes
    if need > free:
        yield Finding(
            "insufficient-memory",
            BLOCK,
            f"{p.destination.name} has {_gib(free)} free; {p.vm.name} needs {_gib(need)} "
            "(Hyper-V would fail with 0x800705AA before 10%).",
            "Choose another host or free memory on this one.",
        )


def vswitch_missing(p: Proposal) -> Iterator[Finding]:
    if p.source.fqdn == p.destination.fqdn or p.kind is None:
        return
    present = {s.lower() for s in p.destination.virtual_switches}
    for switch in dict.fromkeys(p.vm.switch_names):
        if switch and switch.lower() not in present:
            yield Finding(
                "vswitch-missing",
                BLOCK,
                f"{p.destination.name} has no virtual switch named '{switch}' (Compare-VM 33012).",
                f"Create the switch '{switch}' on {p.destination.name}, or reconnect the VM's adapter.",
            )


def processor_incompatible(p: Proposal) -> Iterator[Finding]:
    if p.kind not in (Kind.LIVE, Kind.LIVE_VSM) or p.vm.processor_compatibility:
        return
    src, dst = p.source.processor_family, p.destination.processor_family
    if src and dst and src != dst:
        yield Finding(
            "processor-incompatible",
            BLOCK,
            f"{p.source.name} ({src}) and {p.destination.name} ({dst}) have different processor generations.",
            "Shut the VM down and enable processor compatibility (Set-VMProcessor -CompatibilityForMigrationEnabled).",
        )


def kerberos_delegation_missing(p: Proposal) -> Iterator[Finding]:
    if p.kind not in Kind.LIVE_KINDS:
        return
    for host in _hosts_of(p):
        if host.auth_type == "credssp":
            yield Finding(
                "kerberos-delegation-missing",
                BLOCK,
                f"{host.name} authenticates live migrations with CredSSP, which needs the operator signed in on "
                "the source host; from this console the move would fail with 0x8009030D.",
                f"Switch {host.name} to Kerberos and configure constrained delegation "
                "(cifs and Microsoft Virtual System Migration Service).",
            )
        elif not host.delegation_configured:
            yield Finding(
                "kerberos-delegation-missing",
                BLOCK,
                f"{host.name} has no Kerberos constrained delegation to the other host; "
                "the move would fail with 0x8009030E.",
                "Configure constrained delegation for cifs and Microsoft Virtual System Migration Service.",
            )


def clustered_vm_storage_move(p: Proposal) -> Iterator[Finding]:
    if not p.vm.clustered or p.kind not in (Kind.LIVE_VSM, Kind.STORAGE, Kind.NETWORK):
        return
    if p.cross_cluster:
        yield Finding(
            "clustered-vm-storage-move",
            INFO,
            f"{p.vm.name} is removed from its cluster role before the move and made highly available again after.",
        )
    else:
        what = "an offline copy" if p.kind == Kind.NETWORK else "storage options of a move"
        yield Finding(
            "clustered-vm-storage-move",
            BLOCK,
            f"Hyper-V refuses {what} of the clustered VM {p.vm.name}.",
            "Move it with its cluster (storage stays on the cluster's shared volume), or remove it from the "
            "cluster first and try again.",
        )


def host_migration_limit(p: Proposal) -> Iterator[Finding]:
    if p.kind is None:
        return
    for host in _hosts_of(p):
        for label, used, limit in _slots_needed(p, host):
            if used >= limit:
                ahead = host.queued
                yield Finding(
                    "host-migration-limit",
                    INFO,
                    f"{host.name} runs {used} of {limit} {label} migrations; this move will wait for a free slot "
                    f"on {host.name}" + (f" behind {ahead} other queued move(s)." if ahead else "."),
                )


def _slots_needed(p: Proposal, host) -> list[tuple[str, int, int]]:
    needs = []
    if p.kind in Kind.LIVE_KINDS or p.kind == Kind.NETWORK:
        needs.append(("live", host.live_in_use, host.live_limit))
    if p.kind in (Kind.LIVE_VSM, Kind.STORAGE):
        needs.append(("storage", host.storage_in_use, host.max_storage))
    return needs


def cluster_parallel_limit(p: Proposal) -> Iterator[Finding]:
    if p.kind not in Kind.LIVE_KINDS:
        return
    for host in _hosts_of(p):
        if host.cluster_max_parallel is not None and host.cluster_max_parallel < host.max_live:
            yield Finding(
                "cluster-parallel-limit",
                INFO,
                f"Cluster {host.cluster_name or host.cluster} allows {host.cluster_max_parallel} parallel live "
                f"migration(s) (MaximumParallelMigrations); that wins over {host.name}'s own limit of "
                f"{host.max_live}.",
                "Raise the cluster property MaximumParallelMigrations to allow more at once.",
            )


def vm_already_moving(p: Proposal) -> Iterator[Finding]:
    if p.vm.moving:
        yield Finding(
            "vm-already-moving",
            BLOCK,
            f"{p.vm.name} already has a migration queued or running.",
            "Wait for it to finish, or cancel it on the Jobs page.",
        )


def host_unreachable(p: Proposal) -> Iterator[Finding]:
    for host in _hosts_of(p):
        if not host.reachable:
            yield Finding(
                "host-unreachable",
                BLOCK,
                f"{host.name} did not answer at the last inventory sync"
                + (f": {host.last_error}" if host.last_error else "."),
                f"Check that {host.name} is up and WinRM answers, then refresh the inventory.",
            )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


RULES: tuple[Rule, ...] = (
    smb_path_not_fqdn,
    shared_vhdx_not_movable,
    compat_vector_restart_required,
    config_version_unsupported,
    ha_lost_during_move,
    vm_not_running,
    migration_disabled,
    no_migration_network,
    insufficient_memory,
    vswitch_missing,
    processor_incompatible,
    kerberos_delegation_missing,
    clustered_vm_storage_move,
    host_migration_limit,
    cluster_parallel_limit,
    vm_already_moving,
    host_unreachable,
)


def evaluate(p: Proposal) -> list[Finding]:
    """Every finding for the proposal, blocking ones first."""
    findings = [f for rule in RULES for f in rule(p)]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


def blocked(findings: list[Finding]) -> bool:
    return any(f.severity == BLOCK for f in findings)
