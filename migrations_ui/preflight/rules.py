"""Pre-flight rules: what stands in the way of one proposed move, and what to do about it.

Pure functions over migrations_ui.preflight.facts (no ORM, no I/O). Each rule has a stable id
(architecture.md); never rename one, tests and scripts outside this repository use them.
Facts: hyperv.md sections 2, 3 and 7.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

from fabric.hyperv.host_values import share_roots
from migrations_ui.preflight.facts import Delegation, Kind, Proposal, ShareFacts
from migrations_ui.preflight.paths import disallowed_path, parse_share_path
from utilities.texts import Msg

BLOCK, WARN, INFO = "block", "warn", "info"
SEVERITY_ORDER = {BLOCK: 0, WARN: 1, INFO: 2}


@dataclass(frozen=True)
class Finding:
    """message and remedy are English (JSON, CLI, audit); as Msg texts pages show them translated."""

    rule: str
    severity: str
    message: str
    remedy: str = ""

    def as_dict(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items()}

    def as_stored(self) -> dict:
        """as_dict, and the texts' templates and values so a page can translate them later (job.findings)."""
        stored = self.as_dict()
        i18n = {
            part: text.as_stored() for part in ("message", "remedy") if isinstance(text := getattr(self, part), Msg)
        }
        if i18n:
            stored["i18n"] = i18n
        return stored


# How findings name a VM's state (VirtualMachine.state values).
VM_STATES = {
    "running": Msg("running"),
    "off": Msg("off"),
    "saved": Msg("saved"),
    "paused": Msg("paused"),
    "starting": Msg("starting"),
    "stopping": Msg("stopping"),
}


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
        problem = Msg("uses the IP address %(server)s", server=parsed.host)
    elif kind == "short":
        problem = Msg("uses the short name '%(server)s'", server=parsed.host)
    else:
        problem = Msg("is written with forward slashes")
        corrected = parsed.with_server(parsed.host)
    fix = (
        Msg(" Use %(path)s.", path=corrected)
        if corrected
        else Msg(" Write the file server's fully qualified domain name.")
    )
    return Finding(
        "smb-path-not-fqdn",
        BLOCK,
        Msg(
            "The SMB path %(path)s %(problem)s; Hyper-V needs SMB 3.0 share paths with the file server's FQDN.%(fix)s",
            path=path,
            problem=problem,
            fix=fix,
        ),
        Msg("Write the path as %(path)s", path=corrected)
        if corrected
        else Msg("Write the path as \\\\fileserver.domain.tld\\share\\..."),
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


def path_not_allowed(p: Proposal) -> Iterator[Finding]:
    """A destination (storage path or -Vhds target) with . or .. segments or in a Windows system folder:
    D:\\VMs\\..\\..\\Windows\\System32 is C:\\Windows\\System32 to the host, whatever the form showed."""
    for path in dict.fromkeys(p.moved_paths):
        reason = disallowed_path(path)
        if reason is not None:
            yield Finding(
                "path-not-allowed",
                BLOCK,
                Msg("The destination %(path)s %(reason)s.", path=path, reason=reason),
                Msg(
                    "Choose a folder for VM files outside the Windows system folders, such as D:\\Hyper-V\\%(vm)s, "
                    "and write it in full, without . or .. segments.",
                    vm=p.vm.name,
                ),
            )


def share_reachability_unknown(p: Proposal) -> Iterator[Finding]:
    """Live (VSM) for a VM whose files all lie on shared storage, because the console has not seen the
    destination use one of those shares: it may reach it (an idle host has no SMB session to show), and
    then a Live move would keep the files in place. Say so rather than copy the disks silently."""
    if p.kind != Kind.LIVE_VSM:
        return
    same_cluster = p.source.cluster is not None and not p.cross_cluster
    known = [s.lower().rstrip("\\") + "\\" for s in p.destination.shares]
    unknown: list[str] = []
    for path in p.vm.file_paths:
        lowered = path.lower()
        if same_cluster and lowered.startswith("c:\\clusterstorage\\"):
            continue
        roots = share_roots([path])
        if not roots:
            return  # a file on the source's own disks: it has to be copied anyway
        if not any(lowered.startswith(k) for k in known) and roots[0][0] not in unknown:
            unknown.append(roots[0][0])
    if unknown:
        yield Finding(
            "share-reachability-unknown",
            WARN,
            Msg(
                "%(vm)s's files lie on %(shares)s, which the console has not seen %(host)s use; this move copies "
                "them (Live (VSM)). If %(host)s reaches the share, a Live move would leave them in place.",
                vm=p.vm.name,
                shares=", ".join(unknown),
                host=p.destination.name,
            ),
            Msg(
                "If %(host)s reaches %(shares)s, add it as a storage location of %(host)s (its settings page), "
                "then assess the move again.",
                host=p.destination.name,
                shares=", ".join(unknown),
            ),
        )


def shared_vhdx_not_movable(p: Proposal) -> Iterator[Finding]:
    for disk in p.moved_disks:
        if disk.shared:
            yield Finding(
                "shared-vhdx-not-movable",
                BLOCK,
                Msg(
                    "%(path)s is a shared VHDX (attached to several VMs); it cannot be moved while they run.",
                    path=disk.path,
                ),
                Msg(
                    "Shut down the VMs sharing the disk, move the file, then start them again; "
                    "or leave the shared disk out of the move."
                ),
            )


def compat_vector_restart_required(p: Proposal) -> Iterator[Finding]:
    if p.vm.compat_vector_stale and p.source.cluster and p.destination.cluster == p.source.cluster:
        yield Finding(
            "compat-vector-restart-required",
            BLOCK,
            Msg(
                "%(vm)s came from an older cluster version and still carries its compatibility vector; "
                "it cannot migrate within %(cluster)s until it restarts.",
                vm=p.vm.name,
                cluster=p.source.cluster_name or p.source.cluster,
            ),
            Msg("Restart the VM (shut down and start), then migrate it."),
        )


def config_version_unsupported(p: Proposal) -> Iterator[Finding]:
    supported = p.destination.supported_config_versions
    if supported and p.vm.config_version not in supported:
        yield Finding(
            "config-version-unsupported",
            BLOCK,
            Msg(
                "%(host)s (%(os)s) does not run VM configuration version %(version)s; it supports %(supported)s.",
                host=p.destination.name,
                os=p.destination.os_version or Msg("its OS"),
                version=p.vm.config_version,
                supported=", ".join(supported),
            ),
            Msg("Choose a host that supports this version. Update-VMVersion only goes up, and needs the VM off."),
        )


def ha_lost_during_move(p: Proposal) -> Iterator[Finding]:
    if p.vm.clustered and p.cross_cluster and p.kind is not None:
        where = p.destination.cluster_name or p.destination.cluster
        after = (
            Msg("it is added to %(cluster)s again after the move", cluster=where)
            if where
            else Msg("the destination is not clustered")
        )
        yield Finding(
            "ha-lost-during-move",
            WARN,
            Msg(
                "High availability is lost during this move: %(vm)s leaves its cluster role, so a host failure "
                "during the move leaves it unavailable; %(after)s.",
                vm=p.vm.name,
                after=after,
            ),
            Msg("Move in a maintenance window, or choose a node of the same cluster."),
        )


def vm_not_running(p: Proposal) -> Iterator[Finding]:
    if p.vm.running or p.vm.restarts:  # taken down for this move by choice, and started again after it
        return
    if p.kind == Kind.NETWORK:
        yield Finding(
            "vm-not-running",
            INFO,
            Msg(
                "%(vm)s is %(state)s: its files are copied offline (Network), the slowest kind of move.",
                vm=p.vm.name,
                state=VM_STATES.get(p.vm.state, p.vm.state),
            ),
            Msg("Start the VM first to live-migrate it instead."),
        )
    elif p.kind in Kind.LIVE_KINDS:
        yield Finding(
            "vm-not-running",
            BLOCK,
            Msg(
                "A live migration needs a running VM; %(vm)s is %(state)s.",
                vm=p.vm.name,
                state=VM_STATES.get(p.vm.state, p.vm.state),
            ),
            Msg("Start the VM, or move it offline."),
        )


def _hosts_of(p: Proposal):
    return (p.source,) if p.source.fqdn == p.destination.fqdn else (p.source, p.destination)


def _hyperv_settings_apply(p: Proposal) -> bool:
    """Whether the hosts' own Hyper-V live-migration settings and credentials carry this move: a move between
    hosts, not one the failover cluster makes inside itself (hyperv.md section 9)."""
    return p.kind in Kind.LIVE_KINDS and not p.cluster_move


def migration_disabled(p: Proposal) -> Iterator[Finding]:
    if not _hyperv_settings_apply(p):
        return
    for host in _hosts_of(p):
        if not host.migration_enabled:
            yield Finding(
                "migration-disabled",
                BLOCK,
                Msg("Live migration is disabled on %(host)s.", host=host.name),
                Msg("Enable incoming and outgoing live migrations on %(host)s (Enable-VMMigration).", host=host.name),
            )


def no_migration_network(p: Proposal) -> Iterator[Finding]:
    # The incoming-migration networks are part of the Hyper-V Settings; a cluster moves its roles over the
    # cluster networks chosen in its own Live Migration Settings (hyperv.md section 9).
    if not _hyperv_settings_apply(p):
        return
    for host in _hosts_of(p):
        if not host.use_any_network and not host.migration_networks:
            yield Finding(
                "no-migration-network",
                BLOCK,
                Msg("%(host)s has no live-migration network and does not allow any network.", host=host.name),
                Msg(
                    "Add a migration network on %(host)s (Add-VMMigrationNetwork) or allow any available network.",
                    host=host.name,
                ),
            )


def insufficient_memory(p: Proposal) -> Iterator[Finding]:
    if p.source.fqdn == p.destination.fqdn or not p.vm.running or p.kind is None:
        return
    need, free = p.vm.memory_bytes, p.destination.memory_available_bytes
    if need > free:
        yield Finding(
            "insufficient-memory",
            BLOCK,
            Msg(
                "%(host)s has %(free)s GiB free; %(vm)s needs %(need)s GiB "
                "(Hyper-V would fail with 0x800705AA before 10%%).",
                host=p.destination.name,
                free=_gib(free),
                vm=p.vm.name,
                need=_gib(need),
            ),
            Msg("Choose another host or free memory on this one."),
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
                Msg(
                    "%(host)s has no virtual switch named '%(switch)s' (Compare-VM 33012).",
                    host=p.destination.name,
                    switch=switch,
                ),
                Msg(
                    "Create the switch '%(switch)s' on %(host)s, or reconnect the VM's adapter.",
                    switch=switch,
                    host=p.destination.name,
                ),
            )


def processor_incompatible(p: Proposal) -> Iterator[Finding]:
    if p.kind is None or p.source.fqdn == p.destination.fqdn:
        return
    # A running or saved VM carries its processor state: Live, Live (VSM), Quick, and an offline copy of a
    # saved VM all restore it on the destination's processor.
    carries_state = p.kind in Kind.LIVE_KINDS or p.vm.state == "saved"
    src, dst = p.source.processor_family, p.destination.processor_family
    vendors = p.source.processor_vendor, p.destination.processor_vendor
    if all(vendors) and vendors[0] != vendors[1]:
        if carries_state:
            yield _vendor_finding(p)
        return
    if not carries_state or p.vm.processor_compatibility:
        return
    if src and dst and src != dst:
        yield Finding(
            "processor-incompatible",
            BLOCK,
            Msg(
                "%(source)s (%(source_family)s) and %(destination)s (%(destination_family)s) have different "
                "processor generations.",
                source=p.source.name,
                source_family=src,
                destination=p.destination.name,
                destination_family=dst,
            ),
            Msg(
                "Shut the VM down and enable processor compatibility "
                "(Set-VMProcessor -CompatibilityForMigrationEnabled)."
            ),
        )


def _vendor_finding(p: Proposal) -> Finding:
    """Processor compatibility mode only hides features of one vendor's processors; it never moves a running
    or saved VM between Intel and AMD (hyperv.md section 9)."""
    return Finding(
        "processor-incompatible",
        BLOCK,
        Msg(
            "%(source)s (%(source_family)s) and %(destination)s (%(destination_family)s) have processors of "
            "different vendors: a running or saved VM cannot move between them, not even with processor "
            "compatibility.",
            source=p.source.name,
            source_family=p.source.processor_family,
            destination=p.destination.name,
            destination_family=p.destination.processor_family,
        ),
        Msg("Shut the VM down and move it offline, or choose a host with the same processor vendor."),
    )


def _delegation_remedy(host: str) -> Msg:
    return Msg(
        "In Active Directory, trust %(host)s's computer account for constrained delegation to the other host's "
        'services cifs and Microsoft Virtual System Migration Service with "Use any authentication protocol" '
        "(not Kerberos only; needed since Windows Server 2016), on both hosts; then record it on the host's "
        "settings page.",
        host=host,
    )


def kerberos_delegation_missing(p: Proposal) -> Iterator[Finding]:
    if not _hyperv_settings_apply(p):
        return
    for host in _hosts_of(p):
        if host.auth_type == "credssp":
            yield Finding(
                "kerberos-delegation-missing",
                BLOCK,
                Msg(
                    "%(host)s authenticates live migrations with CredSSP, which needs the operator signed in on "
                    "the source host; from this console the move would fail with 0x8009030D.",
                    host=host.name,
                ),
                Msg(
                    "Switch %(host)s to Kerberos and configure constrained delegation "
                    "(cifs and Microsoft Virtual System Migration Service).",
                    host=host.name,
                ),
            )
        elif host.delegation == Delegation.MISSING:
            yield Finding(
                "kerberos-delegation-missing",
                BLOCK,
                Msg(
                    "%(host)s is recorded without Kerberos constrained delegation to the other host; "
                    "the move would fail with 0x8009030E.",
                    host=host.name,
                ),
                _delegation_remedy(host.name),
            )
        elif host.delegation != Delegation.CONFIGURED:
            # Delegation is an attribute of the computer account in AD: no host reports it (hyperv.md section 9).
            yield Finding(
                "kerberos-delegation-missing",
                WARN,
                Msg(
                    "Whether %(host)s has Kerberos constrained delegation to the other host is unknown (Active "
                    "Directory holds it, the host cannot tell); without it the move fails with 0x8009030E.",
                    host=host.name,
                ),
                _delegation_remedy(host.name),
            )


def clustered_vm_storage_move(p: Proposal) -> Iterator[Finding]:
    if not p.vm.clustered or p.kind not in (Kind.LIVE_VSM, Kind.STORAGE, Kind.NETWORK):
        return
    if p.cross_cluster:
        yield Finding(
            "clustered-vm-storage-move",
            INFO,
            Msg(
                "%(vm)s is removed from its cluster role before the move and made highly available again after.",
                vm=p.vm.name,
            )
            if p.destination.cluster
            # A standalone host has no cluster to add the role to: the VM arrives without HA.
            else Msg(
                "%(vm)s is removed from its cluster role before the move and runs without high availability on "
                "the standalone destination.",
                vm=p.vm.name,
            ),
        )
    else:
        if p.kind == Kind.NETWORK:
            message = Msg("Hyper-V refuses an offline copy of the clustered VM %(vm)s.", vm=p.vm.name)
        else:
            message = Msg("Hyper-V refuses storage options of a move of the clustered VM %(vm)s.", vm=p.vm.name)
        yield Finding(
            "clustered-vm-storage-move",
            BLOCK,
            message,
            Msg(
                "Move it with its cluster (storage stays on the cluster's shared volume), or remove it from the "
                "cluster first and try again."
            ),
        )


def host_migration_limit(p: Proposal) -> Iterator[Finding]:
    if p.kind is None:
        return
    for host in _hosts_of(p):
        for label, used, limit in _slots_needed(p, host):
            if used >= limit:
                ahead = host.queued
                if ahead:
                    wait = Msg(
                        "this move will wait for a free slot on %(host)s behind %(ahead)s other queued move(s).",
                        host=host.name,
                        ahead=ahead,
                    )
                else:
                    wait = Msg("this move will wait for a free slot on %(host)s.", host=host.name)
                if label == "live":
                    text = "%(host)s runs %(used)s of %(limit)s live migrations; %(wait)s"
                else:
                    text = "%(host)s runs %(used)s of %(limit)s storage migrations; %(wait)s"
                yield Finding(
                    "host-migration-limit", INFO, Msg(text, host=host.name, used=used, limit=limit, wait=wait)
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
                Msg(
                    "Cluster %(cluster)s allows %(parallel)s parallel live migration(s) (MaximumParallelMigrations); "
                    "that wins over %(host)s's own limit of %(limit)s.",
                    cluster=host.cluster_name or host.cluster,
                    parallel=host.cluster_max_parallel,
                    host=host.name,
                    limit=host.max_live,
                ),
                Msg("Raise the cluster property MaximumParallelMigrations to allow more at once."),
            )


def vm_already_moving(p: Proposal) -> Iterator[Finding]:
    if p.vm.moving:
        yield Finding(
            "vm-already-moving",
            BLOCK,
            Msg("%(vm)s already has a migration queued or running.", vm=p.vm.name),
            Msg("Wait for it to finish, or cancel it on the Jobs page."),
        )


def host_unreachable(p: Proposal) -> Iterator[Finding]:
    for host in _hosts_of(p):
        if not host.reachable:
            yield Finding(
                "host-unreachable",
                BLOCK,
                Msg(
                    "%(host)s did not answer at the last inventory sync: %(error)s",
                    host=host.name,
                    error=host.last_error,
                )
                if host.last_error
                else Msg("%(host)s did not answer at the last inventory sync.", host=host.name),
                Msg("Check that %(host)s is up and WinRM answers, then refresh the inventory.", host=host.name),
            )


def _gib(n: int) -> float:
    """GiB with one decimal: a float, so a German page writes 7,5."""
    return round(n / 2**30, 1)


# --- What real moves fail on (hyperv.md section 9), read by the inventory ----------------------
# Sources: Microsoft's "Use live migration without Failover Clustering" (Move-VM -IncludeStorage
# moves the disks "and other files, such as checkpoints and Smart Paging files"); Move-VM's help
# (-SnapshotFilePath, -SmartPagingFilePath name where they go in a per-disk move); "Hyper-V
# Virtual Fibre Channel" (live migration needs two WWN sets per adapter; the destination reaches
# the LUNs through the same virtual SAN); "Set up Hyper-V Replica" (a Replica server accepts
# primaries it authorizes; clusters replicate through the Hyper-V Replica Broker); hyperv.md
# section 7 (0x80071398: the node is not a possible owner).

_CSV_ROOT = "c:\\clusterstorage\\"


def _reaches(host, path: str, p: Proposal) -> bool:
    """Whether `host` can open a file of the VM where it lies: on a share it is connected to, on a
    Cluster Shared Volume of the source's cluster, or on its own disks when it is the source."""
    lowered = path.lower().rstrip("\\")
    if lowered.startswith("\\\\"):
        roots = [s.lower().rstrip("\\") for s in host.shares]
        return any(lowered == r or lowered.startswith(r + "\\") for r in roots)
    if lowered.startswith(_CSV_ROOT):
        return host.cluster is not None and host.cluster == p.source.cluster
    return host.fqdn == p.source.fqdn


def _to_another_host(p: Proposal) -> bool:
    return p.kind is not None and p.kind != Kind.STORAGE and p.source.fqdn != p.destination.fqdn


def _inside_cluster(p: Proposal) -> bool:
    return p.vm.clustered and p.source.cluster is not None and not p.cross_cluster


def _files_stay(p: Proposal) -> bool:
    """Whether the VM's other files (checkpoints, smart paging) stay where they are: in a Live or
    Quick move, in any move of a clustered VM inside its cluster (storage options are refused),
    and in a per-disk move (-Vhds), which names no folder for them."""
    if not _to_another_host(p):
        return False
    return p.kind in (Kind.LIVE, Kind.QUICK) or _inside_cluster(p) or bool(p.vhds)


def dvd_iso_local_path(p: Proposal) -> Iterator[Finding]:
    if not _to_another_host(p):
        return
    for iso in dict.fromkeys(p.vm.dvd_isos):
        if not _reaches(p.destination, iso, p):
            yield Finding(
                "dvd-iso-local-path",
                BLOCK,
                Msg(
                    "A DVD drive of %(vm)s holds %(iso)s, which %(host)s cannot open; no move copies the ISO.",
                    vm=p.vm.name,
                    iso=iso,
                    host=p.destination.name,
                ),
                Msg(
                    "Eject the ISO (Set-VMDvdDrive -Path $null), or put it on an SMB share both hosts reach "
                    "and insert it from there."
                ),
            )


def checkpoint_files_local(p: Proposal) -> Iterator[Finding]:
    path = p.vm.snapshot_path
    if p.vm.checkpoints and path and _files_stay(p) and not _reaches(p.destination, path, p):
        yield Finding(
            "checkpoint-files-local",
            BLOCK,
            Msg(
                "%(vm)s has %(count)s checkpoint(s) in %(path)s, which %(host)s cannot reach; "
                "this move leaves them there.",
                vm=p.vm.name,
                count=p.vm.checkpoints,
                path=path,
                host=p.destination.name,
            ),
            Msg(
                "Move the whole VM with its storage (Live (VSM)) so the checkpoints move too, move its storage to a "
                "share or Cluster Shared Volume the destination reaches first, or delete the checkpoints."
            ),
        )


def smart_paging_local(p: Proposal) -> Iterator[Finding]:
    path = p.vm.smart_paging_path
    if path and _files_stay(p) and not _reaches(p.destination, path, p):
        yield Finding(
            "smart-paging-local",
            WARN,
            Msg(
                "The smart paging folder of %(vm)s is %(path)s, which %(host)s cannot reach; "
                "this move leaves it there.",
                vm=p.vm.name,
                path=path,
                host=p.destination.name,
            ),
            Msg(
                "Set the smart paging folder to a share or Cluster Shared Volume both hosts reach "
                "(Set-VM -SmartPagingFilePath), or move the VM with its storage (Live (VSM))."
            ),
        )


def passthrough_disk(p: Proposal) -> Iterator[Finding]:
    if p.vm.passthrough_disks and _to_another_host(p) and not _inside_cluster(p):
        yield Finding(
            "passthrough-disk",
            BLOCK,
            Msg(
                "%(vm)s uses pass-through (physical) disk(s) %(disks)s of %(source)s; such disks move only "
                "with a clustered VM between nodes of its cluster, and no storage move copies them.",
                vm=p.vm.name,
                disks=tuple(str(n) for n in p.vm.passthrough_disks),
                source=p.source.name,
            ),
            Msg(
                "Convert the pass-through disks to VHDX files first, or make the VM highly available in a cluster "
                "whose nodes all see the disk and move it between those nodes."
            ),
        )


def virtual_fibre_channel(p: Proposal) -> Iterator[Finding]:
    if p.vm.fc_sans and _to_another_host(p):
        sans = tuple(dict.fromkeys(p.vm.fc_sans))
        yield Finding(
            "virtual-fibre-channel",
            WARN,
            Msg(
                "%(vm)s has virtual Fibre Channel adapters on the virtual SAN(s) %(sans)s; the console cannot "
                "read whether %(host)s has them.",
                vm=p.vm.name,
                sans=sans,
                host=p.destination.name,
            ),
            Msg(
                "Make sure %(host)s has a virtual SAN named %(sans)s on the same fabric, and that both WWN sets "
                "(A and B) of each adapter are zoned to the VM's LUNs: a live move switches to the other set.",
                host=p.destination.name,
                sans=sans,
            ),
        )


def hyper_v_replica(p: Proposal) -> Iterator[Finding]:
    mode = p.vm.replication_mode
    if not mode or not _to_another_host(p) or _inside_cluster(p):
        return  # inside a cluster the Hyper-V Replica Broker follows the VM
    if mode == "primary":
        yield Finding(
            "hyper-v-replica",
            WARN,
            Msg(
                "%(vm)s replicates to %(replica)s (Hyper-V Replica); after the move %(host)s sends its changes.",
                vm=p.vm.name,
                replica=p.vm.replication_replica or Msg("its Replica server"),
                host=p.destination.name,
            ),
            Msg(
                "Make sure the Replica server accepts %(host)s as a primary server (authorization entry, or "
                "replication from any authenticated server); in a cluster use its Hyper-V Replica Broker.",
                host=p.destination.name,
            ),
        )
    else:
        yield Finding(
            "hyper-v-replica",
            WARN,
            Msg(
                "%(vm)s is a Replica VM: %(primary)s sends its changes to %(replica)s, not to %(host)s, so "
                "replication stops after the move.",
                vm=p.vm.name,
                primary=p.vm.replication_primary or Msg("its primary server"),
                replica=p.vm.replication_replica or p.source.name,
                host=p.destination.name,
            ),
            Msg(
                "Keep Replica VMs on their Replica server (or inside its cluster, behind the Replica Broker), or "
                "change the Replica server of the replication on the primary after the move."
            ),
        )


def not_possible_owner(p: Proposal) -> Iterator[Finding]:
    owners = p.vm.possible_owners
    if not owners or not _inside_cluster(p) or p.source.fqdn == p.destination.fqdn or p.kind is None:
        return
    if p.destination.name.lower() not in {o.lower() for o in owners}:
        yield Finding(
            "not-possible-owner",
            BLOCK,
            Msg(
                "%(host)s is not a possible owner of the cluster role of %(vm)s; the move would fail with "
                "0x80071398. Possible owners: %(owners)s.",
                host=p.destination.name,
                vm=p.vm.name,
                owners=tuple(owners),
            ),
            Msg(
                "Add %(host)s to the possible owners of the VM's cluster resource (Failover Cluster Manager, or "
                "Get-ClusterResource | Set-ClusterOwnerNode), or choose one of its possible owners.",
                host=p.destination.name,
            ),
        )


# A guest cluster (VMs sharing a VHDX) survives a host failure only when its nodes run on different
# hosts ("Using Guest Clustering for High Availability": place guest cluster nodes on different
# physical hosts). Nothing on the host enforces it: Move-VM and the cluster take the move, VMM's
# availability sets keep such VMs apart only "whenever possible", and a failover cluster ignores
# AntiAffinityClassNames when no other node is left. A preference, so a warning; the planner never
# chooses such a host (placement.choose).
def guest_cluster_same_host(p: Proposal) -> Iterator[Finding]:
    if p.kind is None or p.source.fqdn == p.destination.fqdn:
        return
    mine = {d.path.lower() for d in p.vm.disks if d.shared}
    partners = [name for name, path in p.destination_shared if path.lower() in mine]
    for partner in dict.fromkeys(partners):
        yield Finding(
            "guest-cluster-same-host",
            WARN,
            Msg(
                "%(partner)s, the other node of %(vm)s's guest cluster (they share a VHDX), runs on %(host)s; "
                "a failure of %(host)s would stop both nodes.",
                partner=partner,
                vm=p.vm.name,
                host=p.destination.name,
            ),
            Msg(
                "Choose a host where no other node of the guest cluster runs. Hyper-V does not refuse this move: "
                "keep the nodes apart yourself (in VMM an availability set, in a failover cluster "
                "AntiAffinityClassNames)."
            ),
        )


RULES: tuple[Rule, ...] = (
    path_not_allowed,
    smb_path_not_fqdn,
    share_reachability_unknown,
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
    dvd_iso_local_path,
    checkpoint_files_local,
    smart_paging_local,
    passthrough_disk,
    virtual_fibre_channel,
    hyper_v_replica,
    not_possible_owner,
    guest_cluster_same_host,
)


def evaluate(p: Proposal) -> list[Finding]:
    """Every finding for the proposal, blocking ones first."""
    findings = [f for rule in RULES for f in rule(p)]
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


def blocked(findings: list[Finding]) -> bool:
    return any(f.severity == BLOCK for f in findings)
