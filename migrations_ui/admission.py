"""Which waiting jobs may start now (pure): every host a job touches needs a free slot of each kind.

hyperv.md section 3: a host counts every migration it takes part in, in or out; live and storage
slots are independent; Live (VSM) takes one of each on both hosts; a storage move takes a storage
slot on its one host; a cluster node's live limit is the cluster's MaximumParallelMigrations.

Order is FIFO with priority, per slot: once a waiting job cannot have a host's slot, no later job
may take that slot ahead of it (so a Live VSM is not starved by small moves taking its slots one
at a time), while jobs that need other slots go on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

LIVE, STORAGE = "live", "storage"
_NEEDS = {
    "live": (LIVE,),
    "quick": (LIVE,),
    "network": (LIVE, STORAGE),  # an offline move copies files: hold both, as a host may count either
    "live_vsm": (LIVE, STORAGE),
    "storage": (STORAGE,),
}

Slot = tuple[int, str]  # (host id, "live" | "storage")


@dataclass(frozen=True)
class Waiting:
    job_id: int
    kind: str
    source: int
    destination: int


@dataclass(frozen=True)
class Decision:
    admit: tuple[int, ...]
    waiting_for: dict[int, tuple[Slot, ...]]  # job id -> the slots it waits for
    position: dict[int, int]  # job id -> 1-based place in the queue
    paused: dict[int, tuple[str, ...]] = field(default_factory=dict)  # job id -> paused hosts' names


def slots_needed(kind: str, source: int, destination: int) -> list[Slot]:
    hosts = dict.fromkeys((source, destination))  # one host for a storage move, in order
    return [(host, slot) for host in hosts for slot in _NEEDS[kind]]


def decide(waiting: list[Waiting], in_use: Counter, limits: dict[Slot, int]) -> Decision:
    """waiting in queue order (priority, then age); in_use counts the slots running jobs hold."""
    used = Counter(in_use)
    held: set[Slot] = set()  # slots an earlier waiting job is first in line for
    admit, waiting_for = [], {}
    for job in waiting:
        needs = slots_needed(job.kind, job.source, job.destination)
        full = [s for s in needs if used[s] >= limits.get(s, 0)]
        queued_behind = [s for s in needs if s in held]
        if not full and not queued_behind:
            admit.append(job.job_id)
            used.update(needs)
            continue
        blocking = tuple(dict.fromkeys(full + queued_behind))
        waiting_for[job.job_id] = blocking
        held.update(blocking)
    position = {job.job_id: i for i, job in enumerate((j for j in waiting if j.job_id in waiting_for), 1)}
    return Decision(tuple(admit), waiting_for, position)
