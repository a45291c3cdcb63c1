"""A pair's link as its past moves measured it (pure): enough samples replace the inventory's NIC speed."""

from types import SimpleNamespace

import pytest

from fabric.hyperv.api import MoveRequest
from fabric.hyperv.precopy import BYTES_PER_GBIT
from fabric.sim.simulator import Fabric
from fabric.sim.world import GIB, MB, SimHost, SimShare, SimTuning, SimVm
from migrations_ui.planning.estimates import (
    MAX_SAMPLES,
    MIN_SAMPLES,
    Figures,
    HostRates,
    MoveSpec,
    PairRate,
    PastMove,
    estimate_move,
    measured_link,
    move_spec,
)
from migrations_ui.planning.ordering import simulate
from migrations_ui.planning.planner import PlanOptions, plan_moves
from migrations_ui.preflight.facts import HostFacts, Kind, VmFacts

F = Figures(prepare_s=5.0, resume_s=0.2)
GBIT = BYTES_PER_GBIT


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture (tests/conftest.py's autouse fixtures ask for it): pure tests."""
    return SimpleNamespace()


def past(gbps: float, wire_gib: float = 8) -> PastMove:
    """A move that put wire_gib on a link of gbps, with the fixed prepare and resume around it."""
    return PastMove(wire_gib * GIB, F.prepare_s + wire_gib * GIB / (gbps * GBIT) + F.resume_s)


def test_fewer_than_the_least_samples_leave_the_inventory_standing():
    assert MIN_SAMPLES == 5
    assert measured_link([past(3.0)] * (MIN_SAMPLES - 1), F) is None
    rate = measured_link([past(3.0)] * MIN_SAMPLES, F)
    assert rate == PairRate(pytest.approx(3.0 * GBIT), MIN_SAMPLES)
    assert rate.gbps == pytest.approx(3.0)


def test_the_median_reads_the_link_through_two_odd_moves():
    moves = [past(3.0), past(0.5), past(3.1), past(2.9), past(9.0)]
    assert measured_link(moves, F).gbps == pytest.approx(3.0)


def test_moves_that_cannot_tell_do_not_count():
    nothing_sent = PastMove(0, 60.0)
    too_short = PastMove(GIB, F.prepare_s)  # no time left for a copy once prepare and resume are off
    moves = [past(3.0)] * (MIN_SAMPLES - 1) + [nothing_sent, too_short]
    assert measured_link(moves, F) is None


def test_only_the_newest_moves_count():
    newest_first = [past(2.0)] * MAX_SAMPLES + [past(10.0)] * MAX_SAMPLES
    rate = measured_link(newest_first, F)
    assert rate.gbps == pytest.approx(2.0) and rate.samples == MAX_SAMPLES


def live_spec(measured: PairRate | None = None, option="smb") -> MoveSpec:
    vm = VmFacts("1", "vm", "running", 16 * GIB, "10.0", "\\\\fs\\v")
    return move_spec(
        vm, Kind.LIVE, HostFacts("a", "a", performance_option=option), HostFacts("b", "b"), measured=measured
    )


def test_a_measured_link_replaces_the_nics_in_the_estimate():
    ten = HostRates(10.0)
    measured = live_spec(PairRate(2.0 * GBIT, 7))
    assert (measured.link_bytes_s, measured.link_samples) == (2.0 * GBIT, 7)
    # The same as if both hosts had 2 Gbit/s NICs: the inventory's 10 no longer counts.
    assert estimate_move(measured, ten, ten, F).duration_s == pytest.approx(
        estimate_move(live_spec(), HostRates(2.0), HostRates(2.0), F).duration_s
    )
    assert estimate_move(measured, ten, ten, F).duration_s > 4 * estimate_move(live_spec(), ten, ten, F).memory_s
    # The stream's cap still holds: TCP on a measured 10 Gbit/s link moves 2.5.
    tcp = estimate_move(live_spec(PairRate(10.0 * GBIT, 5), "tcpip"), ten, ten, F)
    assert tcp.duration_s == pytest.approx(estimate_move(live_spec(None, "tcpip"), ten, ten, F).duration_s)


def test_a_quick_move_ignores_the_link():
    vm = VmFacts("1", "vm", "running", 4 * GIB, "10.0", "C:\\ClusterStorage\\Volume1\\vm")
    spec = move_spec(vm, Kind.QUICK, HostFacts("a", "a"), HostFacts("b", "b"), measured=PairRate(GBIT, 9))
    assert spec.link_bytes_s == 0 and spec.link_samples == 0


def test_the_plan_times_a_measured_pair_with_its_link_and_says_so():
    from tests.migrations_ui.planning.test_planner import host, vm

    a, b, c, d = host("hv-a"), host("hv-b"), host("hv-c"), host("hv-d")
    moves = [(vm("web1", 16), a, b), (vm("web2", 16), c, d)]
    slow = PairRate(1.0 * GBIT, 6)  # the a -> b path delivers 1 Gbit/s, whatever the NICs say

    plan = plan_moves(moves, PlanOptions(measured={(a.fqdn, b.fqdn): slow}))

    by_vm = {m.vm: m for m in plan.moves}
    assert by_vm["web1"].estimate_basis == "measured" and by_vm["web1"].spec.link_samples == 6
    assert by_vm["web2"].estimate_basis == "inventory"
    assert plan.measured_count == 1
    # Compressed: 2 Gbit/s of memory on 1 Gbit/s, against the 5 the CPU caps a stream at on 10.
    assert by_vm["web1"].alone.duration_s > 2 * by_vm["web2"].alone.duration_s
    # The timeline runs the measured move at its link too (each move has its hosts to itself here).
    assert by_vm["web1"].end_s - by_vm["web1"].start_s == pytest.approx(by_vm["web1"].alone.duration_s)
    assert plan.makespan_s >= plan.lower_bound_s
    unmeasured = plan_moves(moves, PlanOptions())
    assert unmeasured.measured_count == 0 and {m.estimate_basis for m in unmeasured.moves} == {"inventory"}


def test_measured_on_a_fabric_whose_links_differ_from_the_inventory_the_estimate_meets_the_simulator():
    """The inventory says 10 Gbit/s; the simulated path delivers 3. Five moves measure it, and the
    sixth is estimated to the simulator's second, where the inventory's figure is far off."""
    tuning = SimTuning(prepare_s=5.0)
    f = Fabric(1, tuning)
    f.add_share(SimShare("\\\\fs01.t\\vms", "fs01.t", "fs01.t"))
    for name in ("h0", "h1"):
        f.add_host(SimHost(f"{name}.t", name, "127.0.0.1", nic_gbps=3.0, performance_option="smb",
                           shares=["\\\\fs01.t\\vms"]))  # fmt: skip
    figures = Figures(prepare_s=tuning.prepare_s, resume_s=tuning.resume_s)
    inventory = HostRates(10.0)
    past_moves, specs, actual = [], [], []
    for k, gib in enumerate((4, 8, 2, 16, 6, 12)):
        f.add_vm(SimVm(f"vm{k}", f"vm{k}", "h0.t", memory_bytes=gib * GIB, dirty_rate_mbps=30.0,
                       config_path=f"\\\\fs01.t\\vms\\vm{k}", switch_names=["vSwitch-Prod"]))  # fmt: skip
        started = f.now
        migration_id = f.start_migration(MoveRequest(f"vm{k}", "h0.t", "h1.t", "live"))
        f.advance(3600)
        m, status = f.migrations[migration_id], f.migration_status(migration_id)
        assert m.state == "completed"
        past_moves.insert(0, PastMove(status.bytes_sent, m.ended_at - started))
        specs.append(MoveSpec(f"vm{k}", Kind.LIVE, "h0.t", "h1.t", "smb", gib * GIB, 30.0 * MB))
        actual.append(m.ended_at - started)
        f.advance(1)
        f.vms[f"vm{k}"].host = "h0.t"  # back where it came from, for the next round

    rate = measured_link(past_moves[1:], figures)  # the first five moves
    assert rate.gbps == pytest.approx(3.0, rel=0.01)
    last = specs[-1]
    measured = MoveSpec(**{**vars(last), "link_bytes_s": rate.link_bytes_s, "link_samples": rate.samples})
    assert estimate_move(measured, inventory, inventory, figures).duration_s == pytest.approx(actual[-1], rel=0.01)
    assert estimate_move(last, inventory, inventory, figures).duration_s < 0.5 * actual[-1]
    limits = {(h, s): 1 for h in ("h0.t", "h1.t") for s in ("live", "storage")}
    timeline = simulate([measured], [0], {"h0.t": inventory, "h1.t": inventory}, limits, figures)
    assert timeline.end_s[0] == pytest.approx(actual[-1], rel=0.01)
