"""Plans for many moves against the inventory: facts in, the pure planner's plan out.

Evacuating a host (maintenance), a selection of VMs (to one host or placed by the console) and
Move back all build the same snapshot of the fabric and call migrations_ui.planning.planner; the jobs are
then created in the plan's order with one priority (migrations_ui.jobs.batches), so the admission (FIFO
per slot) starts them as the plan's timeline expects.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence

from fabric.driver import fabric_seconds_per_second
from fabric.models import Host, VirtualMachine
from migrations_ui.models import JobState, MigrationJob, TransferType
from migrations_ui.planning.estimates import MAX_SAMPLES, HostRates, PairRate, PastMove, measured_link
from migrations_ui.planning.placement import PlanOptions, place_evacuation
from migrations_ui.planning.planner import LeftVm, Plan, plan_evacuation, plan_moves
from migrations_ui.planning.report import Chosen, Report, build_report, plan_with_choices
from migrations_ui.preflight.assess import (
    host_facts,
    hosts_for_preflight,
    share_facts,
    slot_usage,
    vm_facts,
    vm_for_preflight,
)
from migrations_ui.preflight.facts import HostFacts
from utilities.texts import Msg


class Snapshot:
    """The fabric as the planner sees it now: host facts by pk, VM facts by host, the plan options."""

    def __init__(self, *, move_stopped: bool = False):
        usage = slot_usage()
        self.hosts = list(hosts_for_preflight())
        self.facts = {h.pk: host_facts(h, usage) for h in self.hosts}
        self.by_host = defaultdict(list)
        self.vm_facts = {}
        dirty = {}
        for vm in vm_for_preflight().filter(removed=False):
            facts = vm_facts(vm)
            self.by_host[vm.host_id].append(facts)
            self.vm_facts[vm.pk] = facts
            dirty[str(vm.guid)] = vm.dirty_rate_mbps
        self.options = PlanOptions(
            stopped="move" if move_stopped else "leave",
            rates={h.fqdn: HostRates(nic_gbps=h.nic_gbps) for h in self.hosts},
            dirty_mbps=dirty,
            shares=share_facts(),
            measured=measured_links(),
        )

    def resident(self, but: Host | None = None) -> dict:
        return {self.facts[h.pk].fqdn: self.by_host[h.pk] for h in self.hosts if but is None or h.pk != but.pk}

    def candidates(self, but_pk: int, facts: dict[int, HostFacts] | None = None) -> list[HostFacts]:
        """The hosts the planner may choose: reachable, not `but_pk`, and not in maintenance (a host
        being emptied, or waiting for its own VMs to come back, takes no others)."""
        facts = facts or self.facts
        return [facts[h.pk] for h in self.hosts if h.pk != but_pk and h.reachable and not h.maintenance]


# The newest succeeded live moves read for the measured links (every pair's MAX_SAMPLES among them):
# a bound on what one plan reads, however long the console has run.
PAST_MOVES_READ = 5000


def past_moves(limit: int = PAST_MOVES_READ) -> dict[tuple[str, str], list[PastMove]]:
    """The newest succeeded live moves of each pair of hosts (source FQDN, destination FQDN), newest
    first, at most MAX_SAMPLES a pair: what the host sent and how long Move-VM ran, in the fabric's
    seconds (a simulated fabric runs faster than the wall clock)."""
    per_second = fabric_seconds_per_second()
    rows = (
        MigrationJob.objects.filter(
            state=JobState.SUCCEEDED,
            kind=TransferType.LIVE,
            move_requested_at__isnull=False,
            slots_released_at__isnull=False,
            bytes_sent__gt=0,
        )
        .order_by("-finished_at", "-pk")
        .values_list("source__fqdn", "destination__fqdn", "bytes_sent", "move_requested_at", "slots_released_at")[
            :limit
        ]
    )
    by_pair: dict[tuple[str, str], list[PastMove]] = defaultdict(list)
    for source, destination, sent, requested, released in rows:
        moves = by_pair[(source, destination)]
        if len(moves) < MAX_SAMPLES:
            moves.append(PastMove(float(sent), (released - requested).total_seconds() * per_second))
    return dict(by_pair)


def measured_links() -> dict[tuple[str, str], PairRate]:
    """The pairs of hosts whose past moves measured their link (estimates.MIN_SAMPLES or more)."""
    links = {pair: measured_link(moves) for pair, moves in past_moves().items()}
    return {pair: rate for pair, rate in links.items() if rate is not None}


def evacuation_plan(host: Host, *, move_stopped: bool = False) -> Plan:
    fabric = Snapshot(move_stopped=move_stopped)
    return plan_evacuation(
        fabric.facts[host.pk],
        fabric.by_host[host.pk],
        fabric.candidates(host.pk),
        fabric.options,
        resident=fabric.resident(but=host),
    )


def evacuation(
    host: Host, *, move_stopped: bool = False, choices: dict[str, str] | None = None
) -> tuple[Report, Chosen]:
    """The host's pre-maintenance report and the evacuation its choices make: choices (VM id or
    name -> choice) over each reported VM's default (kept from its last maintenance, else the safe
    one). The caller refuses what report.refused(report.by_id(choices)) finds before starting it."""
    fabric = Snapshot(move_stopped=move_stopped)
    source, vms, candidates = fabric.facts[host.pk], fabric.by_host[host.pk], fabric.candidates(host.pk)
    resident = fabric.resident(but=host)
    kept = VirtualMachine.objects.filter(host=host, removed=False).exclude(maintenance_choice="")
    defaults = {str(guid): choice for guid, choice in kept.values_list("guid", "maintenance_choice")}
    report = build_report(
        source, vms, candidates, fabric.options, resident=resident, kept=defaults, move_stopped=move_stopped
    )
    chosen = report.by_id(choices or {})
    # A VM nobody chose for stays for the live plan's reason (no host has room...), not "as chosen".
    unchosen = {v.vm_id: v.reason for v in report.live.left if v.vm_id not in chosen}
    made = {**report.defaults(), **chosen}
    return report, plan_with_choices(source, vms, candidates, fabric.options, made, resident=resident, reasons=unchosen)


def drain_plan(host: Host) -> tuple[Plan, dict[str, str], int]:
    """The console's estimate of the cluster draining this node: only its clustered roles move (a
    drain moves cluster roles; the other VMs stay), only to the other nodes of its cluster, within
    the cluster's limits (HostFacts.live_limit: MaximumParallelMigrations where the cluster has it).
    The cluster places the roles itself: the estimate's destinations are the planner's, its time the
    model's. Returns the plan, every role's VM (id -> name) and how many VMs are not roles."""
    fabric = Snapshot()
    node = fabric.facts[host.pk]
    roles = [v for v in fabric.by_host[host.pk] if v.clustered]
    others = [c for c in fabric.candidates(host.pk) if node.cluster and c.cluster == node.cluster]
    plan = plan_evacuation(node, roles, others, fabric.options, resident=fabric.resident(but=host))
    return plan, {v.id: v.name for v in roles}, len(fabric.by_host[host.pk]) - len(roles)


def selection_plan(vms: Sequence[VirtualMachine], destination: Host | None, *, move_stopped: bool = False) -> Plan:
    """Move a selection: every VM to `destination`, or (None) each to the best other host, placed as
    an evacuation of its host would place it (memory with headroom, HA VMs in their cluster...)."""
    fabric = Snapshot(move_stopped=move_stopped)
    left = []
    if destination is not None:
        moves = []
        for vm in vms:
            if vm.host_id == destination.pk:
                reason = Msg("Already on %(host)s.", host=destination.name)
                left.append(LeftVm(vm.name, str(vm.guid), vm.host.fqdn, reason))
            elif destination.maintenance:
                reason = Msg(
                    "%(host)s is in maintenance: end its maintenance first, or choose another host.",
                    host=destination.name,
                )
                left.append(LeftVm(vm.name, str(vm.guid), vm.host.fqdn, reason))
            else:
                moves.append((fabric.vm_facts[vm.pk], fabric.facts[vm.host_id], fabric.facts[destination.pk]))
    else:
        moves, left = _placed(fabric, vms)
    plan = plan_moves(moves, fabric.options, resident=fabric.resident())
    return dataclasses.replace(plan, left=plan.left + tuple(left))


def _placed(fabric: Snapshot, vms: Sequence[VirtualMachine]) -> tuple[list, list[LeftVm]]:
    """Destinations per source host; memory a source's VMs take is gone for the next source's."""
    by_source = defaultdict(list)
    for vm in vms:
        by_source[vm.host_id].append(fabric.vm_facts[vm.pk])
    facts = dict(fabric.facts)
    moves, left = [], []
    for source_pk, selected in sorted(by_source.items()):
        candidates = fabric.candidates(source_pk, facts)
        placed, unplaced = place_evacuation(facts[source_pk], selected, candidates, fabric.resident(), fabric.options)
        for p in placed:
            moves.append((p.vm, fabric.facts[source_pk], fabric.facts[_pk(fabric, p.destination.fqdn)]))
            pk = _pk(fabric, p.destination.fqdn)
            facts[pk] = dataclasses.replace(
                facts[pk], memory_available_bytes=facts[pk].memory_available_bytes - p.vm.memory_bytes
            )
        left += [LeftVm(u.vm.name, u.vm.id, u.source.fqdn, u.reason) for u in unplaced]
    return moves, left


def _pk(fabric: Snapshot, fqdn: str) -> int:
    return next(h.pk for h in fabric.hosts if h.fqdn == fqdn)


def move_back_plan(jobs: Sequence[MigrationJob], *, move_stopped: bool = False) -> Plan:
    """Each VM the jobs moved back to the host it came from (those still where the job left them)."""
    fabric = Snapshot(move_stopped=move_stopped)
    moves, left = [], []
    for job in jobs:
        vm = job.vm
        if vm.removed or vm.pk not in fabric.vm_facts:
            reason = Msg("The VM is no longer in the inventory.")
            left.append(LeftVm(vm.name, str(vm.guid), job.destination.fqdn, reason))
        elif vm.host_id == job.source_id:
            reason = Msg("Already back on %(host)s.", host=job.source.name)
            left.append(LeftVm(vm.name, str(vm.guid), job.source.fqdn, reason))
        else:
            moves.append((fabric.vm_facts[vm.pk], fabric.facts[vm.host_id], fabric.facts[job.source_id]))
    plan = plan_moves(moves, fabric.options, resident=fabric.resident())
    return dataclasses.replace(plan, left=plan.left + tuple(left))
