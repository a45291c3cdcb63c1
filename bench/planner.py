"""The evacuation and rebalance planner on generated fabrics: makespan against the lower bound.

Instances: 4-64 hosts, 16-1,000 VMs of 1-64 GB (half the hosts in 4-node clusters with HA VMs on
CSV, the rest standalone on SMB shares, a few with local disks only, so Live VSM and guest
clusters occur), every host with 1, 2 or 4 live and storage slots. For each plan: makespan / LB
(LB = max(longest move alone, every host's work per slot, every host's bytes / NIC rate)), the
same moves one at a time (VMM's way: one selection, one migration) against it, the makespan against
a plain baseline (one placement, longest first, the same timing model), and a sweep of the
timeline proving no host ever runs more migrations than its slots allow. Then the same figures by
class of plan, against the issue's LB and a stronger bound (storage rates, prepare phase, slot
packing, the simulated NIC shared equally) that no schedule beats either, with why each class stays
where it is; the targets; and the planning time for 1,000 VMs on 64 hosts.

Run: .venv/bin/python bench/planner.py [--seeds 6] [--quick] [--fabric mixed|uniform|both]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from migrations_ui.planning.estimates import HostRates
from migrations_ui.planning.ordering import alone_estimates, lower_bound, simulate, slot_overuse
from migrations_ui.planning.placement import place_evacuation, place_rebalance
from migrations_ui.planning.planner import Plan, PlanOptions, plan_evacuation, plan_rebalance, slot_limits
from migrations_ui.preflight.facts import DiskFacts, HostFacts, VmFacts

GIB = 1024**3
DOMAIN = "bench.test"
SHARES = (f"\\\\fs01.{DOMAIN}\\vms", f"\\\\fs02.{DOMAIN}\\vms")
CSV = "C:\\ClusterStorage\\Volume1"
MEMORY_GIB = (1, 2, 2, 4, 4, 4, 8, 8, 8, 12, 16, 16, 24, 32, 48, 64)
SIZES = ((4, 16), (4, 250), (8, 64), (8, 1000), (16, 160), (16, 1000), (32, 400), (64, 1000))
HOST_RESERVE = 8 * GIB


class Fabric:
    """Hosts, VMs by host, and the rates the inventory would give the planner."""

    def __init__(
        self, seed: int, hosts: int, vms: int, slots: int, *, skew: float = 0.0, clusters: bool = True, uniform=False
    ):
        rng = random.Random(seed)
        self.uniform = uniform  # shared storage, compression, 10 GbE, running VMs only: the common fabric
        clustered = hosts // 2 // 4 * 4 if clusters else 0
        # skew > 0: some hosts hold far more than others (what a rebalance is for).
        weights = [rng.lognormvariate(0, skew) for _ in range(hosts)] if skew else [1.0] * hosts
        plans: list[list[tuple[str, int]]] = [[] for _ in range(hosts)]
        for i in range(vms):
            plans[rng.choices(range(hosts), weights)[0]].append((f"vm{i:04d}", rng.choice(MEMORY_GIB)))
        need = max(sum(m for _, m in p) for p in plans) * GIB
        self.hosts: list[HostFacts] = []
        self.vms: dict[str, list[VmFacts]] = {}
        self.rates: dict[str, HostRates] = {}
        self.dirty: dict[str, float] = {}
        for h in range(hosts):
            fqdn, cluster = f"hv{h:03d}.{DOMAIN}", None
            if h < clustered:
                cluster = f"cl{h // 4:02d}.{DOMAIN}"
            local_only = cluster is None and rng.random() < 0.15 and not uniform
            total = max(256 * GIB, int(need * 1.3) // (64 * GIB) * 64 * GIB + 64 * GIB) if skew else 0
            total = total or max(256 * GIB, (sum(m for _, m in plans[h]) * GIB * 2 // (64 * GIB) + 1) * 64 * GIB)
            used = sum(m for _, m in plans[h]) * GIB
            host = HostFacts(
                fqdn=fqdn,
                name=f"hv{h:03d}",
                cluster=cluster,
                cluster_name=(cluster or "").split(".")[0].upper(),
                cluster_max_parallel=slots if cluster else None,
                supported_config_versions=("9.0", "10.0"),
                memory_total_bytes=total,
                memory_available_bytes=total - HOST_RESERVE - used,
                processor_family="Xeon",
                max_live=slots,
                max_storage=slots,
                performance_option="compression" if uniform else rng.choice(("compression",) * 6 + ("tcpip", "smb")),
                migration_networks=("10.0.0.0/24",),
                virtual_switches=("vSwitch-Prod",),
                shares=() if local_only else SHARES,
                vm_path="D:\\Hyper-V" if local_only else SHARES[h % 2],
            )
            self.hosts.append(host)
            nic = 10.0 if uniform else rng.choice((10.0, 10.0, 10.0, 25.0))
            self.rates[fqdn] = HostRates(nic, rng.choice((500.0, 800.0, 1500.0)))
            self.vms[fqdn] = [self._vm(rng, name, mem, host, local_only) for name, mem in plans[h]]
        self._guest_clusters(rng)

    def _vm(self, rng: random.Random, name: str, memory_gib: int, host: HostFacts, local: bool) -> VmFacts:
        folder = (
            f"{CSV}\\{name}" if host.cluster else ("D:\\Hyper-V" if local else SHARES[rng.randrange(2)]) + "\\" + name
        )
        vm = VmFacts(
            id=f"id-{name}",
            name=name,
            state="running" if self.uniform else rng.choice(("running",) * 18 + ("off", "saved")),
            memory_bytes=memory_gib * GIB,
            config_version="10.0",
            config_path=folder,
            clustered=host.cluster is not None,
            switch_names=("vSwitch-Prod",),
            disks=(DiskFacts(f"{folder}\\{name}.vhdx", size_bytes=rng.randint(8, 60) * GIB),),
        )
        self.dirty[vm.id] = rng.choice((rng.uniform(2, 60),) * 4 + (rng.uniform(60, 250),))
        return vm

    def _guest_clusters(self, rng: random.Random) -> None:
        """A few pairs of running VMs on two standalone share hosts attach one shared VHDX."""
        standalone = [h for h in self.hosts if h.cluster is None and h.shares]
        for pair in range(len(standalone) // 4):
            a, b = rng.sample(standalone, 2)
            left = [v for v in self.vms[a.fqdn] if v.running]
            right = [v for v in self.vms[b.fqdn] if v.running]
            if not left or not right:
                continue
            disk = DiskFacts(f"{SHARES[0]}\\guest{pair}\\shared.vhdx", shared=True, size_bytes=100 * GIB)
            for on_host, vm in ((a.fqdn, left[0]), (b.fqdn, right[0])):
                i = self.vms[on_host].index(vm)
                self.vms[on_host][i] = VmFacts(**{**vm.__dict__, "disks": (*vm.disks, disk)})

    def options(self, stopped: str = "move") -> PlanOptions:
        return PlanOptions(rates=self.rates, dirty_mbps=self.dirty, stopped=stopped)

    def evacuate(self, index: int) -> Plan:
        host = self.hosts[index]
        return plan_evacuation(host, self.vms[host.fqdn], self.hosts, self.options(), resident=self.vms)

    def rebalance(self) -> Plan:
        return plan_rebalance(self.hosts, self.vms, self.options())


def baseline(fabric: Fabric, kind: str, index: int = 0) -> float:
    """The plain planner the real one must beat: one placement with the real constraints (placement's
    defaults: a rebalance picks PICK_SHORT_LAST), one longest-first order, timed by the same fluid
    model (ordering.simulate)."""
    options = fabric.options()
    if kind == "evacuation":
        host = fabric.hosts[index]
        placed, _ = place_evacuation(host, fabric.vms[host.fqdn], fabric.hosts, fabric.vms, options)
    else:
        placed = place_rebalance(fabric.hosts, fabric.vms, options)
    specs = [p.spec for p in placed]
    rates = {h.fqdn: options.rate(h.fqdn) for h in fabric.hosts}
    alone = alone_estimates(specs, rates, options.figures)
    longest = sorted(range(len(specs)), key=lambda j: (-alone[j].duration_s, j))
    return simulate(specs, longest, rates, slot_limits(fabric.hosts), options.figures).makespan_s


def check(plan: Plan) -> None:
    spans = []
    for m in plan.moves:
        spans.append((m.transfer_type, m.source, m.destination, m.start_s, m.end_s))
    over = slot_overuse(spans, plan.limits)
    if over:
        raise SystemExit(f"slot limit exceeded: {over[:3]}")
    if plan.lower_bound_s > plan.makespan_s * (1 + 1e-9):
        raise SystemExit(f"lower bound {plan.lower_bound_s} above makespan {plan.makespan_s}")


def serial(plan: Plan) -> float:
    """VMM's way: one migration after the other, each with the hosts to itself."""
    return sum(m.alone.duration_s for m in plan.moves)


def strong_bound(plan: Plan, fabric: Fabric) -> float:
    """A bound no schedule beats either, closer to the optimum: ordering.lower_bound strong=True (the
    prepare phase before any byte, every host's file bytes / its storage rate, slot packing) and the
    simulated fabric's way of sharing a host's NIC and disk (shared_nic_bound)."""
    limits = slot_limits(fabric.hosts)
    ordering = lower_bound([m.spec for m in plan.moves], fabric.rates, limits, strong=True)
    return max(ordering, shared_nic_bound(plan.moves, fabric.rates, limits))


def shared_nic_bound(moves, rates: dict[str, HostRates], limits) -> float:
    """A bound that knows how the simulated fabric shares a host: its NIC equally among the moves on
    the network (a file copy next to a memory stream gets half the link, whatever the stream uses),
    its disk among the copies. On each host, moves spend their memory phases (their alone seconds, at
    most one a second each, less where the NIC's share is below the slowest stream's rate alone),
    their file bytes, and prepare and resume, in configurations of s copies
    and m memory streams (s + m at most its live slots, s at most its storage slots) whose disk
    throughput is min(disk, s * NIC / (s + m)). The least total time of such a mix is a linear
    program; any feasible point of its dual is a bound (the simplex method finds the best, _dual_best).
    No more copies run at once than the host has copying moves, each no faster than alone, and
    together no faster than the disks of the hosts at their other ends (each disk is shared by the
    copies on it). Two windows of every schedule are constraints of the program too: the first
    prepare phase, when nothing copies or streams, and after the host's last copy ends, the rest of
    its move, when nothing copies. moves: a plan's (spec, alone, source, destination); limits: the
    hosts' slots.
    tests/migrations_ui/planning/test_bounds.py checks it against every order of small plans.
    """
    best = 0.0
    hosts = {h for m in moves for h in (m.source, m.destination)}
    for host in hosts:
        mine = [m for m in moves if host in (m.source, m.destination)]
        files = sum(m.spec.storage_bytes for m in mine)
        if not files:
            continue
        streams = [m for m in mine if m.spec.kind in ("live", "live_vsm") and m.alone.memory_s > 0]
        memory = sum(m.alone.memory_s for m in streams)
        # The slowest stream's wire rate alone: a stream given less of the NIC than that goes slower.
        slowest = min(((m.alone.wire_bytes - m.spec.storage_bytes) / m.alone.memory_s for m in streams), default=0)
        other = sum(m.alone.duration_s - m.alone.memory_s - m.alone.storage_s for m in mine)
        rate = rates[host]
        # The hosts' own limits, not a plan's cap: the bound is for every schedule the hosts allow.
        live = max(1, limits.get((host, "live"), 1))
        storage = max(1, limits.get((host, "storage"), 1))
        # A copy goes no faster than alone (the slower disk of its two hosts, the link), and the
        # copies coming from (or going to) one other host share that host's disk: c copies at once
        # move at most the c fastest copies' rates alone, and at most the other hosts' disks together.
        copying = [m for m in mine if m.spec.storage_bytes]
        alone_rates = sorted((m.spec.storage_bytes / m.alone.storage_s for m in copying), reverse=True)
        others = {m.destination if m.source == host else m.source for m in copying}
        partners = sum(rates[h].disk_bytes_s for h in others)
        rows = [(0.0,) * 5]
        for c in range(min(live, len(copying)) + 1):  # copies: no more at once than there are
            for m in range(live + 1 - c):  # memory streams
                if c > storage:
                    continue
                fastest = sum(alone_rates[:c])
                disk = min(rate.disk_bytes_s, partners, fastest, c * rate.nic_bytes_s / (c + m)) if c else 0.0
                share = rate.nic_bytes_s / (c + m) if c + m else 0.0
                stream = min(1.0, share / slowest) if slowest > 0 else 1.0
                rows.append((disk, m * stream, float(live - c - m), float(c == 0), float(c == m == 0)))
        # Two windows every schedule has: the first prepare phase, when nothing copies or streams
        # (no move starts before 0, each prepares first), and after the host's last copy ends, the
        # rest of that move (its memory phase and resume, no shorter than alone), when nothing copies.
        prepare = min(m.alone.prepare_s for m in mine)
        tail = min(m.alone.memory_s + m.alone.resume_s for m in copying)
        best = max(best, _dual_best(rows[1:], (files, memory, other, prepare + tail, prepare)))
    return best


def _dual_best(rows: list[tuple[float, ...]], need: tuple[float, ...]) -> float:
    """max need . y over y >= 0 with row . y <= 1 for every row: the covering LP's dual, by the simplex
    method (Bland's rule). Every dual-feasible y bounds the LP from below, so the y found is scaled
    back into the feasible region before use: rounding can only weaken the bound, never break it."""
    k = len(need)
    # Columns scaled to one size first: disk rates are ~1e9, the others ~1.
    scale = [max((abs(r[c]) for r in rows), default=0.0) or 1.0 for c in range(k)]
    a = [
        [r[c] / scale[c] for c in range(k)] + [float(i == j) for j in range(len(rows))] + [1.0]
        for i, r in enumerate(rows)
    ]
    # A need no row serves (no configuration copies files, say) is left out: it would be unbounded.
    cost = [-need[c] / scale[c] if any(r[c] for r in rows) else 0.0 for c in range(k)] + [0.0] * len(rows)
    basis = [k + i for i in range(len(rows))]
    for _ in range(200):
        entering = next((c for c, v in enumerate(cost) if v < -1e-12), None)  # Bland: the first improving
        if entering is None:
            break
        ratios = [(a[i][-1] / a[i][entering], basis[i], i) for i in range(len(a)) if a[i][entering] > 1e-12]
        if not ratios:
            break  # unbounded: cannot happen while every need column has a row using it
        _, _, pivot = min(ratios)
        p = a[pivot][entering]
        a[pivot] = [v / p for v in a[pivot]]
        for i in range(len(a)):
            if i != pivot and a[i][entering]:
                f = a[i][entering]
                a[i] = [v - f * w for v, w in zip(a[i], a[pivot], strict=True)]
        f = cost[entering]
        cost = [v - f * w for v, w in zip(cost, a[pivot][:-1], strict=True)]
        basis[pivot] = entering
    y = [0.0] * k
    for i, b in enumerate(basis):
        if b < k:
            y[b] = max(0.0, a[i][-1]) / scale[b]
    most = max((sum(r[c] * y[c] for c in range(k)) for r in rows), default=0.0)
    return sum(n * v for n, v in zip(need, y, strict=True)) / max(1.0, most)


def geomean(values) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def pct(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (p95 of 20 values is the 19th)."""
    values = sorted(values)
    return values[max(0, math.ceil(q * len(values)) - 1)] if values else float("nan")


def plans_of(kind: str, hosts: int, vms: int, slots: int, seed: int, uniform=False) -> tuple[Fabric, list[tuple]]:
    """The plans of one generated fabric, each as (plan, the baseline's makespan, CPU s planning, CPU s
    of the baseline): a rebalance, or evacuations of four of its hosts."""
    skew = 1.0 if kind == "rebalance" else 0.0
    fabric = Fabric(seed * 1000 + hosts, hosts, vms, slots, skew=skew, uniform=uniform)
    out = []
    for index in range(0, hosts, max(1, hosts // 4)) if kind == "evacuation" else (0,):
        started = time.process_time()
        plan = fabric.evacuate(index) if kind == "evacuation" else fabric.rebalance()
        took = time.process_time() - started
        started = time.process_time()
        plain = baseline(fabric, kind, index)
        out.append((plan, plain, took, time.process_time() - started))
    return fabric, out


CLASSES = (
    ("live, capped streams", "shared storage, every stream capped below the NIC (compression, TCP)"),
    ("live, SMB streams", "shared storage, some stream fills the NIC by itself (SMB)"),
    ("copies files", "Live VSM off local disks or offline copies of stopped VMs"),
)
EXPLAIN = """\
Where the gap to the issue's LB comes from, by class (a plan's class is its worst kind of move):
  live, capped streams: moves on a host do not slow each other, so only packing is left. With few
    moves per slot (5-12 moves of a host on 4 slots) their durations seldom split into equal rows:
    the issue's LB (work / slots) assumes they do. The strong LB knows the best split (up to 16
    moves on a slot it is searched exactly: migrations_ui.planning.packing), so makespan/strong LB = 1.000
    means no schedule of that plan's moves ends sooner; on a uniform fabric a move takes as long
    whichever host it goes to, so no placement does either.
  live, SMB streams: one stream fills the NIC; moves sharing it each get half, every pre-copy pass
    lasts longer and the guest dirties more, so more bytes cross than the moves alone send (the
    issue's NIC term counts the bytes of moves alone). Where that costs more than the overlap of
    the prepare phases gains, the plan caps the host's moves at once at the few that fill its link
    (Plan.link_caps, issue 20); elsewhere it shares.
  copies files: files cross at the slower of the two disks and the NIC; the issue's LB has no disk
    term, the strong LB adds every host's file bytes / its storage rate. A simulated NIC is shared
    equally by its streams (fabric.sim.flow), so a file copy next to a capped memory stream
    goes at half the link while the memory stream uses a quarter: neither the NIC nor the disk term
    can be met at once. The strong LB counts that too (shared_nic_bound: the best mix of copies and
    memory streams on each host, a small linear program). The right-hand columns are the distance
    to it. Placement keeps file copies off destinations with slower disks or NICs. The order is the
    shorter of longest first and longest first with the copies spread through it, then improvement
    passes (ordering.best_order, issue 18, 2026-12-06); a disk dispatcher, even rows and a general
    concurrency cap gained under 2% and stay removed. A copy that would share a disk or link with a
    longer move at the start may be held back (ordering.hold_back), and a host's moves capped below
    its link's fill where a copy shares the NIC with capped streams.
The last column, strong LB / LB, is the part of a plan's ratio no schedule of its moves removes: where
its p95 is above a target, the target cannot be met against the issue's LB for that class."""
# p95 of makespan / strong LB, on each fabric (issue 18); and the planning time of 1,000 VMs on 64 hosts.
TARGETS = {"evacuation": 1.05, "rebalance": 1.10}
TIME_TARGET_S = 1.0


def plan_class(plan: Plan) -> str:
    if any(m.spec.storage_bytes for m in plan.moves):
        return CLASSES[2][0]
    if any(m.spec.option == "smb" and m.spec.kind in ("live", "live_vsm") for m in plan.moves):
        return CLASSES[1][0]
    return CLASSES[0][0]


FABRICS = {
    "mixed": "standalone hosts on SMB shares and local disks, clusters on CSV, TCP/compression/SMB, "
    "10 and 25 GbE, 1 VM in 10 stopped or saved (moved offline)",
    "uniform": "shared storage, compression, 10 GbE, running VMs only: no file is copied",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6, help="fabrics per size and slot count")
    parser.add_argument("--quick", action="store_true", help="the first four sizes only")
    parser.add_argument("--fabric", choices=(*FABRICS, "both"), default="both", help="which generated fabrics")
    args = parser.parse_args()
    sizes = SIZES[:4] if args.quick else SIZES
    verdicts = []
    for fabric in FABRICS if args.fabric == "both" else (args.fabric,):
        print(f"== {fabric} fabrics: {FABRICS[fabric]}")
        verdicts += run(fabric, sizes, args.seeds)
    print("targets: p95 of makespan / strong LB, every size and slot count of a fabric together:")
    for fabric, kind, p95, gain, vmm in verdicts:
        verdict = "met" if p95 <= TARGETS[kind] else "NOT met"
        print(
            f"  {fabric:7s} {kind:10s} p95 {p95:.3f} <= {TARGETS[kind]:.2f}: {verdict:7s}  planner/baseline "
            f"makespan {gain:.4f} (geometric mean)" + (f", one at a time (VMM) / makespan {vmm:.2f}x" if vmm else "")
        )
    print("no slot limit exceeded in any plan (every timeline swept)")
    print(EXPLAIN)
    timing()


def run(fabric_kind: str, sizes, seeds: int) -> list[tuple]:
    """Every plan of one kind of fabric: the figures by slots, by class, the worst plans; the verdicts."""
    uniform = fabric_kind == "uniform"
    worst: list[tuple[float, float, str]] = []
    by_class: dict[tuple[str, int, str], list[tuple[float, float]]] = {}
    verdicts = []
    print(
        "makespan/LB (the issue's LB): p50 p95 max | makespan/strong LB: p95 max | one at a time/makespan: p50 "
        "| planner/baseline makespan: geometric mean | CPU s planner, baseline"
    )
    for kind in ("evacuation", "rebalance"):
        pooled = []
        for slots in (1, 2, 4):
            rows = []
            for hosts, vms in sizes:
                for seed in range(seeds):
                    fabric, plans = plans_of(kind, hosts, vms, slots, seed, uniform)
                    for plan, plain, took, took_plain in plans:
                        if not plan.moves:
                            continue
                        check(plan)
                        ratio = plan.makespan_s / plan.lower_bound_s
                        strong = plan.makespan_s / max(plan.lower_bound_s, strong_bound(plan, fabric))
                        gain = plan.makespan_s / plain
                        rows.append(
                            (
                                (hosts, vms),
                                ratio,
                                strong,
                                serial(plan) / plan.makespan_s,
                                gain,
                                took,
                                took_plain,
                                bool(plan.link_caps),
                            )
                        )
                        by_class.setdefault((kind, slots, plan_class(plan)), []).append((ratio, strong))
                        what = f"{kind} slots={slots} hosts={hosts} vms={vms} seed={seed} {plan.host}"
                        worst.append((ratio, strong, f"{what} ({plan_class(plan)})"))
            pooled += rows
            ratios, strong = [r[1] for r in rows], [r[2] for r in rows]
            print(
                f"{kind:10s} slots {slots}: {len(rows):3d} plans  {pct(ratios, 0.5):.3f} {pct(ratios, 0.95):.3f} "
                f"{max(ratios):.3f} | {pct(strong, 0.95):.3f} {max(strong):.3f} | "
                f"{statistics.median(r[3] for r in rows):.2f}x | {geomean(r[4] for r in rows):.4f} | "
                f"{sum(r[5] for r in rows):.1f} {sum(r[6] for r in rows):.1f}"
            )
            by_size = " ".join(f"{h}/{v}: {pct([r[2] for r in rows if r[0] == (h, v)], 0.95):.2f}" for h, v in sizes)
            print(f"{'':22s}makespan/strong LB p95 by hosts/VMs {by_size}")
        capped = sum(1 for r in pooled if r[7])
        print(f"{kind:10s} plans with a link cap (Plan.link_caps): {capped} of {len(pooled)}")
        vmm = geomean(r[3] for r in pooled) if kind == "evacuation" else None
        verdicts.append((fabric_kind, kind, pct([r[2] for r in pooled], 0.95), geomean(r[4] for r in pooled), vmm))
    print("by class (makespan/LB p50 p95 max | makespan/strong LB p95 max | strong LB/LB p50 p95: the bound's part):")
    for kind in ("evacuation", "rebalance"):
        for slots in (1, 2, 4):
            for name, _ in CLASSES:
                got = by_class.get((kind, slots, name))
                if not got:
                    continue
                ratios, strong = [r[0] for r in got], [r[1] for r in got]
                # How far above the LB no schedule of these moves can come down (the LB's gap).
                gap = [r[0] / r[1] for r in got]
                print(
                    f"  {kind:10s} slots {slots} {name:21s} {len(got):3d} plans  {pct(ratios, 0.5):.3f} "
                    f"{pct(ratios, 0.95):.3f} {max(ratios):.3f} | {pct(strong, 0.95):.3f} {max(strong):.3f} | "
                    f"{pct(gap, 0.5):.3f} {pct(gap, 0.95):.3f}"
                )
    print("worst plans (makespan/LB, makespan/strong LB):")
    for ratio, strong, what in sorted(worst, reverse=True)[:5]:
        print(f"  {ratio:.3f} {strong:.3f}  {what}")
    return verdicts


def timing() -> None:
    """Planning time (CPU seconds) for 1,000 VMs on 64 hosts: a rebalance, and an evacuation moving all 1,000."""
    fabric = Fabric(7, 64, 1000, 2, skew=1.0)
    started = time.process_time()
    plan = fabric.rebalance()
    took = time.process_time() - started
    check(plan)
    verdict = "met" if took <= TIME_TARGET_S else "NOT met"
    print(f"planning time, rebalance of 1,000 VMs on 64 hosts: {took:.2f} s <= {TIME_TARGET_S} s: {verdict} "
          f"({len(plan.moves)} moves)")  # fmt: skip
    big = Fabric(7, 64, 1000, 2, clusters=False)
    everything = [vm for vms in big.vms.values() for vm in vms]
    host = big.hosts[0]
    # One host holding all 1,000 VMs (a planner stress, not a real host): 63 destinations.
    giant = HostFacts(**{**host.__dict__, "memory_total_bytes": 64 * 1024 * GIB, "memory_available_bytes": 0})
    started = time.process_time()
    plan = plan_evacuation(giant, everything, big.hosts[1:], big.options(), resident={})
    took = time.process_time() - started
    check(plan)
    verdict = "met" if took <= TIME_TARGET_S else "NOT met"
    print(
        f"planning time, evacuation of 1,000 VMs to 63 hosts: {took:.2f} s <= {TIME_TARGET_S} s: {verdict} "
        f"({len(plan.moves)} moves, "
        f"{len(plan.left)} left, makespan/LB {plan.makespan_s / plan.lower_bound_s:.3f})"
    )


if __name__ == "__main__":
    main()
