"""Moves split into a host's rows of slots: the exact split the strong bound uses."""

import itertools
import random

import pytest

from migrations_ui.planning.packing import pack_rows


def brute_force(durations, rows):
    return min(
        max(sum(d for d, r in zip(durations, assign, strict=True) if r == row) for row in range(rows))
        for assign in itertools.product(range(rows), repeat=len(durations))
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_split_is_the_shortest_there_is(seed):
    rng = random.Random(seed)
    rows = rng.choice((2, 3, 4))
    durations = sorted(rng.choice((rng.uniform(5, 130), 10.0 * rng.randint(1, 6))) for _ in range(rng.randint(2, 8)))
    packing = pack_rows(durations[::-1], rows)

    assert packing.complete
    assert packing.end == pytest.approx(brute_force(durations, rows))
    loads = [sum(d for d, r in zip(durations[::-1], packing.row_of, strict=True) if r == row) for row in range(rows)]
    assert max(loads) == pytest.approx(packing.end)


def test_it_finds_the_even_split_longest_first_misses():
    # Longest first lays 5 | 4, then 3 on 4, 2 on 5, the last 2 on either: 9. The even split is 5+3 | 4+2+2.
    durations = [5, 4, 3, 2, 2]
    assert pack_rows(durations, 2, budget=0).end == 9  # longest first onto the least loaded row
    packing = pack_rows(durations, 2)
    assert (packing.end, packing.complete) == (8, True)


def test_a_spent_budget_is_not_a_bound():
    durations = sorted((random.Random(3).uniform(1, 100) for _ in range(30)), reverse=True)
    packing = pack_rows(durations, 4, budget=5)
    assert not packing.complete
    assert packing.end >= sum(durations) / 4  # still a real split, only not known to be the shortest
