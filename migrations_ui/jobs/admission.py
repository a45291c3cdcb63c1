"""Which waiting jobs may start now (pure): every host a job touches needs a free slot of each kind.

Which slots each kind of move needs, and why: migrations_ui.slots.

Order is FIFO with priority, per slot: once a waiting job cannot have a host's slot, no later job
may take that slot ahead of it (so a Live VSM is not starved by small moves taking its slots one
at a time), while jobs that need other slots go on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from migrations_ui.slots import Slot, slots_needed


@dataclass(frozen=True)
class Waiting:
    job_id: int
    kind: str
    source: int
    destination: int
    extra: tuple[Slot, ...] = ()  # slots beyond its hosts' own: a batch's link caps (scheduler.link_slots)


@dataclass(frozen=True)
class Decision:
    admit: tuple[int, ...]
    waiting_for: dict[int, tuple[Slot, ...]]  # job id -> the slots it waits for
    position: dict[int, int]  # job id -> 1-based place in the queue
    paused: dict[int, tuple[str, ...]] = field(default_factory=dict)  # job id -> paused hosts' names
    caps: dict[Slot, int] = field(default_factory=dict)  # the batches' link caps it kept (scheduler.link_caps)
    held: dict[int, datetime] = field(default_factory=dict)  # job id -> when its batch's plan lets it start


def decide(waiting: list[Waiting], in_use: Counter, limits: dict[Slot, int]) -> Decision:
    """waiting in queue order (priority, then age); in_use counts the slots running jobs hold."""
    used = Counter(in_use)
    held: set[Slot] = set()  # slots an earlier waiting job is first in line for
    admit, waiting_for = [], {}
    for job in waiting:
        needs = [*slots_needed(job.kind, job.source, job.destination), *job.extra]
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
