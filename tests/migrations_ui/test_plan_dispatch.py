"""The dispatch order for moves that copy files, and destinations chosen for how fast a move goes there."""

from types import SimpleNamespace

import pytest

from migrations_ui.estimates import Figures, HostRates, MoveSpec
from migrations_ui.evacuation import PlanOptions, plan_evacuation
from migrations_ui.ordering import alone_estimates, simulate, slot_overuse
from migrations_ui.plan_dispatch import disk_order
from migrations_ui.plan_search import _contended
from tests.migrations_ui.test_evacuation import _random_fabric, host, vm

LOCAL = "D:\\Hyper-V"


def _rates(source, fast, slow) -> dict[str, HostRates]:
    return {source.fqdn: HostRates(10.0, 1500.0), fast.fqdn: HostRates(10.0, 1500.0), slow.fqdn: HostRates(10.0, 500.0)}


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture (asked for by tests/conftest.py's autouse fixtures): pure tests."""
    return SimpleNamespace()


def test_a_vm_on_a_local_disk_goes_where_its_files_copy_fastest():
    source = host("hv-a", shares=(), vm_path=LOCAL)
    fast = host("hv-b", free_gib=100)  # fuller, but its disk keeps up with the source's
    slow = host("hv-c")  # emptier, with a disk a third as fast
    rates = {
        source.fqdn: HostRates(10.0, 1500.0),
        fast.fqdn: HostRates(10.0, 1500.0),
        slow.fqdn: HostRates(10.0, 500.0),
    }
    moving = vm("v1", 4, folder=LOCAL)

    plan = plan_evacuation(source, [moving], [source, fast, slow], PlanOptions(rates=rates), resident={})

    assert [(m.vm, m.destination, m.transfer_type) for m in plan.moves] == [("v1", fast.fqdn, "live_vsm")]


def test_the_slower_destination_still_takes_what_the_faster_cannot():
    source = host("hv-a", shares=(), vm_path=LOCAL)
    fast = host("hv-b", memory_gib=64, free_gib=30)  # room for one 16 GiB VM with 10% headroom, not two
    slow = host("hv-c")
    rates = {
        source.fqdn: HostRates(10.0, 1500.0),
        fast.fqdn: HostRates(10.0, 1500.0),
        slow.fqdn: HostRates(10.0, 500.0),
    }
    vms = [vm("v1", 16, folder=LOCAL), vm("v2", 16, folder=LOCAL)]

    plan = plan_evacuation(source, vms, [source, fast, slow], PlanOptions(rates=rates), resident={})

    assert sorted(m.destination for m in plan.moves) == [fast.fqdn, slow.fqdn]
    assert not plan.left


@pytest.mark.parametrize("seed", range(6))
def test_the_dispatch_order_starts_every_move_once_within_the_slots(seed):
    hosts, vms, options = _random_fabric(seed, 2)
    source = max(hosts, key=lambda h: (len(vms[h.fqdn]), h.fqdn))
    plan = plan_evacuation(source, vms[source.fqdn], hosts, options, resident=vms)
    specs = [m.spec for m in plan.moves]
    alone = alone_estimates(specs, options.rates)

    order = disk_order(specs, alone, plan.limits)

    assert sorted(order) == list(range(len(specs)))
    timeline = simulate(specs, order, options.rates, plan.limits)
    moves = [(s.kind, s.source, s.destination, timeline.start_s[j], timeline.end_s[j]) for j, s in enumerate(specs)]
    assert not slot_overuse(moves, plan.limits)
    assert timeline.makespan_s >= max(e.duration_s for e in alone) * (1 - 1e-9)


def test_only_hosts_whose_moves_slow_each_other_are_candidates_for_a_cap():
    capped = MoveSpec("v1", "live", "a", "b", "compression", memory_bytes=8 * 1024**3)  # well below the link
    smb = MoveSpec("v2", "live", "c", "d", "smb", memory_bytes=8 * 1024**3)  # one stream fills the link
    copy = MoveSpec("v3", "network", "e", "f", "compression", storage_bytes=20 * 1024**3)
    limits = {(h, kind): 2 for h in "abcdef" for kind in ("live", "storage")}

    assert _contended([capped, smb, copy], {}, limits, Figures()) == {"c", "d", "e", "f"}
    assert _contended([capped], {}, limits, Figures()) == set()
