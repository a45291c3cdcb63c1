"""Migration slots a host had in use over a time window, as a step series (pure).

A job holds its slots from its admission until the host reports its move completed, or until it
ends when it never got that far (admission.py: a live move holds a live slot
on both hosts, Live (VSM) and an offline move a live and a storage slot, a storage move a storage
slot on its one host). Times are seconds on any common clock; the caller passes the window.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Held:
    """The slots one job held on the host, from `start` until `end` (None: still holds them)."""

    start: float
    end: float | None
    live: int
    storage: int


@dataclass(frozen=True)
class Step:
    """From t on (until the next step), this many slots were in use."""

    t: float
    live: int
    storage: int


def steps(held: list[Held], start: float, end: float) -> list[Step]:
    """The counts at `start`, then one step at every change inside the window, then a closing step at
    `end` with the counts then (so a chart can draw the last stretch). Simultaneous changes make one
    step; a job that ended before the window or began after it does not count."""
    if end < start:
        raise ValueError("the window ends before it starts")
    changes: dict[float, list[int]] = {}
    live = storage = 0
    for h in held:
        until = end if h.end is None else min(h.end, end)
        if until <= start or h.start >= end or until <= h.start:
            continue
        if h.start <= start:
            live, storage = live + h.live, storage + h.storage
        else:
            delta = changes.setdefault(h.start, [0, 0])
            delta[0] += h.live
            delta[1] += h.storage
        if until < end:
            delta = changes.setdefault(until, [0, 0])
            delta[0] -= h.live
            delta[1] -= h.storage
    series = [Step(start, live, storage)]
    for t in sorted(changes):
        d_live, d_storage = changes[t]
        if not d_live and not d_storage:
            continue  # one job ended as another began: no change to draw
        live, storage = live + d_live, storage + d_storage
        series.append(Step(t, live, storage))
    series.append(Step(end, live, storage))
    return series


def peak(series: list[Step]) -> tuple[int, int]:
    """The most live and storage slots in use at any time of the series."""
    return max((s.live for s in series), default=0), max((s.storage for s in series), default=0)
