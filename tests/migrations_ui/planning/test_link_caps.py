"""Where the link, not the live-migration limit, is the bottleneck: the plan caps a host's moves at
once and says that a higher limit would not help (issue 20, deliver 7)."""

from types import SimpleNamespace

import pytest

from fabric.sim.simulator import Fabric
from fabric.sim.world import GIB, SimDisk, SimHost, SimShare, SimTuning, SimVm
from migrations_ui.planning.estimates import HostRates, MoveSpec
from migrations_ui.planning.ordering import link_fill, simulate, slot_overuse
from migrations_ui.planning.planner import LinkCap, PlanOptions, plan_evacuation, plan_moves
from migrations_ui.preflight.facts import Kind
from tests.migrations_ui.planning.test_planner import demo_facts, host, run_through_admission, vm


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture (asked for by tests/conftest.py's autouse fixtures): pure tests."""
    return SimpleNamespace()


def spec(option, kind=Kind.LIVE, source="a", destination="b"):
    return MoveSpec("vm", kind, source, destination, option, 8 * GIB, 20e6)


@pytest.mark.parametrize(
    ("option", "gbps", "fill"),
    [
        ("smb", 10.0, 1),  # SMB has no stream cap: one move fills the link
        ("compression", 10.0, 4),  # 5 Gbit/s of memory compressed to 2.5 on the wire: four fill 10 GbE
        ("tcpip", 10.0, 4),  # one TCP stream uses about a quarter of 10 GbE
        ("tcpip", 1.0, 1),  # ... and all of 1 GbE
        ("compression", 25.0, 10),
    ],
)
def test_the_moves_that_fill_a_link_are_its_rate_over_one_moves(option, gbps, fill):
    rates = {"a": HostRates(gbps), "b": HostRates(gbps)}
    assert link_fill([spec(option)], rates) == {"a": fill, "b": fill}


def test_a_faster_host_fills_its_link_with_moves_to_slower_ones():
    # a (10 GbE) sends to b (1 GbE): each SMB move is held to 1 Gbit/s, so ten of them fill a's link.
    rates = {"a": HostRates(10.0), "b": HostRates(1.0)}
    assert link_fill([spec("smb")], rates) == {"a": 10, "b": 1}


def test_a_host_with_a_quick_move_is_never_capped():
    # A Quick move copies through the cluster's storage: capping the host's live slots would hold it back.
    specs = [spec("smb"), spec("smb", Kind.QUICK, "c", "a")]
    assert link_fill(specs, {}) == {"b": 1}


def _evacuation(option, gbps, *, live=4, dirty=20.0, count=8, memory_gib=8):
    source = host("hv-s1", live=live, storage=live, memory_gib=1024, performance_option=option)
    others = [host(f"hv-d{i}", live=live, storage=live, memory_gib=1024, performance_option=option) for i in range(4)]
    vms = [vm(f"v{k}", memory_gib) for k in range(count)]
    rates = {h.fqdn: HostRates(gbps, 800.0) for h in (source, *others)}
    options = PlanOptions(rates=rates, dirty_mbps={v.id: dirty for v in vms})
    return plan_evacuation(source, vms, [source, *others], options), rates


def test_a_link_that_one_move_fills_caps_the_moves_at_once_and_the_plan_says_so():
    plan, rates = _evacuation("tcpip", 1.0)

    caps = {c.host: c for c in plan.link_caps}
    sender = caps["hv-s1.contoso.test"]
    assert (sender.cap, sender.limit, sender.nic_gbps) == (1, 4, 1.0)
    assert sender.note == (
        "hv-s1's 1 Gbit/s link is the bottleneck: one move at a time ends no later than 4 at once; "
        "a higher live-migration limit would not help."
    )
    assert {"host": "hv-s1.contoso.test", "limit": 4, "cap": 1, "nic_gbps": 1.0} in plan.as_json()["link_caps"]
    # The timeline keeps the cap: never two moves at once on the sender...
    spans = [(m.transfer_type, m.source, m.destination, m.start_s, m.end_s) for m in plan.moves]
    assert slot_overuse(spans, plan.run_limits) == []
    # ... and ends sooner than the same order within the hosts' limits, where four share 1 Gbit/s and
    # each pre-copy pass lasts four times as long.
    specs = [m.spec for m in plan.moves]
    uncapped = simulate(specs, range(len(specs)), rates, plan.limits)
    assert plan.makespan_s < uncapped.makespan_s


def test_other_fabrics_where_the_link_is_the_bottleneck():
    # SMB fills 10 GbE alone; with big VMs dirtying fast, sharing costs more than the prepare overlap gains.
    plan, _ = _evacuation("smb", 10.0, dirty=100.0, memory_gib=16)
    assert "hv-s1.contoso.test" in {c.host for c in plan.link_caps}
    plan, _ = _evacuation("compression", 1.0, live=4)
    assert plan.link_caps and all(c.cap == 1 for c in plan.link_caps)


def test_a_cap_above_one_is_said_in_the_plural():
    note = LinkCap("hv-s1.contoso.test", "hv-s1", 4, 2, 2.5).note
    assert note == (
        "hv-s1's 2.5 Gbit/s link is the bottleneck: 2 moves at a time end no later than 4 at once; "
        "a higher live-migration limit would not help."
    )
    assert note.params == {"host": "hv-s1", "gbps": 2.5, "cap": 2, "limit": 4}


def test_a_link_that_is_not_the_bottleneck_leaves_the_limit_alone():
    # Compression on 10 GbE: a stream sends 2.5 Gbit/s, four fill the link, the limit is 2.
    plan, _ = _evacuation("compression", 10.0, live=2)

    assert plan.link_caps == () and plan.as_json()["link_caps"] == []
    assert plan.run_limits == plan.limits
    assert [m.start_s for m in plan.moves[:2]] == [0.0, 0.0]  # both slots used from the start


def test_a_cap_that_would_end_later_is_not_kept():
    # SMB fills 10 GbE alone, but with 5 s of preparing per move, one at a time loses the overlap
    # of every prepare with another move's copy: the limit stays.
    plan, _ = _evacuation("smb", 10.0, live=2, memory_gib=4)
    assert plan.link_caps == ()


# --- on the simulated fabric ---------------------------------------------------------------------

SHARE = "\\\\fs01.contoso.test\\vms"


def _slow_link_fabric() -> Fabric:
    """hv-s1 sends over 1 Gbit/s with plain TCP (live limit 4) to two 10 GbE hosts; six running VMs."""
    fabric = Fabric(7, SimTuning(prepare_s=5.0))
    fabric.add_share(SimShare(SHARE, "fs01.contoso.test", "fs01.contoso.test"))
    for name, gbps in (("hv-s1", 1.0), ("hv-d1", 10.0), ("hv-d2", 10.0)):
        fabric.add_host(
            SimHost(
                f"{name}.contoso.test", name, "127.0.0.1", nic_gbps=gbps, performance_option="tcpip",
                max_live_migrations=4, max_storage_migrations=4, shares=[SHARE], vm_path=SHARE,
                migration_networks=["10.0.0.0/24"],
            )
        )  # fmt: skip
    for k, (memory, dirty) in enumerate([(4, 20.0), (2, 10.0), (4, 40.0), (1, 5.0), (3, 20.0), (2, 30.0)]):
        sim = SimVm(f"vm{k}", f"vm{k}", "hv-s1.contoso.test", memory_bytes=memory * GIB, dirty_rate_mbps=dirty,
                    config_path=f"{SHARE}\\vm{k}", switch_names=["vSwitch-Prod"])  # fmt: skip
        sim.disks.append(SimDisk(f"{SHARE}\\vm{k}\\vm{k}.vhdx", 20 * GIB))
        fabric.add_vm(sim)
    return fabric


def test_on_the_simulator_the_capped_plan_ends_no_later_than_the_hosts_limits_would():
    hosts, vms, options = demo_facts(_slow_link_fabric())
    source = hosts["hv-s1.contoso.test"]
    plan = plan_evacuation(source, vms[source.fqdn], list(hosts.values()), options, resident=vms)
    assert len(plan.moves) == 6 and [c.host for c in plan.link_caps] == [source.fqdn]

    # The same moves queued in the plan's order, admitted within the caps, then within the hosts' limits.
    capped = run_through_admission(_slow_link_fabric(), plan, limits=plan.run_limits)
    uncapped = run_through_admission(_slow_link_fabric(), plan)

    assert capped < uncapped  # 205 s against 494 s: four TCP streams sharing 1 Gbit/s re-send more
    assert capped == pytest.approx(plan.makespan_s, rel=0.02, abs=1.0)  # the estimate is the capped run's


def test_fewer_moves_at_once_where_a_copy_shares_the_link_with_capped_streams():
    # Four compressed streams do not fill 10 GbE (link_fill says 4), but a copy beside three of them
    # gets a quarter of the NIC, half what its disks could send: three at a time end sooner than four.
    source, destination = (
        host(n, live=4, storage=4, memory_gib=1024, performance_option="compression") for n in ("hv-s1", "hv-s2")
    )
    vms = [vm("off1", 8, state="off", folder="D:\\VMs"), *(vm(f"v{k}", 8) for k in range(3))]
    rates = {h.fqdn: HostRates(10.0, 500.0) for h in (source, destination)}
    options = PlanOptions(rates=rates, dirty_mbps={v.id: 40.0 for v in vms}, stopped="move")
    plan = plan_moves([(v, source, destination) for v in vms], options)
    assert [m.transfer_type for m in plan.moves if m.vm == "off1"] == [Kind.NETWORK]
    assert link_fill([m.spec for m in plan.moves], rates)[source.fqdn] == 4
    assert {c.host: c.cap for c in plan.link_caps} == {source.fqdn: 3, destination.fqdn: 3}
    specs, order = [m.spec for m in plan.moves], range(len(plan.moves))
    assert plan.makespan_s == pytest.approx(simulate(specs, order, rates, plan.run_limits).makespan_s)
    assert plan.makespan_s < simulate(specs, order, rates, plan.limits).makespan_s - 1.0
    assert not slot_overuse(
        [(m.transfer_type, m.source, m.destination, m.start_s, m.end_s) for m in plan.moves], plan.run_limits
    )
