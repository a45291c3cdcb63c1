"""When each move of a plan runs: list scheduling within the hosts' slots, timed by a fluid model (pure).

A plan is an order. Its timeline is what the console's admission (migrations_ui.jobs.admission) makes
of that order: whenever a move ends, the waiting moves are walked in order and each one whose slots
are all free starts (admission's "held" slots are always full ones, so this is the same rule).
Jobs queued in plan order therefore start in the sequence the plan shows, and a plan never puts a
host over a limit the admission would not allow either. A move the plan holds back (hold_back) stays
out of the queue until its second, as the admission keeps its job (MigrationJob.not_before).

Durations come from a fluid simulation of the moves that run at the same time: the phases and
rates of migrations_ui.planning.estimates, a host's NIC shared equally by its moves on the network, its
storage by its moves copying files, and the pre-copy passes followed as the simulator runs them
(each pass sends what the guest dirtied during the previous one). Events are phase ends only;
moves whose share changes are re-timed, so a 1,000-move plan is timed in well under a second.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from migrations_ui.planning.estimates import Estimate, Figures, HostRates, MoveSpec, estimate_move, memory_rate
from migrations_ui.planning.packing import pack_rows
from migrations_ui.preflight.facts import Kind
from migrations_ui.slots import Slot, slots_needed

PREPARE, STORE, MEMORY, QUICK, RESUME = range(5)
_CODES = {"prepare": PREPARE, "storage": STORE, "memory": MEMORY, "quick": QUICK, "resume": RESUME}
_ON_NETWORK = frozenset({STORE, MEMORY})  # every planned move is between two hosts: files cross the link
_ON_DISKS = frozenset({STORE, QUICK})
# The same by phase code, for the simulation's inner loop.
_NET = tuple(int(p in _ON_NETWORK) for p in range(5))
_DISK = tuple(int(p in _ON_DISKS) for p in range(5))
_USES = tuple(bool(_NET[p] or _DISK[p]) for p in range(5))
# Events closer than this (seconds) happen together: float dust must not split a simultaneous end.
_SAME_TIME = 1e-9


def move_slots(kind: str, source: str, destination: str) -> list[Slot]:
    """The slots a move holds from start to end: exactly the admission's (an offline Network copy
    holds a live and a storage slot, as a host may count it as either)."""
    return slots_needed(kind, source, destination)


@dataclass(frozen=True)
class Timeline:
    """Start and end of every move (by index), in the order they start."""

    order: tuple[int, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]

    @property
    def makespan_s(self) -> float:
        return max(self.end_s, default=0.0)


class Flow:
    """The fluid model of a set of moves, ready to time any order of them (run); arrays for speed."""

    def __init__(self, specs, rates, limits, figures):
        f = figures
        hosts = sorted({h for s in specs for h in (s.source, s.destination)})
        index = {h: i for i, h in enumerate(hosts)}
        self.nic = [rates.get(h, HostRates()).nic_bytes_s for h in hosts]
        # A pair's measured link (0: the NICs'), shared as a NIC is, by the busier host's moves.
        self.link = [s.link_bytes_s for s in specs]
        self.disk = [rates.get(h, HostRates()).disk_bytes_s for h in hosts]
        self.src = [index[s.source] for s in specs]
        self.dst = [index[s.destination] for s in specs]
        self.wire = [f.wire_ratio(s.option) for s in specs]
        self.cap = [f.stream_cap(s.option) for s in specs]
        self.mem = [s.memory_bytes for s in specs]
        self.dirty = [s.dirty_bytes_s for s in specs]
        self.files = [s.storage_bytes for s in specs]
        self.phases = [tuple(_CODES[p] for p in s.phases) for s in specs]
        slot_ids: dict[Slot, int] = {}
        self.slots = [
            tuple(slot_ids.setdefault(slot, len(slot_ids)) for slot in move_slots(s.kind, s.source, s.destination))
            for s in specs
        ]
        self.limit = [0] * len(slot_ids)
        for slot, i in slot_ids.items():
            self.limit[i] = limits.get(slot, 0)
        self.f = f
        self.hosts_n = len(hosts)

    def run(self, order: Sequence[int], not_before: Mapping[int, float] | None = None) -> Timeline:
        """The timeline of these moves queued in this order; not_before: move -> the second before
        which it is held out of the queue (it then joins the queue at its place)."""
        n, f = len(self.src), self.f
        not_before = not_before or {}
        rank = [0] * n
        for r, j in enumerate(order):
            rank[j] = r
        # Each waiting move watches one slot that was full when it last tried; it is looked at again
        # only when that slot frees (so admission costs little however long the queue is).
        watch: list[list[tuple[int, int]]] = [[] for _ in self.limit]
        free = list(self.limit)
        started = [False] * n
        start, end = [math.nan] * n, [math.nan] * n
        # State of running moves.
        phase_i, phase, left, rate, t0 = [0] * n, [PREPARE] * n, [0.0] * n, [0.0] * n, [0.0] * n
        passes, elapsed, blackout, version = [0] * n, [0.0] * n, [False] * n, [0] * n
        net, dsk = [0] * self.hosts_n, [0] * self.hosts_n
        busy: list[set[int]] = [set() for _ in range(self.hosts_n)]  # moves using a host's NIC or disks
        events: list[tuple[float, int, int, int]] = []
        seq = 0
        thr, maxp = f.threshold_bytes, f.max_passes
        src, dst, nic, disk, slots = self.src, self.dst, self.nic, self.disk, self.slots

        def speed(j: int) -> float:
            p, a, b = phase[j], src[j], dst[j]
            if p in (MEMORY, STORE):
                measured = self.link[j]
                line = measured / max(net[a], net[b]) if measured else min(nic[a] / net[a], nic[b] / net[b])
                if p == MEMORY:
                    return min(line / self.wire[j], self.cap[j])
                return min(disk[a] / dsk[a], disk[b] / dsk[b], line)
            return min(disk[a] / dsk[a], disk[b] / dsk[b])  # QUICK

        def advance(j: int, t: float) -> None:
            dt, t0[j] = t - t0[j], t
            if phase[j] != MEMORY:
                left[j] -= dt * rate[j] if phase[j] in _ON_DISKS else dt
                return
            r = rate[j]
            while dt > 0:
                need = left[j] / r
                if need > dt:
                    left[j] -= r * dt
                    elapsed[j] += dt
                    return
                dt -= need
                elapsed[j] += need
                if blackout[j]:
                    left[j] = 0.0
                    return
                # The pass is over: the next sends what the guest dirtied meanwhile (precopy.precopy_rounds).
                rest = min(self.mem[j], self.dirty[j] * elapsed[j])
                passes[j] += 1
                blackout[j] = rest < thr or passes[j] >= maxp
                left[j], elapsed[j] = rest, 0.0

        def time_left(j: int) -> float:
            p = phase[j]
            if p in (PREPARE, RESUME):
                return left[j]
            r = rate[j]
            if r <= 0:
                return math.inf
            t = left[j] / r
            if p != MEMORY or blackout[j]:
                return t
            pel, k = elapsed[j] + t, passes[j]
            while True:
                rest = min(self.mem[j], self.dirty[j] * pel)
                k += 1
                if rest < thr or k >= maxp:
                    return t + rest / r
                t += rest / r
                pel = rest / r

        def reschedule(j: int, t: float) -> None:
            nonlocal seq
            version[j] += 1
            seq += 1
            heapq.heappush(events, (t + time_left(j), seq, j, version[j]))

        def enter(j: int, t: float, p: int) -> None:
            """Move j into phase p at time t, re-timing the moves on its hosts whose share changes."""
            old = phase[j]
            was, now = _USES[old], _USES[p]
            a, b = src[j], dst[j]
            others = (busy[a] | busy[b]) - {j} if was or now else ()
            for h in (a,) if a == b else (a, b):
                net[h] += _NET[p] - _NET[old]
                dsk[h] += _DISK[p] - _DISK[old]
                if now:
                    busy[h].add(j)
                elif was:
                    busy[h].discard(j)
            phase[j], t0[j] = p, t
            if p == PREPARE:
                left[j] = f.prepare_s
            elif p == RESUME:
                left[j] = f.resume_s
            elif p == MEMORY:
                left[j], passes[j], elapsed[j], blackout[j] = self.mem[j], 0, 0.0, False
            elif p == STORE:
                left[j] = self.files[j]
            else:
                left[j] = self.mem[j]
            for k in sorted(others):
                r = speed(k)
                if r != rate[k]:  # a capped stream may not notice a neighbour: its end stays where it was
                    advance(k, t)  # at the old rate, up to now
                    rate[k] = r
                    reschedule(k, t)
            if now:
                rate[j] = speed(j)
            reschedule(j, t)

        def begin(j: int, t: float) -> None:
            started[j], start[j] = True, t
            for s in self.slots[j]:
                free[s] -= 1
            phase_i[j], phase[j] = 0, PREPARE
            enter(j, t, self.phases[j][0])

        def full_slot(j: int) -> int:
            for x in slots[j]:
                if free[x] <= 0:
                    return x
            return -1

        def admit(freed: Sequence[int], t: float) -> None:
            """Look at the moves watching a freed slot, in order; start each whose slots are all free."""
            blocked = []
            while True:
                # The waiting move first in order among the watchers of freed slots that still have room
                # (a watcher of a full slot needs that slot: it cannot start, no need to look).
                first, key = -1, None
                for s in freed:
                    w = watch[s]
                    if w and free[s] > 0 and (first < 0 or w[0] < key):
                        first, key = s, w[0]
                if first < 0:
                    break
                r, j = heapq.heappop(watch[first])
                x = full_slot(j)
                if x < 0:
                    begin(j, t)
                else:
                    blocked.append((x, r, j))
            for x, r, j in blocked:
                heapq.heappush(watch[x], (r, j))

        for r, j in enumerate(order):
            if not_before.get(j, 0.0) > 0:
                seq += 1
                heapq.heappush(events, (not_before[j], seq, -1 - j, 0))  # a release, not a phase end
                continue
            x = full_slot(j)
            if x < 0:
                begin(j, 0.0)
            else:
                watch[x].append((r, j))  # appended in order: already a heap
        while events:
            t = events[0][0]
            freed: list[int] = []
            while events and events[0][0] <= t + _SAME_TIME:
                _, _, j, v = heapq.heappop(events)
                if j < 0:
                    # A held move's time has come: it waits on a full slot, or is admitted with the freed.
                    j = -1 - j
                    x = full_slot(j)
                    heapq.heappush(watch[x if x >= 0 else slots[j][0]], (rank[j], j))
                    if x < 0:
                        freed.append(slots[j][0])
                    continue
                if v != version[j]:
                    continue
                advance(j, t)
                phase_i[j] += 1
                if phase_i[j] < len(self.phases[j]):
                    enter(j, t, self.phases[j][phase_i[j]])
                    continue
                enter(j, t, RESUME)  # leaves its NIC and disks to the others
                version[j] += 1  # the move is over: no event of it stays valid
                end[j] = t
                for s in self.slots[j]:
                    free[s] += 1
                freed.extend(self.slots[j])
            if freed:
                admit(list(dict.fromkeys(freed)), t)
        if not all(started):
            raise ValueError("a move needs a slot no host offers (a limit of 0)")
        started_order = tuple(sorted(range(n), key=lambda j: (start[j], rank[j])))
        return Timeline(started_order, tuple(start), tuple(end))


def simulate(
    specs: Sequence[MoveSpec],
    order: Sequence[int],
    rates: Mapping[str, HostRates],
    limits: Mapping[Slot, int],
    figures: Figures | None = None,
) -> Timeline:
    """The timeline of these moves queued in this order (indices into specs)."""
    return Flow(specs, rates, limits, figures or Figures()).run(order)


# Improvement passes of a plan's order: at most this many, and about this many moves simulated in all
# (an 809-move plan gets eleven passes, a 60-move one 150). With 60 and 3,000, 16 mixed evacuations
# of bench/planner.py stayed above 1.05 of the strong bound, two more than its p95 target allows; with
# these 13 do, and planning 1,000 VMs stays within its second (bench/RESULTS.md, issue 18, 2026-12-06).
MAX_PASSES = 200
PASS_BUDGET = 9000
# ... and they stop after this many passes without a gain: a small plan has few orders to try, and a
# readiness refresh plans every host after each move (40 keeps bench/planner.py's figures).
PATIENCE = 40


def best_order(flow: Flow, alone: Sequence[Estimate], specs: Sequence[MoveSpec]) -> tuple[Timeline, list[int]]:
    """The shorter timeline of two orders, and that order: longest first, and the same with the file
    copies spread through it (each timed by flow.run, as the admission would run it).

    Longest first alone leaves the tail of plans that copy files (bench/RESULTS.md, issue 18): the
    long copies start together, share the source's disk and NIC with each other and with the memory
    streams, and the last ones end late. Spread evenly through the order (by seconds of work), the
    copies keep the disk busy from start to end while the streams use the rest of the link.
    """
    n = len(specs)
    duration = [e.duration_s for e in alone]
    longest = sorted(range(n), key=lambda j: (-duration[j], j))
    orders = [longest]
    copies = {j for j in range(n) if specs[j].storage_bytes}
    if copies and len(copies) < n:
        orders.append(spread(longest, duration, copies))
    return min(((flow.run(order), order) for order in orders), key=lambda r: _key(r[0]))


def improve(flow: Flow, order: Sequence[int], best: Timeline, bound: float = 0.0) -> tuple[Timeline, list[int]]:
    """best (the timeline of order) after improvement passes, each timed by flow.run; and its order.

    The passes alternately put the move that ends last ahead of one that started before it, or swap
    two moves (a seeded generator: the same facts give the same plan); a change is kept when the
    makespan, then the sum of the ends, goes down. At most MAX_PASSES, about PASS_BUDGET moves
    simulated in all, PATIENCE in a row without a gain; they stop at `bound` (no schedule ends sooner).
    """
    order = list(order)
    n = len(order)
    rng = random.Random(n)
    best_key, step, kept = _key(best), 0, 0
    for i in range(min(MAX_PASSES, PASS_BUDGET // max(1, n))):
        if n < 2 or best.makespan_s <= bound * (1 + 1e-9) or i - kept >= PATIENCE:
            break
        if i % 2 == 0:
            # The move that ends last, one place further ahead each time this does not help.
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
            order, best, best_key, step, kept = candidate, timeline, _key(timeline), 0, i
    return best, order


# Holding moves back: at most this many rounds, about this many moves simulated in all (planning
# 1,000 VMs stays within its second), and the points of the last move's span tried as a rival's time.
HOLD_ROUNDS = 10
HOLD_BUDGET = 6000
HOLD_POINTS = (0.25, 0.5, 0.75, 1.0)


def hold_back(
    flow: Flow, order: Sequence[int], best: Timeline, bound: float = 0.0
) -> tuple[Timeline, dict[int, float]]:
    """best (the timeline of order) with some moves held back, and the holds: move -> second.

    The admission starts a move as soon as its slots are free, so no order keeps two copies off one
    disk or NIC at once (bench/RESULTS.md, issue 18): both start, share it, and the one that ends the
    plan ends later than if the other had waited. Each round takes the move that ends last and tries
    each move sharing a host with it while it runs held until a point of its span; a hold is kept
    when the makespan, then the sum of the ends, goes down. Stops at `bound`, after HOLD_ROUNDS
    rounds or about HOLD_BUDGET moves simulated.
    """
    n, holds, best_key = len(order), {}, _key(best)
    runs = HOLD_BUDGET // max(1, n)
    for _ in range(HOLD_ROUNDS):
        if runs <= 0 or best.makespan_s <= bound * (1 + 1e-9):
            break
        last = max(range(n), key=lambda j: (best.end_s[j], j))
        a, b = best.start_s[last], best.end_s[last]
        ends = {flow.src[last], flow.dst[last]}
        # The moves on its hosts while it runs, the ones starting closest to it first.
        overlap = [j for j in range(n) if best.start_s[j] < b and best.end_s[j] > a]
        rivals = [j for j in overlap if j != last and j not in holds and {flow.src[j], flow.dst[j]} & ends]
        rivals.sort(key=lambda j: (abs(best.start_s[j] - a), j))
        found = None
        for j in rivals:
            for point in HOLD_POINTS:
                if runs <= 0:
                    break
                runs -= 1
                candidate = {**holds, j: a + point * (b - a)}
                timeline = flow.run(order, candidate)
                if _key(timeline) < best_key:
                    found, best, best_key = candidate, timeline, _key(timeline)
        if found is None:
            break
        holds = found
    return best, holds


def spread(order: Sequence[int], duration: Sequence[float], group: set[int]) -> list[int]:
    """order with the moves of group spread evenly through it by seconds of work, each part in its order."""
    mine, others = [j for j in order if j in group], [j for j in order if j not in group]
    total, total_mine = sum(duration[j] for j in order) or 1.0, sum(duration[j] for j in mine) or 1.0
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


def _key(timeline: Timeline) -> tuple[float, float]:
    return round(timeline.makespan_s, 6), sum(timeline.end_s)


def alone_estimates(
    specs: Sequence[MoveSpec], rates: Mapping[str, HostRates], figures: Figures | None = None
) -> list[Estimate]:
    """Each move with its hosts to itself: its shortest duration and fewest bytes."""
    f, none = figures or Figures(), HostRates()
    return [estimate_move(s, rates.get(s.source, none), rates.get(s.destination, none), f) for s in specs]


def link_fill(
    specs: Sequence[MoveSpec], rates: Mapping[str, HostRates], figures: Figures | None = None
) -> dict[str, int]:
    """How many of its moves at once fill each host's link: the most, over its moves, of the link
    (the pair's measured one, else the host's NIC) / the wire bytes/s the move sends alone, rounded up.

    A move alone sends at most its stream's cap (TCP's window, compression's CPU), or the slower of
    the two hosts' links, or its disks' rate for files. Beyond the fill, the moves split the link
    (the simulator shares a NIC equally), so each goes slower and its pre-copy re-sends more dirtied
    memory: more at once ends no sooner. Hosts with a Quick move are left out: it copies through the
    cluster's storage, not the link, and a cap on the host's live slots would hold it back too.
    """
    f, none = figures or Figures(), HostRates()
    fill: dict[str, int] = {}
    quick: set[str] = set()
    for s in specs:
        ends = (s.source, s.destination)
        if s.kind == Kind.QUICK:
            quick.update(ends)
            continue
        a, b = rates.get(s.source, none), rates.get(s.destination, none)
        line = s.link_bytes_s or min(a.nic_bytes_s, b.nic_bytes_s)
        sends = []  # wire bytes/s of each phase on the network; the slowest needs the most company
        if s.storage_bytes:
            sends.append(min(a.disk_bytes_s, b.disk_bytes_s, line))
        if s.kind in (Kind.LIVE, Kind.LIVE_VSM):
            sends.append(memory_rate(s, line, f) * f.wire_ratio(s.option))
        if not sends:  # nothing to copy
            continue
        for host in set(ends):
            link = s.link_bytes_s or rates.get(host, none).nic_bytes_s
            fill[host] = max(fill.get(host, 1), math.ceil(link / min(sends) - 1e-9))
    return {h: n for h, n in fill.items() if h not in quick}


def lower_bound(
    specs: Sequence[MoveSpec],
    rates: Mapping[str, HostRates],
    limits: Mapping[Slot, int],
    figures: Figures | None = None,
    *,
    strong: bool = False,
) -> float:
    """LB = max(longest move alone, every slot's work / its limit, every host's wire bytes / its NIC rate).

    A move alone is as fast as it can be, and its bytes the fewest it sends (faster passes leave less
    dirtied memory), so no schedule beats any of the three. strong=True adds bounds that hold as
    well: every host's wire bytes / NIC rate after the prepare phase; every host's file bytes / its
    disk's rate or its partners' disks' (the slower), after the prepare phase and followed by the
    shortest memory phase and resume of its copying moves; and, for a slot of limit L held by more
    than L moves, the packing bound of _packing_bound (k = 1: the L-th plus the (L+1)-th longest;
    k = 2: the (2L-1)-th to (2L+1)-th...).
    """
    work: dict[Slot, list[float]] = defaultdict(list)
    wire: dict[str, float] = defaultdict(float)
    files: dict[str, float] = defaultdict(float)
    partners: dict[str, set[str]] = defaultdict(set)  # the other ends of each host's file copies
    after: dict[str, float] = {}  # the least a move copying files on the host runs after its copy
    bound = 0.0
    for s, e in zip(specs, alone_estimates(specs, rates, figures), strict=True):
        bound = max(bound, e.duration_s)
        for slot in move_slots(s.kind, s.source, s.destination):
            work[slot].append(e.duration_s)
        for host in {s.source, s.destination}:
            # A move timed by its pair's measured link may be faster than the NIC figure: its bytes
            # would bound the plan by a rate it does not run at.
            if not s.link_bytes_s:
                wire[host] += e.wire_bytes
            files[host] += s.storage_bytes
            if s.storage_bytes:
                partners[host].add(s.destination if host == s.source else s.source)
                after[host] = min(after.get(host, math.inf), e.memory_s + e.resume_s)
    crowded = []  # (slot's moves longest first, its limit) where more moves than slots share it
    for slot, durations in work.items():
        limit = max(1, limits.get(slot, 1))
        bound = max(bound, sum(durations) / limit)
        if strong and len(durations) > limit:
            crowded.append((sorted(durations, reverse=True), limit))
            bound = max(bound, _packing_bound(crowded[-1][0], limit))
    prepare = (figures or Figures()).prepare_s
    for host, total in wire.items():
        r = rates.get(host, HostRates())
        bound = max(bound, total / r.nic_bytes_s)
        if strong:
            # No byte moves before a move's prepare phase is over.
            bound = max(bound, prepare + total / r.nic_bytes_s)
    for host, total in files.items() if strong else ():
        if not total:
            continue
        # Every file byte a host copies crosses its disk and its partner's, each shared by the copies
        # on it: the host's copies move at most min(its disk, its partners' disks together) bytes/s,
        # none before a prepare phase is over. The move whose copy ends last then runs its memory
        # phase and resume, no faster than alone (a Network move: nothing after its copy).
        disk = min(
            rates.get(host, HostRates()).disk_bytes_s,
            sum(rates.get(p, HostRates()).disk_bytes_s for p in partners[host]),
        )
        bound = max(bound, prepare + total / disk + after[host])
    for longest, limit in crowded:
        # Searched only where the split could raise the bound: not above it when longest first is not.
        if len(longest) <= EXACT_PACKING_MOST and pack_rows(longest, limit, budget=0).end > bound:
            bound = max(bound, _best_packing(longest, limit))
    return bound


def _packing_bound(longest: Sequence[float], limit: int) -> float:
    """The most any k+1 moves that must share one of `limit` slots take end to end (longest: descending).

    Intervals never more than `limit` at once can be laid on `limit` rows (an interval graph is
    coloured with as many colours as its largest clique), so among the k*limit + 1 longest moves one
    row holds k + 1 of them, one after the other: at least the k + 1 shortest of those.
    """
    bound, k = 0.0, 1
    while k * limit < len(longest):
        bound = max(bound, sum(longest[k * limit - k : k * limit + 1]))
        k += 1
    return bound


# Up to this many moves on one slot, the strong bound packs them exactly (a search of at most a few
# thousand steps; beyond, the moves are many and _packing_bound is close).
EXACT_PACKING_MOST = 16


def _best_packing(longest: Sequence[float], limit: int) -> float:
    """The shortest split of the moves into `limit` rows (packing.pack_rows), 0.0 if the search did
    not end: where no split is even, neither is any schedule."""
    packing = pack_rows(longest, limit)
    return packing.end if packing.complete else 0.0


def slot_overuse(
    moves: Sequence[tuple[str, str, str, float, float]], limits: Mapping[Slot, int]
) -> list[tuple[float, Slot, int]]:
    """Sweep a timeline: (time, slot, count) wherever more moves hold a slot than its limit allows.

    moves: (kind, source, destination, start_s, end_s). A move ending at t frees its slots for one
    starting at t (the admission hands a freed slot on at once).
    """
    points = []
    for kind, source, destination, start, end in moves:
        for slot in move_slots(kind, source, destination):
            points.append((start, 1, slot))
            points.append((end, 0, slot))
    points.sort(key=lambda p: (p[0], p[1]))  # ends before starts at the same instant
    used: dict[Slot, int] = defaultdict(int)
    over = []
    for t, is_start, slot in points:
        used[slot] += 1 if is_start else -1
        if used[slot] > limits.get(slot, 0):
            over.append((t, slot, used[slot]))
    return over
