"""Choosing the order of a plan's moves (pure): list-scheduling orders, a concurrency cap, improvement passes.

Every candidate is timed by migrations_ui.ordering's fluid model exactly as the admission would
run it, and the shortest kept. The search is deterministic (a seeded generator): the same facts
give the same plan.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence

from migrations_ui.admission import Slot
from migrations_ui.estimates import Figures, HostRates, MoveSpec, memory_rate
from migrations_ui.ordering import Flow, Timeline, alone_estimates, move_slots
from migrations_ui.packing import row_order
from migrations_ui.plan_dispatch import disk_order

# Moves simulated in all by the improvement passes: a 1,000-move plan gets a few, a small one dozens.
SEARCH_BUDGET = 6000
MAX_PASSES = 60
# A cap below the hosts' own limits must gain this much: running it asks more of the caller.
CAP_GAIN = 0.02
# Up to this many moves on the busiest slot, an order that lays them on its rows evenly is tried.
ROWS_MOST = 60


def best_timeline(
    specs: Sequence[MoveSpec],
    rates: Mapping[str, HostRates],
    limits: Mapping[Slot, int],
    figures: Figures | None = None,
    *,
    effort: int | None = None,
    bound: float = 0.0,
) -> Timeline:
    """The shortest timeline found for these moves within limits (the search stops if it reaches bound).

    1. Orders: longest first (LPT); moves on the most loaded slot, NIC or disk first, longest first
       among them; moves weighed by all the load they add; LPT with the moves on one of the two most
       loaded resources spread evenly through it (so that resource is busy all along).
    2. A lower concurrency cap, where streams slow each other down (uncapped SMB streams, slow
       links, shared disks): sharing a link slows every pass, and a busy guest then dirties more,
       so fewer moves at once can finish sooner. On every host, or only on those that contend (the
       others keep their slots). Kept only if it gains CAP_GAIN; the timeline's limits say what it
       was made for.
    1b. The busiest slot's moves split into as even rows as a short search finds (packing), each
       row's next move started as its previous one ends: LPT's rows can be uneven where an even
       split exists (8 moves on 4 slots), and the improvement passes seldom find it.
    3. effort improvement passes (default: by size): alternately the move that ends last is put
       ahead of a move that started before it, or two moves swap places; a change is kept when the
       makespan (then the sum of the ends) goes down.
    """
    n = len(specs)
    if n == 0:
        return Timeline((), (), (), dict(limits))
    f = figures or Figures()
    alone = alone_estimates(specs, rates, f)
    duration, pressure, users = _weights(specs, alone, rates, limits)
    copying = any(s.storage_bytes for s in specs)
    longest = sorted(range(n), key=lambda j: (-duration[j], j))
    orders = [
        longest,
        sorted(range(n), key=lambda j: (-max(pressure[j]), -duration[j], j)),
        sorted(range(n), key=lambda j: (-sum(pressure[j]) * duration[j], j)),
    ]
    orders += [_spread(longest, duration, group) for group in users]
    # Shortest first: where streams share a link, the long ones then run with fewer neighbours at the end.
    orders.append(longest[::-1])
    if copying:
        orders.append(disk_order(specs, alone, limits))
    if rows := _rows_order(specs, duration, limits):
        orders.append(rows)
    flow = Flow(specs, rates, limits, f)
    best_order, best = _best_of(flow, orders)
    contended = _contended(specs, rates, limits, f)
    everywhere = {h for s in specs for h in (s.source, s.destination)}
    # Every host capped alike, and (when that is not the same) only the hosts that contend.
    scopes = [everywhere] + ([contended] if contended and contended != everywhere else [])
    top = max(limits.values(), default=1)
    for cap in range(top - 1, 0, -1) if contended else ():
        for scope in scopes:
            lower = {slot: min(limit, cap) if slot[0] in scope else limit for slot, limit in limits.items()}
            capped = Flow(specs, rates, lower, f)
            order, timeline = _best_of(capped, orders)
            if timeline.makespan_s < best.makespan_s * (1 - CAP_GAIN):
                flow, best_order, best = capped, order, timeline
    passes = effort if effort is not None else min(MAX_PASSES, SEARCH_BUDGET // n)
    return _improve(flow, best_order, best, passes, bound)


def _weights(specs, alone, rates, limits) -> tuple[list[float], list[list[float]], list[set[int]]]:
    """Each move's duration alone; the load (seconds) of every slot, NIC and disk it touches; and the
    moves using each of the two most loaded resources that not every move uses."""
    load: dict[object, float] = defaultdict(float)
    uses: dict[object, set[int]] = defaultdict(set)
    keys = []
    for j, (s, e) in enumerate(zip(specs, alone, strict=True)):
        mine = [*move_slots(s.kind, s.source, s.destination)]
        for slot in mine:
            load[slot] += e.duration_s / max(1, limits.get(slot, 1))
        for host in {s.source, s.destination}:
            r = rates.get(host, HostRates())
            load[("nic", host)] += e.wire_bytes / r.nic_bytes_s
            if s.storage_bytes:
                load[("disk", host)] += s.storage_bytes / r.disk_bytes_s
                mine.append(("disk", host))
            mine.append(("nic", host))
        keys.append(mine)
        for key in mine:
            uses[key].add(j)
    pressure = [[load[k] for k in mine] for mine in keys]
    partial = sorted((k for k in load if len(uses[k]) < len(specs)), key=lambda k: (-load[k], str(k)))
    return [e.duration_s for e in alone], pressure, [uses[k] for k in partial[:2]]


def _rows_order(specs, duration, limits) -> list[int] | None:
    """The busiest slot's moves in packing.row_order, then the other moves longest first; None where
    that slot has no more moves than rows (nothing to split) or too many for the search."""
    on: dict[object, list[int]] = defaultdict(list)
    for j, s in enumerate(specs):
        for slot in move_slots(s.kind, s.source, s.destination):
            on[slot].append(j)
    slot = max(on, key=lambda x: (sum(duration[j] for j in on[x]) / max(1, limits.get(x, 1)), str(x)))
    group, rows = on[slot], max(1, limits.get(slot, 1))
    if not rows < len(group) <= ROWS_MOST:
        return None
    mine = set(group)
    first = [group[k] for k in row_order([duration[j] for j in group], rows)]
    return first + sorted((j for j in range(len(specs)) if j not in mine), key=lambda j: (-duration[j], j))


def _spread(order: list[int], duration: list[float], group: set[int]) -> list[int]:
    """order with the moves of group spread evenly through it (by work done), each part keeping its order:
    the resource they share stays busy from start to end instead of in one crowded stretch."""
    mine, others = [j for j in order if j in group], [j for j in order if j not in group]
    total, total_mine = sum(duration), sum(duration[j] for j in mine) or 1.0
    out: list[int] = []
    done = done_mine = 0.0
    a = b = 0
    while a < len(mine) or b < len(others):
        if a < len(mine) and (b >= len(others) or done_mine / total_mine <= done / total):
            j, a = mine[a], a + 1
            done_mine += duration[j]
        else:
            j, b = others[b], b + 1
        done += duration[j]
        out.append(j)
    return out


def _contended(specs, rates, limits, f) -> set[str]:
    """Hosts whose moves running together may slow each other: where files are copied, or the host's
    slots of its quickest stream overfill its link. Not where every stream is capped below its share
    (compression, TCP on 10 GbE) and nothing copies files: there a cap only loses."""
    fastest: dict[str, float] = defaultdict(float)  # the quickest stream on each host, wire bytes/s
    hosts: set[str] = set()
    for s in specs:
        if s.storage_bytes > 0 or s.kind not in ("live", "live_vsm"):
            hosts.update((s.source, s.destination))
            continue
        link = min(rates.get(h, HostRates()).nic_bytes_s for h in (s.source, s.destination))
        wire = memory_rate(s, link, f) * f.wire_ratio(s.option)
        for host in (s.source, s.destination):
            fastest[host] = max(fastest[host], wire)
    for host, wire in fastest.items():
        if limits.get((host, "live"), 1) * wire > rates.get(host, HostRates()).nic_bytes_s * (1 + 1e-9):
            hosts.add(host)
    return hosts


def _key(timeline: Timeline) -> tuple[float, float]:
    return round(timeline.makespan_s, 6), sum(timeline.end_s)


def _best_of(flow: Flow, orders: list[list[int]]) -> tuple[list[int], Timeline]:
    results = [(order, flow.run(order)) for order in orders]
    return min(results, key=lambda pair: _key(pair[1]))


def _improve(flow: Flow, order: list[int], best: Timeline, passes: int, bound: float) -> Timeline:
    n = len(order)
    rng = random.Random(n)  # seeded: a plan is reproducible
    best_key, step = _key(best), 0
    for i in range(passes):
        if n < 2 or best.makespan_s <= bound * (1 + 1e-9):
            break  # nothing to gain: the plan is as short as any can be
        if i % 2 == 0:
            last = max(range(n), key=lambda j: (best.end_s[j], j))
            position = order.index(last)
            step = step + 1 if position - step - 1 >= 0 else 1
            ahead = max(0, position - step)
            if ahead == position:
                continue
            candidate = [*order[:ahead], last, *(j for j in order[ahead:] if j != last)]
        else:
            a, b = rng.sample(range(n), 2)
            candidate = list(order)
            candidate[a], candidate[b] = candidate[b], candidate[a]
        timeline = flow.run(candidate)
        if _key(timeline) < best_key:
            order, best, best_key, step = candidate, timeline, _key(timeline), 0
    return best
