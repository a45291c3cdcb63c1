"""Which kind of move a destination allows, and how good a destination it is (pure).

Transfer types follow hyperv.md section 1; the rating follows VMM's host ratings: 0-5 stars in
half steps from free memory, CPU and migrations already running, 0 when a rule blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from migrations_ui.preflight.facts import HostFacts, Kind, Proposal, VmFacts
from migrations_ui.preflight.rules import BLOCK, VM_STATES, Finding, blocked, evaluate
from utilities.texts import Msg

CSV_ROOT = "c:\\clusterstorage\\"
# What an operator picks first: a node of the HA VM's own cluster (it stays highly available, its files stay
# where they are), then a host that reaches the VM's files (Live: nothing is copied), then the rest (the
# files are copied: Live (VSM), Network). VMM likewise rates only the VM's cluster highly for an HA VM.
SAME_CLUSTER, SAME_STORAGE, ELSEWHERE = 0, 1, 2


@dataclass(frozen=True)
class Assessment:
    """The outcome of pre-flight for one destination: kind, findings, stars."""

    proposal: Proposal
    transfer_type: str | None
    findings: tuple[Finding, ...]
    rating: float
    rating_reason: str

    @property
    def allowed(self) -> bool:
        return self.transfer_type is not None and not blocked(list(self.findings))

    @property
    def preference(self) -> int:
        """SAME_CLUSTER, SAME_STORAGE or ELSEWHERE: destinations are listed in that order, then by stars."""
        return preference(self.proposal)

    def as_json(self) -> dict:
        """The preflight JSON of architecture.md (stable interface)."""
        return {
            "vm": self.proposal.vm.name,
            "destination": self.proposal.destination.fqdn,
            "transfer_type": self.transfer_type,
            "allowed": self.allowed,
            "rating": self.rating,
            "findings": [f.as_dict() for f in self.findings],
        }


def reachable_from(path: str, host: HostFacts) -> bool:
    """Whether a file at `path` can be opened by `host` where it lies (a share it is connected to, or its
    cluster's shared volumes)."""
    lowered = path.lower()
    if lowered.startswith("\\\\"):
        return any(lowered.startswith(s.lower().rstrip("\\") + "\\") for s in host.shares)
    return False


def files_stay_reachable(vm: VmFacts, source: HostFacts, destination: HostFacts) -> bool:
    same_cluster = source.cluster is not None and source.cluster == destination.cluster
    for path in vm.file_paths:
        if same_cluster and path.lower().startswith(CSV_ROOT):
            continue
        if not reachable_from(path, destination):
            return False
    return True


def transfer_type(p: Proposal) -> str | None:
    """The kind of move hyperv.md section 1 allows for (VM, destination, storage target); None if none."""
    vm, src, dst = p.vm, p.source, p.destination
    wants_storage = bool(p.storage_path or p.vhds)
    if src.fqdn == dst.fqdn:
        return Kind.STORAGE if wants_storage else None
    if not vm.running:
        if vm.state not in ("off", "saved"):
            return None
        if vm.restarts and vm.clustered and not wants_storage and files_stay_reachable(vm, src, dst):
            # Taken down for a maintenance, an HA VM moves as its cluster moves an offline role
            # (Move-ClusterVirtualMachineRole -MigrationType Quick): Hyper-V refuses it an offline copy.
            return Kind.QUICK if src.cluster is not None and src.cluster == dst.cluster else None
        return Kind.NETWORK
    if not wants_storage and files_stay_reachable(vm, src, dst):
        return Kind.LIVE
    return Kind.LIVE_VSM


def preference(p: Proposal) -> int:
    """How an operator ranks the destination of a proposal whose kind is decided (SAME_CLUSTER first)."""
    if p.vm.clustered and p.source.cluster is not None and not p.cross_cluster:
        return SAME_CLUSTER
    if p.kind in (Kind.LIVE, Kind.QUICK):
        return SAME_STORAGE
    return ELSEWHERE


def star_cap(p: Proposal) -> tuple[float, Msg | None]:
    """The most stars a destination gets, and why: leaving the HA VM's cluster drops its high availability
    for the move (and for good on a standalone host), copying the files makes a longer move."""
    if p.vm.clustered and p.source.cluster is not None and p.cross_cluster:
        return 3.0, Msg("it leaves its cluster: at most 3 stars")
    if p.kind in (Kind.LIVE_VSM, Kind.NETWORK):
        return 4.0, Msg("its files are copied: at most 4 stars")
    return 5.0, None


def assess(p: Proposal) -> Assessment:
    """Decide the transfer type, run every rule, rate the destination."""
    kind = transfer_type(p)
    p = replace(p, kind=kind)
    # No fallback to Quick: what stops a live move of an HA VM inside its cluster (its processor) stops
    # restoring its saved state on that node too.
    findings = evaluate(p)
    if kind is None:
        if p.source.fqdn == p.destination.fqdn:
            reason = Msg("The destination is the VM's own host.")
        else:
            reason = Msg(
                "%(vm)s is %(state)s; it can only move when running, off or saved.",
                vm=p.vm.name,
                state=VM_STATES.get(p.vm.state, p.vm.state),
            )
        remedy = Msg("Choose another host or change the VM's state.")
        findings = [Finding("no-transfer-type", BLOCK, reason, remedy)]
        findings += [f for f in evaluate(p) if f.severity != BLOCK]
    stars, reason = rating(p.vm, p.destination, findings, *star_cap(p))
    return Assessment(p, kind, tuple(findings), stars, reason)


def rating(
    vm: VmFacts, host: HostFacts, findings: list[Finding], cap: float = 5.0, why: str | None = None
) -> tuple[float, str]:
    """0-5 stars in half steps. 0 with the first blocking reason; otherwise memory left after the
    move weighs most, then CPU headroom, then free migration slots; at most `cap` (star_cap, `why`)."""
    blocking = [f for f in findings if f.severity == BLOCK]
    if blocking:
        return 0.0, blocking[0].message
    total = host.memory_total_bytes or 1
    memory_left = max(0.0, (host.memory_available_bytes - (vm.memory_bytes if vm.running else 0)) / total)
    cpu_free = max(0.0, 1 - host.cpu_load_percent / 100)
    limit = max(1, host.live_limit)
    slots_free = max(0.0, 1 - host.live_in_use / limit)
    score = 5 * (0.5 * min(1.0, memory_left * 2) + 0.3 * cpu_free + 0.2 * slots_free)
    stars = max(0.5, min(cap, round(score * 2) / 2))
    load = Msg(
        "%(memory)s%% memory free after the move, CPU %(cpu)s%%, %(used)s/%(limit)s live migrations running",
        memory=round(memory_left * 100),
        cpu=host.cpu_load_percent,
        used=host.live_in_use,
        limit=limit,
    )
    return stars, Msg("%(load)s; %(why)s", load=load, why=why) if why else load
