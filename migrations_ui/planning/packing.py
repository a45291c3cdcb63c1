"""Moves laid on a host's slots as rows, each row running its moves one after another (pure).

Moves never more than L at once on a slot can be laid on L rows (an interval graph is coloured with
as many colours as its largest clique), so the shortest split of their durations into L rows is a
bound no schedule beats (ordering.lower_bound, strong: what tests and bench/planner.py judge plans by).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Packing:
    end: float  # the busiest row's total
    row_of: tuple[int, ...]  # the row of each duration, in the order given
    complete: bool  # the search ended: no split is shorter than end


def pack_rows(longest: Sequence[float], rows: int, budget: int = 3000) -> Packing:
    """The shortest split of `longest` (descending) into `rows` rows that a search of `budget` steps
    finds: longest first onto the least loaded row, then depth first, largest move first, never
    trying two rows of equal load for one move and dropping any branch that cannot beat the best.
    complete=False: the budget ran out, end is only the best split found (no bound)."""
    n = len(longest)
    floor = max(longest[0], sum(longest) / rows) if n else 0.0
    load = [0.0] * rows
    best_rows = []
    for d in longest:  # longest first onto the least loaded row: the first answer to beat
        r = load.index(min(load))
        load[r] += d
        best_rows.append(r)
    best = max(load, default=0.0)
    load = [0.0] * rows
    chosen = [0] * n
    steps = 0

    def place(i: int, left: float) -> bool:
        """False once the budget is spent."""
        nonlocal best, best_rows, steps
        steps += 1
        if steps > budget:
            return False
        if i == n:
            best, best_rows = max(load), list(chosen)
            return True
        d, tried = longest[i], set()
        # What no row of the rest can hold under the best found: a branch that must exceed it is dropped.
        room = sum(best - x for x in load) - d
        for r in range(rows):
            if load[r] in tried or load[r] + d >= best * (1 - 1e-9) or room < left - d - 1e-9:
                continue
            tried.add(load[r])
            load[r] += d
            chosen[i] = r
            finished = place(i + 1, left - d)
            load[r] -= d
            if not finished:
                return False
            if best <= floor * (1 + 1e-9):
                return True
        return True

    complete = best <= floor * (1 + 1e-9) or place(0, sum(longest))
    return Packing(best, tuple(best_rows), complete)
