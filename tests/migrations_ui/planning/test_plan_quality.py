"""How good plans are, not only whether they are allowed: the bounds they are measured against and
the choices that bring them closer (bench/planner.py measures the same on generated fabrics)."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from migrations_ui.planning.estimates import Figures, HostRates, MoveSpec
from migrations_ui.planning.ordering import Flow, _packing_bound, hold_back, lower_bound, spread
from migrations_ui.planning.planner import (
    PICK_PACKED,
    PICK_SHORT_LAST,
    PlanOptions,
    plan_evacuation,
    plan_rebalance,
)
from migrations_ui.preflight.facts import Kind
from tests.migrations_ui.planning.test_planner import GIB, _random_fabric, host, sweep, vm

PICKS = (PICK_SHORT_LAST, PICK_PACKED)


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture (asked for by tests/conftest.py's autouse fixtures): pure tests."""
    return SimpleNamespace()


@pytest.mark.parametrize(
    ("durations", "slots", "expected"),
    [
        ([5, 4, 3], 2, 7),  # of 3 moves on 2 slots, two run one after the other: at least 4 + 3
        ([3, 3, 2, 2, 2], 2, 6),  # of 5 on 2, one slot runs 3: at least 2 + 2 + 2
        ([1] * 9, 4, 3),
        ([9, 1], 2, 0),  # no more moves than slots: nothing to add
    ],
)
def test_it_counts_moves_that_must_follow_each_other_in_the_packing_bound(durations, slots, expected):
    assert _packing_bound(sorted(durations, reverse=True), slots) == expected


def test_it_ends_five_equal_moves_on_four_slots_at_the_packing_bound():
    source = host("hv-a", live=4, storage=4)
    others = [host(f"hv-{c}", live=4, storage=4) for c in "bcde"]
    vms = [vm(f"v{k}", 16) for k in range(5)]
    options = PlanOptions(dirty_mbps={v.id: 10.0 for v in vms})

    plan = plan_evacuation(source, vms, [source, *others], options)

    specs = [m.spec for m in plan.moves]
    strong = lower_bound(specs, {}, plan.limits, strong=True)
    one = plan.moves[0].alone.duration_s
    assert plan.lower_bound_s == pytest.approx(5 * one / 4)  # the LB: work per slot
    assert strong == pytest.approx(2 * one)  # one slot must run two of them
    assert plan.makespan_s == pytest.approx(strong, rel=1e-6)  # and the plan does no worse


@pytest.mark.parametrize("slots", [1, 2, 4])
def test_it_never_ends_a_plan_before_the_strong_bound(slots):
    for seed in range(8):
        hosts, vms, options = _random_fabric(seed, slots)
        plans = [plan_rebalance(hosts, vms, options)]
        plans += [plan_evacuation(h, vms[h.fqdn], hosts, options, resident=vms) for h in hosts[:3]]
        for plan in plans:
            if not plan.moves:
                continue
            strong = lower_bound([m.spec for m in plan.moves], options.rates, plan.limits, strong=True)
            assert plan.lower_bound_s <= strong + 1e-6
            assert strong <= plan.makespan_s * (1 + 1e-9)


def _crowded_sender():
    """hv0 holds six 48 GiB VMs and two small ones, three empty hosts beside it, 4 slots each."""
    hosts = [host(f"hv{i}", memory_gib=512, live=4, storage=4) for i in range(4)]
    sizes = [48] * 6 + [16, 4]
    vms = {hosts[0].fqdn: [vm(f"v{k}", m) for k, m in enumerate(sizes)]} | {h.fqdn: [] for h in hosts[1:]}
    hosts = [replace(h, memory_available_bytes=h.memory_total_bytes - sum(v.memory_bytes for v in vms[h.fqdn]))
             for h in hosts]  # fmt: skip
    options = PlanOptions(dirty_mbps={v.id: 20.0 for on in vms.values() for v in on})
    return hosts, vms, options


def test_it_keeps_the_last_move_of_a_busy_sender_short():
    hosts, vms, options = _crowded_sender()

    plan = plan_rebalance(hosts, vms, options)

    # Five 48 GiB VMs (the VM closest to the excess each time) would take two on one of the 4 slots.
    assert sorted(m.spec.memory_bytes // GIB for m in plan.moves) == [16, 48, 48, 48, 48]
    one = max(m.alone.duration_s for m in plan.moves)
    assert plan.makespan_s < 0.75 * 2 * one
    assert plan == plan_rebalance(hosts, vms, options, picks=(PICK_SHORT_LAST,))
    assert sweep(plan) == []
    # Still balanced: every host within average use + the tolerance.
    used = {h.fqdn: h.memory_total_bytes - h.memory_available_bytes for h in hosts}
    for m in plan.moves:
        used[m.source] -= m.spec.memory_bytes
        used[m.destination] += m.spec.memory_bytes
    average = sum(used.values()) / sum(h.memory_total_bytes for h in hosts)
    assert all(u / (512 * GIB) <= average + options.tolerance for u in used.values())


def test_it_fills_a_busy_senders_slots_in_even_lanes():
    """hv0 holds five 64 GiB, four 24 GiB and four 4 GiB VMs; three empty hosts, 4 slots each."""
    hosts = [host(f"hv{i}", memory_gib=768, live=4, storage=4) for i in range(4)]
    sizes = [64] * 5 + [24] * 4 + [4] * 4
    vms = {hosts[0].fqdn: [vm(f"v{k}", m) for k, m in enumerate(sizes)]} | {h.fqdn: [] for h in hosts[1:]}
    hosts = [replace(h, memory_available_bytes=h.memory_total_bytes - sum(v.memory_bytes for v in vms[h.fqdn]))
             for h in hosts]  # fmt: skip
    options = PlanOptions(dirty_mbps={v.id: 20.0 for on in vms.values() for v in on})

    packed = plan_rebalance(hosts, vms, options, picks=(PICK_PACKED,))
    plan = plan_rebalance(hosts, vms, options)

    # Five 64 GiB VMs (the VM closest to the excess each time) would run two in a row on one slot.
    # Packed sends four, one per slot, and a 24 GiB one after two of them: one round and a bit.
    assert sorted(m.spec.memory_bytes // GIB for m in packed.moves) == [24, 24, 64, 64, 64, 64]
    alone = {m.spec.memory_bytes // GIB: m.alone.duration_s for m in packed.moves}
    assert packed.makespan_s < 0.8 * 2 * alone[64]
    assert packed.makespan_s == pytest.approx(alone[64] + alone[24], rel=0.02)  # the busiest lane
    # The plan kept is the one that ends soonest of all the ways.
    each = [plan_rebalance(hosts, vms, options, picks=(pick,)).makespan_s for pick in PICKS]
    assert plan.makespan_s <= min(each) + 1e-6
    assert sweep(plan) == []


def test_it_keeps_the_rebalance_placement_that_ends_sooner():
    for seed in range(6):
        hosts, vms, options = _random_fabric(seed, 4)
        each = [plan_rebalance(hosts, vms, options, picks=(pick,)).makespan_s for pick in PICKS]
        plan = plan_rebalance(hosts, vms, options)
        assert plan.makespan_s <= min(each) + 1e-6
        assert sweep(plan) == []


def test_it_puts_evacuations_with_capped_streams_on_the_bound():
    """The class of plans where moves on a host do not slow each other: within 2% of the strong bound."""
    hosts = [host(f"hv{i:02d}", memory_gib=512, live=2, storage=2, performance_option="compression") for i in range(6)]
    rates = {h.fqdn: HostRates(10.0, 800.0) for h in hosts}
    sizes = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
    ratios = []
    for i, source in enumerate(hosts):
        vms = [vm(f"v{i}-{k}", sizes[(k * 7 + i) % len(sizes)]) for k in range(12)]
        options = PlanOptions(rates=rates, dirty_mbps={v.id: 5.0 + 13.0 * (k % 5) for k, v in enumerate(vms)})
        plan = plan_evacuation(source, vms, hosts, options)
        assert len(plan.moves) == 12 and sweep(plan) == []
        strong = lower_bound([m.spec for m in plan.moves], rates, plan.limits, strong=True)
        ratios.append(plan.makespan_s / strong)
    assert max(ratios) <= 1.02


def test_spread_lays_a_group_evenly_through_an_order_by_seconds():
    # Two copies of 10 s among four streams of 5 s: one copy at the start, the other half way.
    duration = [10.0, 10.0, 5.0, 5.0, 5.0, 5.0]
    assert spread([0, 1, 2, 3, 4, 5], duration, {0, 1}) == [0, 2, 3, 1, 4, 5]


def _two_copies_into_one_slow_disk():
    # Two Live (VSM) moves from different hosts into one whose disk takes 0.5 GB/s: started together,
    # they share that disk and the longer one ends late (bench/RESULTS.md, issue 18).
    rates = {"a": HostRates(25.0, 1500.0), "b": HostRates(25.0, 1500.0), "c": HostRates(10.0, 500.0)}
    limits = {(h, s): 4 for h in rates for s in ("live", "storage")}
    specs = [
        MoveSpec(f"v{k}", Kind.LIVE_VSM, source, "c", "compression", memory * GIB, 36e6, files * GIB)
        for k, (source, memory, files) in enumerate((("a", 24, 22), ("b", 16, 9)))
    ]
    return specs, rates, limits


def test_a_held_move_starts_at_its_time_and_its_slot_serves_another_meanwhile():
    specs, rates, limits = _two_copies_into_one_slow_disk()
    limits = {**limits, ("c", "live"): 1, ("c", "storage"): 1}  # one move at a time into c
    flow = Flow(specs, rates, limits, Figures())
    plain = flow.run([1, 0])
    held = flow.run([1, 0], {1: 30.0})
    assert plain.start_s == (plain.end_s[1], 0.0)  # in order: v1 first
    assert held.start_s[0] == 0.0  # v1 is held: v0 takes c's slot at once, though queued behind it
    assert held.start_s[1] == pytest.approx(held.end_s[0])  # after 30 s it waits for the slot in line


def test_holding_a_copy_back_ends_the_plan_sooner_than_any_order():
    specs, rates, limits = _two_copies_into_one_slow_disk()
    flow = Flow(specs, rates, limits, Figures())
    best = min(flow.run(order).makespan_s for order in ([0, 1], [1, 0]))
    timeline, holds = hold_back(flow, [0, 1], flow.run([0, 1]))
    assert list(holds) == [1] and timeline.start_s[1] >= holds[1] > 0
    assert timeline.makespan_s < best - 2.0
    assert timeline.makespan_s >= lower_bound(specs, rates, limits, strong=True)
