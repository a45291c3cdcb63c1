"""An order of a plan's moves that keeps the disks copying files busy (pure): a greedy dispatcher.

Moves that copy files (Live VSM, offline copies) share their hosts' disks while their memory
streams do not. Longest first puts moves of one size side by side: they start together, copy
their files at once at a share of the disk each, then all stream memory while the disk idles
(lockstep). This dispatcher walks a simple model of the run (slots as the admission keeps them,
each host's disk shared by the copies on it) and, whenever a slot frees,
starts among the longest moves left the one whose copy ends nearest the moment the next slot
frees plus a prepare phase: the disk then goes on with the next move's files while this one
streams its memory. It only proposes an order: ordering's fluid model times it like any other.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from migrations_ui.admission import Slot
from migrations_ui.estimates import Estimate, MoveSpec
from migrations_ui.ordering import move_slots

# Candidates looked at each time: the longest moves left (a short move is kept for the end, where
# it fills the last gaps, as longest first does).
WINDOW = 32
# A disk left idle costs this much more than a move waiting for it (the move at least holds a slot).
IDLE_WEIGHT = 4.0


def disk_order(specs: Sequence[MoveSpec], alone: Sequence[Estimate], limits: Mapping[Slot, int]) -> list[int]:
    """Every move once, in the order the dispatcher starts them."""
    n = len(specs)
    slots = [move_slots(s.kind, s.source, s.destination) for s in specs]
    free = {slot: limits.get(slot, 0) for slot in {x for mine in slots for x in mine}}
    disk_free: dict[str, float] = {}  # when each host's disk has copied what it was given
    left = sorted(range(n), key=lambda j: (-alone[j].duration_s, j))
    running: list[tuple[float, int]] = []  # (end, move)
    order: list[int] = []
    t = 0.0
    while left:
        startable = []
        for j in left:
            if all(free[x] > 0 for x in slots[j]):
                startable.append(j)
                if len(startable) == WINDOW:
                    break
        if not startable:
            if not running:
                return order + left  # a limit of 0: the fluid model says so
            t, j = heapq.heappop(running)
            for x in slots[j]:
                free[x] += 1
            continue
        costs = [_cost(specs[k], alone[k], t, running, disk_free) for k in startable]
        j = startable[costs.index(min(costs))]
        end = _start(specs[j], alone[j], t, disk_free)
        for x in slots[j]:
            free[x] -= 1
        heapq.heappush(running, (end, j))
        left.remove(j)
        order.append(j)
    return order


def _copy_window(spec: MoveSpec, e: Estimate, t: float, disk_free: Mapping[str, float]) -> tuple[float, float]:
    """When the move's file copy would end if started at t, and when its disks would be done with all
    they were given. A disk shares itself among the copies on it: the work it still has (ahead) is
    done by the same time whatever the order, and a copy sharing it goes at half speed while both run."""
    begin = t + e.prepare_s
    ahead = max(0.0, *(disk_free.get(h, 0.0) - begin for h in (spec.source, spec.destination)))
    return begin + e.storage_s + min(e.storage_s, ahead), begin + e.storage_s + ahead


def _start(spec: MoveSpec, e: Estimate, t: float, disk_free: dict[str, float]) -> float:
    """Book the move's copy on its hosts' disks; its end in the model."""
    if not spec.storage_bytes:
        return t + e.duration_s
    copied, busy = _copy_window(spec, e, t, disk_free)
    for h in (spec.source, spec.destination):
        disk_free[h] = max(disk_free.get(h, 0.0), busy)
    return copied + e.duration_s - e.prepare_s - e.storage_s


def _cost(spec: MoveSpec, e: Estimate, t: float, running, disk_free: Mapping[str, float]) -> float:
    """Seconds the source disk idles before the next copy can start, or copies share it."""
    disk = disk_free.get(spec.source, 0.0)
    shared = 0.0
    if spec.storage_bytes:
        copied, busy = _copy_window(spec, e, t, disk_free)
        shared = copied - t - e.prepare_s - e.storage_s
        disk = max(disk, busy)
        end = copied + e.duration_s - e.prepare_s - e.storage_s
    else:
        end = t + e.duration_s
    # The next slot to free (this move's or a running one's) starts a copy one prepare phase later.
    after = min([end, *(r[0] for r in running)]) + e.prepare_s
    idle = max(0.0, after - disk)
    return IDLE_WEIGHT * idle + shared
