"""Where each VM of a plan goes (pure): the destinations of a host's evacuation or of a rebalance.

Whether one VM may go to one host is pre-flight's answer (planner.assess; a blocked pair is never
chosen). What only a whole plan can see is kept here: the memory every destination gives away
(with headroom), HA VMs staying in their cluster, the nodes of a guest cluster (VMs attached to one
shared VHDX) never on one host, and Live preferred over the slower kinds. Among the hosts left, an
evacuation takes the one that stays least full and is not made the plan's bottleneck, where the
move is not much slower than on the fastest host (a file copy to a slower disk);
a rebalance moves VMs from the hosts fullest above the average to those furthest below it.

Pre-flight (about 0.1 ms a pair) runs lazily: candidates are ranked by cheap figures first and
assessed in that order until one fits, so a 1,000-VM plan assesses about a thousand pairs.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from fabric.hyperv.precopy import closed_form_total
from migrations_ui.planning.estimates import (
    DEFAULT_DIRTY_MBPS,
    MB,
    Figures,
    HostRates,
    MoveSpec,
    PairRate,
    estimate_move,
    move_spec,
)
from migrations_ui.preflight.facts import HostFacts, Kind, Proposal, ShareFacts, VmFacts
from migrations_ui.preflight.rules import BLOCK, VM_STATES, guest_cluster_same_host
from migrations_ui.preflight.transfer import CSV_ROOT, Assessment, assess, transfer_type
from utilities.texts import Msg, without_period

STOPPED_MOVE, STOPPED_LEAVE = "move", "leave"
# How many of the hosts a VM was not placed on a plan names, with the reason (Placed.passed_over).
PASSED_OVER_SHOWN = 2
PICK_SHORT_LAST, PICK_PACKED = "short-last", "packed"
# Live first (no outage, no copy); Quick only for an HA VM that cannot go live; files copied last.
KIND_RANK = {Kind.LIVE: 0, Kind.QUICK: 1, Kind.LIVE_VSM: 2, Kind.NETWORK: 3}
MAX_REASONS = 3
# Evacuation: a destination where a move takes this much longer than on the fastest is a last resort.
SLOWER = 0.15


@dataclass(frozen=True)
class PlanOptions:
    """What the operator and the inventory tell a plan beyond the facts of hosts and VMs."""

    headroom: float = 0.10  # share of each destination's memory left free after the plan
    stopped: str = STOPPED_LEAVE  # stopped and saved VMs: "move" (offline copy) or "leave" (with the reason)
    performance: str | None = None  # performance option of every move; None: each source host's own
    rates: Mapping[str, HostRates] = field(default_factory=dict)  # by host FQDN; missing: HostRates()
    dirty_mbps: Mapping[str, float] = field(default_factory=dict)  # by VM id; missing: DEFAULT_DIRTY_MBPS
    figures: Figures = field(default_factory=Figures)
    shares: tuple[ShareFacts, ...] = ()  # the inventory's shares, for the corrected SMB paths of findings
    tolerance: float = 0.05  # rebalance: a host within average memory use +- this share counts as balanced
    # The links past moves measured, by (source FQDN, destination FQDN): a pair found here is timed
    # with its measured link instead of the hosts' NIC speed (estimates.measured_link).
    measured: Mapping[tuple[str, str], PairRate] = field(default_factory=dict)

    def rate(self, host: str) -> HostRates:
        return self.rates.get(host, HostRates())


@dataclass(frozen=True)
class Placed:
    """A VM and the destination chosen for it, with pre-flight's verdict and its timing model."""

    vm: VmFacts
    source: HostFacts
    destination: HostFacts
    assessment: Assessment
    spec: MoveSpec
    # Hosts tried before this one and why they could not take the VM (the first few): a plan says why
    # a VM does not go where an operator would look first (its guest-cluster partner is there...).
    passed_over: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Left:
    vm: VmFacts
    source: HostFacts
    reason: str


class Ledger:
    """Memory given away and guest-cluster nodes, as the plan's moves are decided one by one."""

    def __init__(self, hosts: Iterable[HostFacts], vms: Mapping[str, Sequence[VmFacts]], options: PlanOptions):
        self.options = options
        self.used: dict[str, float] = {}  # memory in use, what the plan brings included
        self.room: dict[str, float] = {}  # what the plan may still place there (headroom kept)
        for h in hosts:
            self.used[h.fqdn] = h.memory_total_bytes - h.memory_available_bytes
            self.room[h.fqdn] = h.memory_available_bytes - options.headroom * h.memory_total_bytes
        self.where: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.sent: dict[str, int] = defaultdict(int)  # moves planned out of each host
        self.shared: dict[str, tuple[str, ...]] = {}  # the shared VHDX of each VM that has one
        for host, on_host in vms.items():
            for vm in on_host:
                self.where[vm.id], self.names[vm.id] = host, vm.name
                paths = tuple(d.path for d in vm.disks if d.shared)
                if paths:
                    self.shared[vm.id] = paths
        self.rates = {h.fqdn: options.rate(h.fqdn) for h in hosts}
        self._guesses: dict[tuple[str, int], Cost] = {}
        # Hosts with equal rates cost a move the same: estimates are made once per class.
        classes: dict[HostRates, int] = {}
        self.klass: dict[str, int] = {}
        for h in hosts:
            self.klass[h.fqdn] = classes.setdefault(self.rates[h.fqdn], len(classes))

    def fits(self, vm: VmFacts, host: HostFacts) -> bool:
        # Only a VM that runs there holds memory where it lands (a stopped one needs it when started: headroom).
        return not vm.needs_memory or vm.memory_bytes <= self.room.get(host.fqdn, 0)

    def shared_on(self, host: HostFacts) -> tuple[tuple[str, str], ...]:
        """(VM name, shared VHDX path) of the VMs that are, or will be, on host: Proposal.destination_shared."""
        on_host = sorted(vm_id for vm_id in self.shared if self.where.get(vm_id) == host.fqdn)
        return tuple((self.names[vm_id], path) for vm_id in on_host for path in self.shared[vm_id])

    def move(self, vm: VmFacts, source: HostFacts, destination: HostFacts) -> None:
        if vm.needs_memory:
            self.room[destination.fqdn] -= vm.memory_bytes
            self.used[destination.fqdn] += vm.memory_bytes
            # The source's memory is only free once the move ends: not lent to other moves of the plan.
            self.used[source.fqdn] -= vm.memory_bytes
        self.where[vm.id] = destination.fqdn
        self.sent[source.fqdn] += 1

    def spec(self, vm: VmFacts, kind: str, source: HostFacts, destination: HostFacts) -> MoveSpec:
        dirty = self.options.dirty_mbps.get(vm.id, DEFAULT_DIRTY_MBPS)
        measured = self.options.measured.get((source.fqdn, destination.fqdn))
        return move_spec(
            vm, kind, source, destination, dirty_mbps=dirty, performance=self.options.performance, measured=measured
        )

    def guess(self, vm: VmFacts, source: HostFacts, destination: str) -> Cost:
        """The move alone as a Live (or offline) move, before pre-flight says which kind it is: what ranking
        candidates needs. The closed form of the pre-copy (hyperv.md section 8) is close enough for a
        ranking and far cheaper; hosts of one rate class cost the same, so it is worked out once a class.
        A pair's measured link is not used here (it is a pair's, not a class's): the plan's timing is."""
        klass = self.klass[destination]
        key = (vm.id, klass)
        if key not in self._guesses:
            f, here, there = self.options.figures, self.rates[source.fqdn], self.rates[destination]
            link = min(here.nic_bytes_s, there.nic_bytes_s)
            if vm.running:
                option = self.options.performance or source.performance_option
                rate = min(link / f.wire_ratio(option), f.stream_cap(option))
                ratio = self.options.dirty_mbps.get(vm.id, DEFAULT_DIRTY_MBPS) * MB / rate
                rounds = f.max_passes
                sent = (
                    vm.memory_bytes * (rounds + 1) if ratio >= 1 else closed_form_total(vm.memory_bytes, ratio, rounds)
                )
                # Files on a local disk go along whichever host it is (Live VSM): their copy counts too.
                files = float(sum(d.size_bytes for d in vm.disks if _local(d.path)))
                speed = min(link, here.disk_bytes_s, there.disk_bytes_s)
                seconds = f.prepare_s + files / speed + sent / rate + f.resume_s
                cost = Cost(seconds, files + sent * f.wire_ratio(option), files)
            else:
                files = sum(d.size_bytes for d in vm.disks) + (vm.memory_bytes if vm.state == "saved" else 0)
                speed = min(link, here.disk_bytes_s, there.disk_bytes_s)
                cost = Cost(f.prepare_s + files / speed, float(files), float(files))
            self._guesses[key] = cost
        return self._guesses[key]

    def cost(self, spec: MoveSpec) -> Cost:
        o = self.options
        alone = estimate_move(spec, self.rates[spec.source], self.rates[spec.destination], o.figures)
        return Cost(alone.duration_s, alone.wire_bytes, spec.storage_bytes)


def _local(path: str) -> bool:
    """A file no other host can open where it lies (neither on a share nor on a cluster's volumes)."""
    lowered = path.lower()
    return not lowered.startswith("\\\\") and not lowered.startswith(CSV_ROOT)


@dataclass(frozen=True)
class Cost:
    """What a move asks of the hosts it touches: seconds of a slot, bytes through NICs, bytes through disks."""

    seconds: float
    wire_bytes: float
    file_bytes: float


class Load:
    """How long each host is kept busy by the moves given to it so far, in seconds (its slots, NIC, disks)."""

    def __init__(self, hosts: Iterable[HostFacts], rates: Mapping[str, HostRates]):
        self.per = {
            h.fqdn: (max(1, h.live_limit), rates[h.fqdn].nic_bytes_s, rates[h.fqdn].disk_bytes_s) for h in hosts
        }
        self.taken: dict[str, list[float]] = {fqdn: [0.0, 0.0, 0.0] for fqdn in self.per}

    def after(self, host: str, cost: Cost) -> float:
        seconds, wire, files = self.taken[host]
        slots, nic, disk = self.per[host]
        return max((seconds + cost.seconds) / slots, (wire + cost.wire_bytes) / nic, (files + cost.file_bytes) / disk)

    def add(self, host: str, cost: Cost) -> None:
        t = self.taken[host]
        t[0] += cost.seconds
        t[1] += cost.wire_bytes
        t[2] += cost.file_bytes


def choose(
    vm: VmFacts, source: HostFacts, ranked: Iterable[HostFacts], ledger: Ledger, *, ha_in_cluster: bool = True
) -> tuple[Placed | None, list[str]]:
    """The best destination for vm among candidates ranked best first, or the reasons none fits.

    The first candidate (in rank order) that pre-flight allows as a Live move wins; failing that,
    the best of the slower kinds. Candidates that cannot beat what was found are not assessed.
    ha_in_cluster=False: an HA VM may leave its cluster (an operator's explicit choice; pre-flight warns).
    """
    reasons: list[tuple[str, str]] = []  # (host, why): Msg texts, translated where a page shows them
    found: tuple[int, Assessment, HostFacts] | None = None
    shares = ledger.options.shares
    for host in ranked:
        if ha_in_cluster and vm.clustered and host.cluster != source.cluster:
            continue  # an HA VM stays in its cluster; the reason is given once, below
        if host.live_limit < 1 or (source.live_limit < 1 and host.fqdn != source.fqdn):
            blocked_host = host.name if host.live_limit < 1 else source.name
            reasons.append((blocked_host, Msg("allows no migration at all (limit 0)")))
            continue
        if not ledger.fits(vm, host):
            headroom = ledger.options.headroom
            reasons.append(
                (host.name, Msg("not enough memory left with %(headroom)s%% headroom", headroom=round(headroom * 100)))
            )
            continue
        proposal = Proposal(
            vm=vm, source=source, destination=host, kind=None, shares=shares, destination_shared=ledger.shared_on(host)
        )
        kind = transfer_type(proposal)
        # Pre-flight's guest-cluster rule: a warning to an operator who picks the host, never a plan's choice.
        together = next(guest_cluster_same_host(replace(proposal, kind=kind)), None)
        if together is not None:
            reasons.append((host.name, together.message))
            continue
        if found is not None and KIND_RANK.get(kind, 9) >= found[0]:
            continue
        verdict = assess(proposal)
        if not verdict.allowed:
            block = next(f for f in verdict.findings if f.severity == BLOCK)
            reasons.append((host.name, block.message))
            continue
        if vm.clustered and verdict.transfer_type == Kind.NETWORK:
            # Hyper-V refuses the storage options of an offline copy for a clustered VM (hyperv.md
            # section 2); pre-flight does not flag a Network move for it yet.
            reasons.append((host.name, Msg("Hyper-V refuses an offline copy of the clustered VM %(vm)s", vm=vm.name)))
            continue
        kind_rank = KIND_RANK.get(verdict.transfer_type, 9)
        if found is None or kind_rank < found[0]:
            found = (kind_rank, verdict, host)
        if kind_rank == 0:
            break
    if found is None:
        return None, reasons
    _, verdict, host = found
    spec = ledger.spec(vm, verdict.transfer_type, source, host)
    return Placed(vm, source, host, verdict, spec, tuple(reasons[:PASSED_OVER_SHOWN])), reasons


def left_reason(vm: VmFacts, source: HostFacts, candidates: Sequence[HostFacts], reasons: list[tuple[str, str]]) -> str:
    """Why no destination was found: each distinct reason once, with the hosts it holds for."""
    if not reasons:
        if vm.clustered and not any(h.cluster == source.cluster for h in candidates):
            where = source.cluster_name or source.cluster or Msg("its cluster")
            return Msg(
                "%(vm)s is highly available and must stay in %(cluster)s: no other node of it can take it.",
                vm=vm.name,
                cluster=where,
            )
        return Msg("No other host to move it to.")
    hosts_by_reason: dict[str, list[str]] = {}
    for host, text in reasons:
        hosts_by_reason.setdefault(text, []).append(host)
    parts = [
        Msg("%(hosts)s: %(reason)s", hosts=", ".join(sorted(hosts)), reason=without_period(text))
        for text, hosts in hosts_by_reason.items()
    ]
    more = len(parts) - MAX_REASONS
    listed = parts[0]
    for part in parts[1:MAX_REASONS]:
        listed = Msg("%(reasons)s; %(reason)s", reasons=listed, reason=part)
    if more > 0:
        return Msg("No host can take it. %(reasons)s; %(more)s more reason(s).", reasons=listed, more=more)
    return Msg("No host can take it. %(reasons)s.", reasons=listed)


def stopped_reason(vm: VmFacts) -> str:
    return Msg(
        "%(vm)s is %(state)s: stopped and saved VMs stay where they are in this plan "
        "(choose to move them, with an offline copy).",
        vm=vm.name,
        state=VM_STATES.get(vm.state, vm.state),
    )


def place_evacuation(
    source: HostFacts,
    vms: Sequence[VmFacts],
    candidates: Sequence[HostFacts],
    resident: Mapping[str, Sequence[VmFacts]],
    options: PlanOptions,
) -> tuple[list[Placed], list[Left]]:
    """Destinations for every VM of `source`, largest first (the hardest to fit go while room is widest)."""
    targets = [h for h in candidates if h.fqdn != source.fqdn]
    ledger = Ledger([source, *targets], {**resident, source.fqdn: vms}, options)
    load = Load([source, *targets], ledger.rates)
    total = {h.fqdn: max(1, h.memory_total_bytes) for h in targets}
    moving = [vm for vm in vms if vm.running or options.stopped == STOPPED_MOVE]
    moving_ids = {vm.id for vm in moving}
    for vm in moving if targets else ():
        load.add(source.fqdn, ledger.guess(vm, source, targets[0].fqdn))
    # What the source must carry is the plan's least makespan: no destination should be made busier.
    budget = load.after(source.fqdn, Cost(0.0, 0.0, 0.0))
    # Same cluster (or standalone to standalone) first: where an operator would look for room; then
    # the least full host this move does not make busier than the source; the busier ones last.
    # Kept sorted as moves are added (one host changes each time): a VM usually takes the first.
    entry = {
        h.fqdn: (h.cluster != source.cluster, ledger.used[h.fqdn] / total[h.fqdn], h.fqdn, i)
        for i, h in enumerate(targets)
    }
    by_fullness = sorted(entry.values())

    # One host of each rate class: where a move is fastest is found among these.
    classes = list({ledger.klass[h.fqdn]: h.fqdn for h in targets}.values())

    def ranked(vm: VmFacts) -> Iterator[HostFacts]:
        deferred: list[HostFacts] = []
        domain = False
        # A host where the move takes much longer than where it is fastest (a slower disk for its
        # files, a slower NIC) only if the faster ones are full.
        # No classes: no host to go to (every other one in maintenance or unreachable).
        fastest = min((ledger.guess(vm, source, fqdn).seconds for fqdn in classes), default=math.inf)
        slowest = fastest * (1 + SLOWER)
        for other, _, fqdn, i in list(by_fullness):
            if other != domain:
                yield from deferred
                deferred, domain = [], other
            guess = ledger.guess(vm, source, fqdn)
            if guess.seconds > slowest or load.after(fqdn, guess) > budget:
                deferred.append(targets[i])
            else:
                yield targets[i]
        yield from deferred

    placed: list[Placed] = []
    left: list[Left] = []
    for vm in sorted(vms, key=lambda v: (-v.memory_bytes, v.name, v.id)):
        if vm.id not in moving_ids:
            left.append(Left(vm, source, stopped_reason(vm)))
            continue

        choice, reasons = choose(vm, source, ranked(vm), ledger)
        if choice is None:
            left.append(Left(vm, source, left_reason(vm, source, targets, reasons)))
            continue
        fqdn = choice.destination.fqdn
        by_fullness.remove(entry[fqdn])
        ledger.move(vm, source, choice.destination)
        load.add(fqdn, ledger.cost(choice.spec))
        entry[fqdn] = (entry[fqdn][0], ledger.used[fqdn] / total[fqdn], fqdn, entry[fqdn][3])
        bisect.insort(by_fullness, entry[fqdn])
        placed.append(choice)
    return placed, left


def place_rebalance(
    hosts: Sequence[HostFacts],
    vms: Mapping[str, Sequence[VmFacts]],
    options: PlanOptions,
    pick: str = PICK_SHORT_LAST,
) -> list[Placed]:
    """Moves that bring every host's memory use near its group's average, few and large first.

    HA VMs can only move inside their cluster, so each cluster is balanced first with all its VMs;
    then every host together, with the VMs free to leave their host's cluster (not HA). A VM moves
    at most once, and a move never counts on memory another move frees (the room of a host only
    shrinks), so the moves may run in any order without a host running short on the way.
    pick: which VM a sender gives next, PICK_SHORT_LAST (the largest until one VM is enough, then the
    smallest that is: the last move is short) or PICK_PACKED (VMs that fill the sender's slots in
    even lanes). Two other picks (closest to the excess, even rounds) and ranking receivers by speed
    gained under 2% beside these two and were removed (bench/RESULTS.md, issue 18).
    """
    up = [h for h in hosts if h.reachable and h.memory_total_bytes > 0]
    ledger = Ledger(up, vms, options)
    moved: set[str] = set()
    placed: list[Placed] = []
    clusters: dict[str, list[HostFacts]] = defaultdict(list)
    for h in up:
        if h.cluster:
            clusters[h.cluster].append(h)
    for cluster in sorted(clusters):
        placed += _balance(clusters[cluster], vms, ledger, moved, lambda vm: True, pick)
    placed += _balance(up, vms, ledger, moved, lambda vm: not vm.clustered, pick)
    return placed


def _balance(
    group: list[HostFacts],
    vms: Mapping[str, Sequence[VmFacts]],
    ledger: Ledger,
    moved: set[str],
    may_move: Callable[[VmFacts], bool],
    pick: str,
) -> list[Placed]:
    """Within group: hosts above average + tolerance send running VMs (in the order `pick` chooses)
    to hosts below average, never lifting a receiver above average + tolerance."""
    tolerance = ledger.options.tolerance
    capacity = sum(h.memory_total_bytes for h in group)
    target = sum(ledger.used[h.fqdn] for h in group) / capacity
    band = {h.fqdn: (target + tolerance) * h.memory_total_bytes for h in group}

    def excess(h: HostFacts) -> float:
        return ledger.used[h.fqdn] - target * h.memory_total_bytes

    senders = {h.fqdn: h for h in group if excess(h) > tolerance * h.memory_total_bytes}
    receivers = [h for h in group if h.fqdn not in senders and excess(h) < 0]
    placed: list[Placed] = []
    tried: set[str] = set()
    packed: dict[str, list[str]] = {}  # PICK_PACKED: each sender's VMs to send, chosen at its first turn
    while senders and receivers:
        source = max(senders.values(), key=lambda h: (excess(h) / h.memory_total_bytes, h.fqdn))
        over = excess(source)
        # Never more than the excess and the tolerance: the sender must not end up a receiver.
        most = over + tolerance * source.memory_total_bytes
        movable = [
            v
            for v in vms.get(source.fqdn, ())
            if v.running and v.id not in moved and v.id not in tried and v.memory_bytes <= most and may_move(v)
        ]
        if pick == PICK_PACKED and movable:
            if source.fqdn not in packed:
                need = over - tolerance * source.memory_total_bytes
                packed[source.fqdn] = _packed(movable, need, most, source, receivers, ledger)
            # The chosen VMs first, in their order; the others after them, closest to the excess first.
            rank = {vm_id: i for i, vm_id in enumerate(packed[source.fqdn])}
            movable.sort(key=lambda v: (rank.get(v.id, len(rank)), abs(over - v.memory_bytes), v.name, v.id))
        else:
            # The smallest VM whose move leaves the sender balanced (a sender's moves beyond its slots
            # queue behind the others, so its last one decides when it is done: make it short);
            # while none is enough, the largest (fewest moves).
            need = over - tolerance * source.memory_total_bytes
            movable.sort(key=lambda v: (v.memory_bytes < need, abs(v.memory_bytes - need), v.name, v.id))
        choice = None
        for vm in movable:
            tried.add(vm.id)
            fitting = [h for h in receivers if ledger.used[h.fqdn] + vm.memory_bytes <= band[h.fqdn]]
            fitting.sort(key=lambda h: (excess(h) / h.memory_total_bytes, h.fqdn))
            choice, _ = choose(vm, source, fitting, ledger)
            if choice is not None:
                break
        if choice is None or over - choice.vm.memory_bytes <= tolerance * source.memory_total_bytes:
            del senders[source.fqdn]  # balanced, or nothing more it can give
        if choice is not None:
            ledger.move(choice.vm, source, choice.destination)
            moved.add(choice.vm.id)
            placed.append(choice)
    return placed


def _packed(
    movable: list[VmFacts],
    need: float,
    most: float,
    source: HostFacts,
    receivers: Sequence[HostFacts],
    ledger: Ledger,
) -> list[str]:
    """VMs whose moves fill the sender's live slots evenly: at least `need` bytes, at most `most`.

    The sender is done when its busiest slot is, so its moves are chosen as L equal lanes (L its
    slots), each near the same seconds: largest first, each into the least busy lane it fits in
    without passing an equal share (first fit decreasing), the share raised step by step until the
    VMs chosen hold `need`. Five 64 GiB moves on four slots take two rounds; four of 64 GiB and four
    of 24 GiB take one round and a bit. Seconds are the move alone to the emptiest receiver."""
    lanes_n = max(1, source.live_limit)
    to = min(receivers, key=lambda h: (ledger.used[h.fqdn] / max(1, h.memory_total_bytes), h.fqdn)).fqdn
    seconds = {v.id: ledger.guess(v, source, to).seconds for v in movable}
    ordered = sorted(movable, key=lambda v: (-seconds[v.id], -v.memory_bytes, v.name, v.id))
    per_byte = sum(seconds.values()) / max(1.0, sum(v.memory_bytes for v in movable))
    share = need * per_byte / lanes_n
    for _ in range(40):
        lanes = [0.0] * lanes_n
        chosen, total = [], 0.0
        for v in ordered:
            if total >= need:
                break
            lane = min(range(lanes_n), key=lambda i: (lanes[i], i))
            if lanes[lane] + seconds[v.id] <= share and total + v.memory_bytes <= most:
                lanes[lane] += seconds[v.id]
                chosen.append(v)
                total += v.memory_bytes
        if total >= need:
            return [v.id for v in chosen]
        share *= 1.05
    return []
