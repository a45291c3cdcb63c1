"""Each stage of the evacuation planner against a plain baseline (issue 18, Deliver 5).

Baseline: one placement (placement.place_evacuation with its defaults, place_rebalance with
PICK_CLOSEST: the real constraints), one longest-first order, timed by the planner's own fluid
model (ordering.Flow) within the hosts' limits. Then, cumulatively, the stages of
plan_search.best_timeline and evacuation.plan_*:
  orders      the other list-scheduling orders (slot/NIC/disk pressure, load-weighted, spread, shortest first)
  dispatch    plan_dispatch.disk_order (moves copying files)
  rows        packing.row_order of the busiest slot
  caps        a concurrency cap below the hosts' limits (kept if it gains plan_search.CAP_GAIN)
  passes      improvement passes (stopping at the strong lower bound)
  placements  several placements compared (evacuation.SLOWERS; rebalance: 4 picks x 2)
and the full planner without each one. Figures: the geometric mean over all cases of makespan /
baseline makespan, VMs left, and planning CPU seconds.

Run: .venv/bin/python bench/planner_stages.py [--seeds 3] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import planner as bench

from migrations_ui import plan_search as ps
from migrations_ui.evacuation import COMPARE_MOST, SLOWERS, slot_limits
from migrations_ui.ordering import Flow, alone_estimates, lower_bound
from migrations_ui.placement import (
    PICK_CLOSEST,
    PICK_EVEN,
    PICK_PACKED,
    PICK_SHORT_LAST,
    SLOWER,
    place_evacuation,
    place_rebalance,
)
from migrations_ui.plan_dispatch import disk_order

STAGES = ("orders", "dispatch", "rows", "caps", "passes", "placements")
# Parts of "placements", measured apart: the evacuation's other placements, the rebalance's other
# picks and its receivers ranked by speed (SLOWER).
PARTS = ("evacuation placements", "closest", "short-last", "even", "packed", "slower receivers")
PICKS = (PICK_CLOSEST, PICK_SHORT_LAST, PICK_EVEN, PICK_PACKED)


def timeline(specs, rates, limits, f, on):
    """plan_search.best_timeline with each stage switched by `on` (the same code, in the same order)."""
    n = len(specs)
    alone = alone_estimates(specs, rates, f)
    duration, pressure, users = ps._weights(specs, alone, rates, limits)
    longest = sorted(range(n), key=lambda j: (-duration[j], j))
    orders = [longest]
    if "orders" in on:
        orders += [
            sorted(range(n), key=lambda j: (-max(pressure[j]), -duration[j], j)),
            sorted(range(n), key=lambda j: (-sum(pressure[j]) * duration[j], j)),
        ]
        orders += [ps._spread(longest, duration, group) for group in users]
        orders.append(longest[::-1])
    if "dispatch" in on and any(s.storage_bytes for s in specs):
        orders.append(disk_order(specs, alone, limits))
    if "rows" in on and (rows := ps._rows_order(specs, duration, limits)):
        orders.append(rows)
    flow = Flow(specs, rates, limits, f)
    best_order, best = ps._best_of(flow, orders)
    if "caps" in on:
        contended = ps._contended(specs, rates, limits, f)
        everywhere = {h for s in specs for h in (s.source, s.destination)}
        scopes = [everywhere] + ([contended] if contended and contended != everywhere else [])
        for cap in range(max(limits.values(), default=1) - 1, 0, -1) if contended else ():
            for scope in scopes:
                lower = {slot: min(limit, cap) if slot[0] in scope else limit for slot, limit in limits.items()}
                capped = Flow(specs, rates, lower, f)
                order, t = ps._best_of(capped, orders)
                if t.makespan_s < best.makespan_s * (1 - ps.CAP_GAIN):
                    flow, best_order, best = capped, order, t
    if "passes" in on:
        bound = lower_bound(specs, rates, limits, f, strong=True)
        best = ps._improve(flow, best_order, best, min(ps.MAX_PASSES, ps.SEARCH_BUDGET // n), bound)
    return best


def plan(fabric, kind, index, on):
    """(makespan, VMs left, moves) of one case planned with the stages in `on`."""
    options = fabric.options()
    f = options.figures
    if kind == "evacuation":
        host = fabric.hosts[index]
        vms = fabric.vms[host.fqdn]
        many = "placements" in on and "evacuation placements" not in on and len(vms) <= COMPARE_MOST
        ways = SLOWERS if many else ((SLOWER, True),)
        placements = [place_evacuation(host, vms, fabric.hosts, fabric.vms, options, *w) for w in ways]
    else:
        picks = [p for p in PICKS if p not in on] or [PICK_CLOSEST]
        slowers = (None,) if "slower receivers" in on else (None, SLOWER)
        ways = [(p, s) for s in slowers for p in picks] if "placements" in on else [(PICK_CLOSEST, None)]
        placements = [(place_rebalance(fabric.hosts, fabric.vms, options, *w), []) for w in ways]
    limits = slot_limits(fabric.hosts)
    rates = {h.fqdn: options.rate(h.fqdn) for h in fabric.hosts}
    seen: set[tuple] = set()
    unique = []
    for placed, left in placements:  # the same destinations twice are planned once
        key = tuple((p.vm.id, p.destination.fqdn) for p in placed)
        if key not in seen:
            seen.add(key)
            unique.append((placed, left))
    if len(unique) > 1:
        quick = set(on) - {"passes"}  # compared by their first orders, as evacuation.plan_* does

        def key(pair):
            placed, left = pair
            t = timeline([p.spec for p in placed], rates, limits, f, quick) if placed else None
            return round(t.makespan_s, 6) if t else 0.0, len(left) if kind == "evacuation" else len(placed)

        unique = [min(unique, key=key)]
    placed, left = unique[0]
    if not placed:
        return 0.0, len(left), 0
    return timeline([p.spec for p in placed], rates, limits, f, on).makespan_s, len(left), len(placed)


def cases(sizes, seeds):
    for uniform in (False, True):
        for kind in ("evacuation", "rebalance"):
            for slots in (1, 2, 4):
                for hosts, vms in sizes:
                    for seed in range(seeds):
                        skew = 1.0 if kind == "rebalance" else 0.0
                        fabric = bench.Fabric(seed * 1000 + hosts, hosts, vms, slots, skew=skew, uniform=uniform)
                        indexes = range(0, hosts, max(1, hosts // 4)) if kind == "evacuation" else (0,)
                        for i in indexes:
                            yield ("uniform" if uniform else "mixed", kind, slots, hosts, vms, seed, i), fabric


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the first four sizes only")
    parser.add_argument("--check", action="store_true", help="the full set of stages gives the planner's makespans")
    args = parser.parse_args()
    sizes = bench.SIZES[:4] if args.quick else bench.SIZES
    configs = {"baseline": set()}
    for i, stage in enumerate(STAGES):
        configs["+" + stage] = set(STAGES[: i + 1])
    for stage in STAGES:
        configs["full - " + stage] = set(STAGES) - {stage}
    for part in PARTS:  # in `on`: switched off
        configs["full - " + part] = {*STAGES, part}
    got = {name: [] for name in configs}  # (case, makespan, left, cpu)
    for case, fabric in cases(sizes, args.seeds):
        for name, on in configs.items():
            started = time.process_time()
            makespan, left, moves = plan(fabric, case[1], case[6], on)
            took = time.process_time() - started
            if moves:
                got[name].append((case, makespan, left, took))
            if args.check and name == "+placements":
                real = fabric.evacuate(case[6]) if case[1] == "evacuation" else fabric.rebalance()
                assert abs(real.makespan_s - makespan) < 1e-6, (case, real.makespan_s, makespan)
    base = {c: m for c, m, _, _ in got["baseline"]}
    base_left = sum(x[2] for x in got["baseline"])

    def gm(rows, keep=lambda c: True):
        logs = [math.log(m / base[c]) for c, m, _, _ in rows if keep(c)]
        return math.exp(statistics.fmean(logs)) if logs else float("nan")

    print(f"{len(base)} cases, sizes {sizes}, {args.seeds} seeds, both fabrics")
    print("config               all    mixed-ev mixed-rb unif-ev  unif-rb | left | CPU s (sum, max)")
    for name, rows in got.items():
        parts = [gm(rows)] + [
            gm(rows, lambda c, fk=fk, k=k: c[0] == fk and c[1] == k)
            for fk in ("mixed", "uniform")
            for k in ("evacuation", "rebalance")
        ]
        left = sum(x[2] for x in rows) - base_left
        cpu = [x[3] for x in rows]
        print(f"{name:18s} " + " ".join(f"{p:.4f}" for p in parts) + f" | {left:+d} | {sum(cpu):.1f} {max(cpu):.2f}")


if __name__ == "__main__":
    main()
