import random
from collections import Counter

import pytest

from migrations_ui.jobs.admission import Waiting, decide
from migrations_ui.slots import slots_needed


def limits(hosts=(1, 2, 3), live=2, storage=2, special=None):
    table = {}
    for h in hosts:
        table[(h, "live")] = live
        table[(h, "storage")] = storage
    table.update(special or {})
    return table


@pytest.mark.parametrize(
    ("kind", "src", "dst", "needs"),
    [
        ("live", 1, 2, [(1, "live"), (2, "live")]),
        ("quick", 1, 2, [(1, "live"), (2, "live")]),
        ("live_vsm", 1, 2, [(1, "live"), (1, "storage"), (2, "live"), (2, "storage")]),
        ("storage", 1, 1, [(1, "storage")]),
        ("network", 3, 1, [(3, "live"), (3, "storage"), (1, "live"), (1, "storage")]),
    ],
)
def test_it_knows_the_slots_each_kind_needs(kind, src, dst, needs):
    assert slots_needed(kind, src, dst) == needs


def test_six_moves_out_of_one_host_start_two_at_a_time():
    waiting = [Waiting(i, "live", 1, 2 if i % 2 else 3) for i in range(1, 7)]

    first = decide(waiting, Counter(), limits())

    assert first.admit == (1, 2)
    assert first.waiting_for[3] == ((1, "live"),)
    assert [first.position[j] for j in (3, 4, 5, 6)] == [1, 2, 3, 4]


def test_live_and_storage_slots_are_independent():
    waiting = [
        Waiting(1, "live", 1, 2),
        Waiting(2, "live", 1, 2),
        Waiting(3, "storage", 1, 1),
        Waiting(4, "storage", 1, 1),
    ]
    assert decide(waiting, Counter(), limits()).admit == (1, 2, 3, 4)


def test_live_vsm_takes_one_of_each_on_both_hosts():
    in_use = Counter({(2, "storage"): 2})
    decision = decide([Waiting(1, "live_vsm", 1, 2), Waiting(2, "live", 1, 2)], in_use, limits())
    assert decision.admit == (2,)
    assert decision.waiting_for[1] == ((2, "storage"),)


def test_a_cluster_limit_of_one_admits_one():
    table = limits(special={(1, "live"): 1})
    assert decide([Waiting(1, "live", 1, 2), Waiting(2, "live", 1, 3)], Counter(), table).admit == (1,)


def test_a_later_job_cannot_take_the_slot_an_earlier_one_waits_for():
    in_use = Counter({(1, "live"): 2})  # host 1 full; the VSM job waits for it
    waiting = [Waiting(1, "live_vsm", 1, 2), Waiting(2, "storage", 2, 2), Waiting(3, "live", 2, 3)]

    decision = decide(waiting, in_use, limits())

    assert decision.admit == (2, 3)  # host 2's slots are not what job 1 waits for
    # Once a slot blocks the VSM job it is held for it: a later move cannot take it as it frees.
    in_use = Counter({(1, "live"): 2, (2, "live"): 1})
    decision = decide(
        [Waiting(1, "live_vsm", 1, 2), Waiting(4, "live", 2, 3), Waiting(5, "live", 1, 3)], in_use, limits()
    )
    assert decision.admit == (4,)
    assert decision.waiting_for == {1: ((1, "live"),), 5: ((1, "live"),)}


def test_it_never_exceeds_a_limit_for_random_mixes():
    rng = random.Random(7)
    for _ in range(300):
        table = {(h, s): rng.randint(1, 3) for h in range(1, 5) for s in ("live", "storage")}
        waiting = []
        for i in range(rng.randint(1, 25)):
            kind = rng.choice(["live", "live_vsm", "storage", "quick", "network"])
            src = rng.randint(1, 4)
            dst = src if kind == "storage" else rng.choice([h for h in range(1, 5) if h != src])
            waiting.append(Waiting(i, kind, src, dst))
        decision = decide(waiting, Counter(), table)
        used = Counter()
        for job in waiting:
            if job.job_id in decision.admit:
                used.update(slots_needed(job.kind, job.source, job.destination))
        assert all(used[s] <= table[s] for s in used)
        assert set(decision.admit).isdisjoint(decision.waiting_for)
        assert len(decision.admit) + len(decision.waiting_for) == len(waiting)
