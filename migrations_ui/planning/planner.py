"""Plans for many moves at once (pure): evacuate a host, rebalance a set of hosts.

A plan places each VM (migrations_ui.planning.placement: pre-flight per pair, memory with headroom, HA VMs
in their cluster, guest-cluster nodes apart, Live first) and queues the moves within every host's
slots in the shorter of two orders (longest first; the same with the file copies spread through it)
improved by a few passes, each timed by the same fluid model the simulated fabric runs
(migrations_ui.planning.ordering.best_order). Those two hold the tail of plans that copy files
(bench/RESULTS.md, issue 18, 2026-12-06); other orders and a general concurrency cap gained under 2%.
One cap stays (issue 20): where a host's link, not its limit, is the bottleneck (a stream that fills
the NIC alone, a 1 GbE link), the plan runs no more moves there at once than fill the link, when the
simulated timeline shows that ends no later, and says so (Plan.link_caps).
Where two moves would share a disk or link at the start, the plan may hold one back until a point of
the other's span (ordering.hold_back: the rebalance and evacuation tails of bench/planner.py).
Its moves come in the order they start: queued as jobs in that order (a held one with its time), the
console's admission starts them as planned.

No ORM, no I/O: the caller builds the facts (migrations_ui.preflight.assess does it for single moves) and
the hosts' rates, and runs the plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from migrations_ui.planning.estimates import MIN_SAMPLES, Estimate, MoveSpec
from migrations_ui.planning.ordering import (
    Flow,
    Timeline,
    alone_estimates,
    best_order,
    hold_back,
    improve,
    link_fill,
    lower_bound,
)
from migrations_ui.planning.placement import (
    PICK_PACKED,
    PICK_SHORT_LAST,
    STOPPED_LEAVE,
    STOPPED_MOVE,
    Ledger,
    Left,
    Placed,
    PlanOptions,
    choose,
    left_reason,
    place_evacuation,
    place_rebalance,
    stopped_reason,
)
from migrations_ui.preflight.facts import HostFacts, Kind, VmFacts
from migrations_ui.preflight.rules import BLOCK, INFO, Finding
from migrations_ui.slots import LIVE, STORAGE, Slot
from utilities.texts import Msg, without_period

__all__ = [
    "PICK_PACKED",
    "PICK_SHORT_LAST",
    "STOPPED_LEAVE",
    "STOPPED_MOVE",
    "LeftVm",
    "LinkCap",
    "Plan",
    "PlanOptions",
    "PlannedMove",
    "plan_evacuation",
    "plan_moves",
    "plan_rebalance",
    "slot_limits",
]


@dataclass(frozen=True)
class PlannedMove:
    """One move of a plan: where the VM goes, how, and when it is expected to start and end."""

    vm: str
    vm_id: str
    source: str  # FQDN (what "Move back" returns the VM to)
    destination: str  # FQDN
    destination_name: str
    transfer_type: str
    start_s: float
    end_s: float
    alone: Estimate  # the move with its hosts to itself: phases, bytes, blackout
    spec: MoveSpec  # what the timing model was given: bytes, dirty rate, performance option
    findings: tuple[Finding, ...] = ()  # pre-flight's warnings and notes for this destination
    # Seconds after the plan starts before which the move is held out of the queue (ordering.hold_back).
    not_before_s: float = 0.0

    @property
    def estimate_basis(self) -> str:
        """What the move's link speed comes from: "measured" (its pair's past moves), "inventory"
        (the hosts' NIC speed), "" for a Quick move (it copies through the cluster's storage)."""
        if self.transfer_type == Kind.QUICK:
            return ""
        return "measured" if self.spec.link_samples else "inventory"

    def as_json(self) -> dict:
        row = {
            "vm": self.vm,
            "destination": self.destination,
            "transfer_type": self.transfer_type,
            "start_s": round(self.start_s, 1),
            "end_s": round(self.end_s, 1),
        }
        if self.not_before_s:  # only a held move has it: every other plan's JSON is as it always was
            row["not_before_s"] = round(self.not_before_s, 1)
        return row


@dataclass(frozen=True)
class LeftVm:
    """A VM the plan does not move, and why."""

    vm: str
    vm_id: str
    source: str
    reason: str

    def as_json(self) -> dict:
        return {"vm": self.vm, "reason": self.reason}


@dataclass(frozen=True)
class LinkCap:
    """A host whose link, not its live-migration limit, bounds how many of its moves at once help:
    the plan runs at most `cap` of them at a time there, and ends no later than with `limit`."""

    host: str  # FQDN
    name: str
    limit: int  # the host's live-migration limit
    cap: int
    nic_gbps: float

    @property
    def note(self) -> Msg:
        gbps = int(self.nic_gbps) if self.nic_gbps == int(self.nic_gbps) else self.nic_gbps
        values = {"host": self.name, "gbps": gbps, "cap": self.cap, "limit": self.limit}
        if self.cap == 1:
            return Msg(
                "%(host)s's %(gbps)s Gbit/s link is the bottleneck: one move at a time ends no later "
                "than %(limit)s at once; a higher live-migration limit would not help.",
                **values,
            )
        return Msg(
            "%(host)s's %(gbps)s Gbit/s link is the bottleneck: %(cap)s moves at a time end no later "
            "than %(limit)s at once; a higher live-migration limit would not help.",
            **values,
        )

    def as_json(self) -> dict:
        return {"host": self.host, "limit": self.limit, "cap": self.cap, "nic_gbps": self.nic_gbps}


@dataclass(frozen=True)
class Plan:
    """Moves in the order they start, the VMs left, the estimated makespan and its lower bound."""

    host: str | None  # the evacuated host's FQDN; None for a rebalance
    moves: tuple[PlannedMove, ...]
    left: tuple[LeftVm, ...]
    makespan_s: float
    lower_bound_s: float
    # The hosts' slots the plan runs within: (host FQDN, "live"|"storage") -> limit.
    limits: Mapping[Slot, int]
    # Hosts where the plan runs fewer moves at once than their live limit: the link is the bottleneck.
    link_caps: tuple[LinkCap, ...] = ()

    @property
    def run_limits(self) -> dict[Slot, int]:
        """The slots the plan's timeline keeps: the hosts' limits, a capped link's live slots at its cap."""
        return {**self.limits, **{(c.host, LIVE): c.cap for c in self.link_caps}}

    @property
    def measured_count(self) -> int:
        """Moves timed with their pair's measured link (the rest with the inventory's NIC speed)."""
        return sum(1 for m in self.moves if m.estimate_basis == "measured")

    @property
    def min_samples(self) -> int:
        """Past live moves a pair needs before its measured link times its moves."""
        return MIN_SAMPLES

    @property
    def shared_rules(self) -> frozenset[str]:
        """The rules every move of the plan is flagged by (a cluster's limit, say): a page says them once."""
        if len(self.moves) < 2:
            return frozenset()
        return frozenset.intersection(*(frozenset(f.rule for f in m.findings) for m in self.moves))

    @property
    def shared_findings(self) -> tuple:
        """The findings of the shared rules, each text once, in the order of the moves."""
        rules = self.shared_rules
        return tuple(dict.fromkeys(f for m in self.moves for f in m.findings if f.rule in rules))

    def as_json(self) -> dict:
        """The evacuation plan JSON of architecture.md (stable interface)."""
        return {
            "host": self.host,
            "moves": [m.as_json() for m in self.moves],
            "left": [v.as_json() for v in self.left],
            "makespan_s": round(self.makespan_s, 1),
            "lower_bound_s": round(self.lower_bound_s, 1),
            "link_caps": [c.as_json() for c in self.link_caps],
        }


def slot_limits(hosts: Iterable[HostFacts]) -> dict[Slot, int]:
    """Each host's live and storage migration limits (a cluster node's live limit is the cluster's)."""
    limits: dict[Slot, int] = {}
    for h in hosts:
        limits[(h.fqdn, LIVE)] = h.live_limit
        limits[(h.fqdn, STORAGE)] = h.max_storage
    return limits


def plan_evacuation(
    host: HostFacts,
    vms: Sequence[VmFacts],
    candidates: Sequence[HostFacts],
    options: PlanOptions | None = None,
    *,
    resident: Mapping[str, Sequence[VmFacts]] | None = None,
) -> Plan:
    """Move every VM off `host` (maintenance mode): destinations among `candidates`, then the order.

    vms: the VMs on host. candidates: the hosts they may go to (host itself is skipped).
    resident: the VMs already on each candidate, by FQDN (only their shared VHDX matter: a guest
    cluster's nodes never end on one host). Running migrations are not in the plan: they hold slots
    the plan counts as free, so a busy fabric starts it later than estimated.
    """
    options = options or PlanOptions()
    placed, left = place_evacuation(host, vms, candidates, resident or {}, options)
    return _plan(host.fqdn, placed, left, [host, *candidates], options)


def _seen(placed: list[Placed], seen: set[tuple]) -> bool:
    key = tuple((p.vm.id, p.destination.fqdn) for p in placed)
    found = key in seen
    seen.add(key)
    return found


def plan_rebalance(
    hosts: Sequence[HostFacts],
    vms: Mapping[str, Sequence[VmFacts]],
    options: PlanOptions | None = None,
    *,
    picks: Sequence[str] = (PICK_SHORT_LAST, PICK_PACKED),
) -> Plan:
    """Even out memory use across `hosts` (VMs by host FQDN), with as few and as short moves as it can.

    Every host ends within average use +- options.tolerance where the rules and memory allow it;
    only running VMs move (they are what holds memory). Of the ways placement may choose the VMs to
    move (picks: placement.PICK_*), the plan that ends sooner.
    """
    options = options or PlanOptions()
    # Ways of choosing which VMs leave a host (a short last move, even lanes on its slots): both keep
    # every host in the band; the plan ending sooner wins.
    placements = [place_rebalance(hosts, vms, options, pick) for pick in picks]
    seen: set[tuple] = set()
    unique = [placed for placed in placements if not _seen(placed, seen)]
    if len(unique) > 1:
        # Compared by their orders alone; only the one that wins gets the improvement passes (on a
        # 1,000-VM rebalance they cost more than the orders: bench/planner.py's planning time).
        plans = [_plan(None, placed, [], hosts, options, passes=False) for placed in unique]
        best = min(range(len(plans)), key=lambda i: (round(plans[i].makespan_s, 6), len(plans[i].moves)))
        unique = [unique[best]]
    return _plan(None, unique[0], [], hosts, options)


def plan_moves(
    moves: Sequence[tuple[VmFacts, HostFacts, HostFacts]],
    options: PlanOptions | None = None,
    *,
    resident: Mapping[str, Sequence[VmFacts]] | None = None,
    host: str | None = None,
) -> Plan:
    """Order moves whose destinations are already chosen: (VM, where it is, where it goes).

    For "Move back" after maintenance (each VM to the host it came from) and for a selection sent to
    one host. Each pair is pre-flighted, memory is counted with headroom across the moves and guest
    clusters kept apart (resident: the VMs on the hosts now, by FQDN); a pair that cannot go is left
    with the reason. An HA VM may leave its cluster here: the operator chose the host.
    """
    options = options or PlanOptions()
    hosts = list({h.fqdn: h for _, source, destination in moves for h in (source, destination)}.values())
    ledger = Ledger(hosts, {**(resident or {})}, options)
    placed, left = [], []
    for vm, source, destination in moves:
        if not vm.running and options.stopped != STOPPED_MOVE:
            left.append(Left(vm, source, stopped_reason(vm)))
            continue
        choice, reasons = choose(vm, source, [destination], ledger, ha_in_cluster=False)
        if choice is None:
            left.append(Left(vm, source, left_reason(vm, source, [destination], reasons)))
            continue
        ledger.move(vm, source, destination)
        placed.append(choice)
    return _plan(host, placed, left, hosts, options)


def _plan(
    host: str | None,
    placed: list[Placed],
    left: list[Left],
    hosts: Sequence[HostFacts],
    o: PlanOptions,
    *,
    passes: bool = True,
) -> Plan:
    limits = slot_limits(hosts)
    specs = [p.spec for p in placed]
    rates = {h.fqdn: o.rate(h.fqdn) for h in hosts}
    alone = alone_estimates(specs, rates, o.figures)
    # The improvement passes stop where no schedule of these moves can end sooner; a bound of inf
    # stops them before the first (passes=False: a rebalance's picks compared by their orders).
    strong = lower_bound(specs, rates, limits, o.figures, strong=True) if specs and passes else math.inf
    timeline, caps, holds = _cap_links(specs, alone, rates, limits, o.figures, strong)
    moves = tuple(
        PlannedMove(
            vm=placed[j].vm.name,
            vm_id=placed[j].vm.id,
            source=placed[j].source.fqdn,
            destination=placed[j].destination.fqdn,
            destination_name=placed[j].destination.name,
            transfer_type=specs[j].kind,
            start_s=timeline.start_s[j],
            end_s=timeline.end_s[j],
            alone=alone[j],
            spec=specs[j],
            findings=tuple(f for f in placed[j].assessment.findings if f.severity != BLOCK)
            + tuple(_passed_over(host, why) for host, why in placed[j].passed_over),
            not_before_s=holds.get(j, 0.0),
        )
        for j in timeline.order
    )
    lefts = tuple(LeftVm(v.vm.name, v.vm.id, v.source.fqdn, v.reason) for v in left)
    bound = lower_bound(specs, rates, limits, o.figures) if specs else 0.0
    names = {h.fqdn: h.name for h in hosts}
    link_caps = tuple(
        LinkCap(h, names.get(h, h), limits[(h, LIVE)], cap, rates[h].nic_gbps) for h, cap in sorted(caps.items())
    )
    return Plan(host, moves, lefts, timeline.makespan_s, bound, limits, link_caps)


def _cap_links(specs, alone, rates, limits, figures, bound) -> tuple[Timeline, dict[str, int], dict[int, float]]:
    """The plan's timeline (ordering.best_order, then ordering.improve), with each host's live slots
    capped where its link is the bottleneck.

    A host's cap is the moves that fill its link (ordering.link_fill), or one more: a move preparing
    or resuming leaves the link idle, and the next one's copy may use it meanwhile. It is kept when
    the capped timeline, simulated with the NIC shared as the fabric shares it, ends no later than the
    uncapped one: then a higher limit would not help, and the moves each send less. Then one cap for
    all those hosts, from 1 up, is kept where it ends sooner still: a copy beside capped memory
    streams gets only an equal share of the NIC, less than its disk could send, so fewer moves at
    once can end sooner than the link's fill says (bench/RESULTS.md, issue 18, 2026-12-06). The
    improvement passes run once, within the limits chosen (they cost more than the two orders).
    """
    flow = Flow(specs, rates, limits, figures)
    timeline, order = best_order(flow, alone, specs)
    kept: dict[str, int] = {}
    fill = link_fill(specs, rates, figures)
    # The link's fill, else one more, is kept when it ends no later (each move then sends less); a
    # lower cap for all those hosts only when it ends sooner than what is kept by then.
    tried = [({h: n + extra for h, n in fill.items()}, True) for extra in (0, 1)]
    top = max((limits.get((h, LIVE), 0) for h in fill), default=0)
    tried += [(dict.fromkeys(fill, c), False) for c in range(1, top)]
    for caps, fills in tried:
        caps = {h: n for h, n in caps.items() if n < limits.get((h, LIVE), 0)}
        if not caps or caps == kept or (fills and kept):
            continue
        slack = 1e-6 if fills else -1e-6
        capped_flow = Flow(specs, rates, {**limits, **{(h, LIVE): n for h, n in caps.items()}}, figures)
        capped, capped_order = best_order(capped_flow, alone, specs)
        if capped.makespan_s <= timeline.makespan_s + slack:
            flow, timeline, order, kept = capped_flow, capped, capped_order, caps
    timeline, order = improve(flow, order, timeline, bound)
    timeline, holds = hold_back(flow, order, timeline, bound)
    return timeline, kept, holds


def _passed_over(host: str, why: str) -> Finding:
    return Finding(
        "placement-passed-over", INFO, Msg("Not %(host)s: %(reason)s.", host=host, reason=without_period(why))
    )
