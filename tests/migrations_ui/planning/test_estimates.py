import math
from types import SimpleNamespace

import pytest

from fabric.hyperv import precopy
from fabric.hyperv.api import MoveRequest
from fabric.sim.simulator import Fabric
from fabric.sim.world import GIB, MB, SimDisk, SimHost, SimShare, SimTuning, SimVm
from migrations_ui.planning.estimates import Figures, HostRates, MoveSpec, estimate_move, move_spec
from migrations_ui.planning.ordering import simulate
from migrations_ui.preflight.facts import DiskFacts, HostFacts, Kind, VmFacts

TEN, ONE = HostRates(10.0, 500.0), HostRates(1.0, 500.0)


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture, which tests/conftest.py's autouse fixtures ask for: these
    tests are pure and run with -p no:django too."""
    return SimpleNamespace()


SHARE = "\\\\fs01.contoso.test\\vms"


def live(memory_gib=8, dirty_mbps=20.0, option="compression", kind=Kind.LIVE, files_gib=0):
    return MoveSpec("vm", kind, "a", "b", option, memory_gib * GIB, dirty_mbps * MB, files_gib * GIB)


def test_it_adds_prepare_precopy_and_resume():
    f = Figures(prepare_s=5.0)
    spec = live(8, 40.0)
    rate = min(10 * precopy.BYTES_PER_GBIT / 0.5, precopy.COMPRESSION_STREAM_GBPS * precopy.BYTES_PER_GBIT)
    pre = precopy.plan_precopy(spec.memory_bytes, rate, spec.dirty_bytes_s)

    e = estimate_move(spec, TEN, TEN, f)

    assert e.duration_s == pytest.approx(5.0 + pre.duration_s + f.resume_s)
    assert e.memory_sent_bytes == pytest.approx(pre.total_bytes)
    assert e.wire_bytes == pytest.approx(pre.total_bytes * 0.5)  # compressed on the wire
    assert e.converged


@pytest.mark.parametrize("option", ["tcpip", "compression", "smb"])
@pytest.mark.parametrize("rates", [TEN, ONE])
def test_it_grows_with_memory(option, rates):
    durations = [estimate_move(live(m, 60.0, option), rates, rates).duration_s for m in (1, 2, 4, 8, 16, 32, 64)]
    assert durations == sorted(durations)
    assert len(set(durations)) == len(durations)


def test_it_grows_with_the_dirty_rate():
    durations = [estimate_move(live(16, d), TEN, TEN).duration_s for d in (0, 50, 200, 400)]
    assert durations == sorted(durations)


def test_compression_is_faster_where_the_link_is_the_bottleneck():
    # 1 GbE: half the bytes on the wire, and the CPU cap is far above the link.
    assert estimate_move(live(16, 5.0, "compression"), ONE, ONE).memory_s == pytest.approx(
        estimate_move(live(16, 5.0, "tcpip"), ONE, ONE).memory_s * 0.5, rel=0.05
    )
    assert (
        estimate_move(live(16, 5.0, "compression"), ONE, ONE).duration_s
        < estimate_move(live(16, 5.0, "smb"), ONE, ONE).duration_s
    )


def test_tcp_uses_a_quarter_of_ten_gbe_and_smb_the_whole_link():
    tcp = estimate_move(live(32, 0.0, "tcpip"), TEN, TEN).memory_s
    smb = estimate_move(live(32, 0.0, "smb"), TEN, TEN).memory_s
    assert tcp == pytest.approx(4 * smb, rel=0.01)


def test_moves_sharing_a_link_slow_down_unless_their_stream_is_capped():
    assert estimate_move(live(8, 20.0, "smb"), TEN, TEN, concurrent=2).memory_s > (
        1.9 * estimate_move(live(8, 20.0, "smb"), TEN, TEN).memory_s
    )
    # Two compressed streams (2.5 Gbps on the wire each) fit in 10 GbE: neither notices the other.
    assert estimate_move(live(8, 20.0), TEN, TEN, concurrent=2).duration_s == pytest.approx(
        estimate_move(live(8, 20.0), TEN, TEN).duration_s
    )


def test_a_busy_guest_on_a_slow_link_never_converges():
    e = estimate_move(live(4, 200.0, "tcpip"), ONE, ONE)
    assert not e.converged
    assert e.memory_sent_bytes == pytest.approx(11 * 4 * GIB)  # ten passes of all memory, then the rest


def test_files_cross_the_link_at_the_slower_of_storage_and_link():
    vsm = estimate_move(live(4, 10.0, kind=Kind.LIVE_VSM, files_gib=50), TEN, HostRates(10.0, 250.0))
    assert vsm.storage_s == pytest.approx(50 * GIB / 250e6)
    offline = estimate_move(MoveSpec("vm", Kind.NETWORK, "a", "b", "compression", 0, 0, 50 * GIB), ONE, TEN)
    assert offline.storage_s == pytest.approx(50 * GIB / 125e6)  # 1 GbE is slower than the disks
    assert offline.resume_s == 0 and offline.memory_s == 0


def test_a_quick_move_is_all_outage_through_the_cluster_storage():
    e = estimate_move(MoveSpec("vm", Kind.QUICK, "a", "b", "compression", 8 * GIB, 0, 0), TEN, TEN)
    assert e.memory_s == pytest.approx(8 * GIB / 500e6)
    assert e.blackout_s == pytest.approx(e.memory_s + e.resume_s)
    assert e.wire_bytes == 0


def test_move_spec_counts_what_each_kind_copies():
    disks = (DiskFacts("\\\\fs\\v\\a.vhdx", size_bytes=10 * GIB), DiskFacts("\\\\fs\\v\\b.vhdx", size_bytes=5 * GIB))
    vm = VmFacts("1", "vm", "running", 4 * GIB, "10.0", "\\\\fs\\v", disks=disks)
    src, dst = HostFacts("a", "a", performance_option="smb"), HostFacts("b", "b")
    assert move_spec(vm, Kind.LIVE, src, dst).storage_bytes == 0
    assert move_spec(vm, Kind.LIVE_VSM, src, dst).storage_bytes == 15 * GIB
    assert move_spec(vm, Kind.LIVE, src, dst).option == "smb"  # the source host's option
    assert move_spec(vm, Kind.LIVE, src, dst, performance="tcpip").option == "tcpip"
    saved = VmFacts("2", "s", "saved", 4 * GIB, "10.0", "\\\\fs\\v", disks=disks)
    network = move_spec(saved, Kind.NETWORK, src, dst)
    assert network.storage_bytes == 19 * GIB  # the saved memory travels with the files
    assert network.memory_bytes == 0 and network.dirty_bytes_s == 0


def test_the_figures_are_the_simulators():
    t = SimTuning()
    assert t.tcp_stream_gbps == precopy.TCP_STREAM_GBPS
    assert t.compression_ratio == precopy.COMPRESSION_RATIO
    assert t.compression_stream_gbps == precopy.COMPRESSION_STREAM_GBPS
    f = Figures()
    assert (f.threshold_bytes, f.max_passes, f.resume_s) == (t.threshold_bytes, t.max_passes, t.resume_s)


def test_it_shares_a_stream_helper_with_the_simulator():
    assert precopy.memory_rate_bytes_s("tcpip", 10e9) == 2.5 * precopy.BYTES_PER_GBIT
    assert precopy.memory_rate_bytes_s("compression", 125e6) == 250e6
    assert precopy.stream_cap_bytes_s("smb") == math.inf


def _fabric(option: str, nic: list[float]) -> Fabric:
    f = Fabric(3, SimTuning(prepare_s=5.0))
    f.add_share(SimShare(SHARE, "fs01.contoso.test", "fs01.contoso.test"))
    for i in range(3):
        shares = [] if i == 2 else [SHARE]  # the third host reaches no share: moves to it are Live (VSM)
        f.add_host(
            SimHost(
                f"h{i}.t", f"h{i}", "127.0.0.1", nic_gbps=nic[i], performance_option=option, shares=shares,
                storage_mbps=[500.0, 800.0, 1500.0][i], vm_path="D:\\VMs" if i == 2 else SHARE,
            )
        )  # fmt: skip
    for k, (memory, dirty, disk) in enumerate([(16, 150.0, 20), (4, 20.0, 10), (8, 60.0, 30), (2, 5.0, 8)]):
        vm = SimVm(f"vm{k}", f"vm{k}", "h0.t", memory_bytes=memory * GIB, dirty_rate_mbps=dirty,
                   config_path=f"{SHARE}\\vm{k}", switch_names=["vSwitch-Prod"])  # fmt: skip
        vm.disks.append(SimDisk(f"{SHARE}\\vm{k}\\vm{k}.vhdx", disk * GIB))
        f.add_vm(vm)
    return f


@pytest.mark.parametrize(
    ("option", "nic"), [("compression", [10, 10, 10]), ("smb", [10, 25, 10]), ("tcpip", [1, 10, 10])]
)
def test_it_times_concurrent_moves_as_the_simulator_runs_them(option, nic):
    f = _fabric(option, [float(n) for n in nic])
    targets = ["h1.t", "h2.t", "h1.t", "h2.t"]
    specs, requests = [], []
    for k, dst in enumerate(targets):
        vm = f.vms[f"vm{k}"]
        kind = Kind.LIVE_VSM if dst == "h2.t" else Kind.LIVE
        files = sum(d.size_bytes for d in vm.disks) if kind == Kind.LIVE_VSM else 0
        specs.append(MoveSpec(vm.name, kind, "h0.t", dst, option, vm.memory_bytes, vm.dirty_rate_mbps * MB, files))
        requests.append(MoveRequest(vm.id, "h0.t", dst, kind))
    rates = {h.fqdn: HostRates(h.nic_gbps, h.storage_mbps) for h in f.hosts.values()}
    limits = {(h, s): 2 for h in rates for s in ("live", "storage")}

    plan = simulate(specs, [0, 1, 2, 3], rates, limits, Figures(prepare_s=5.0))
    ids = {}
    for j in plan.order:
        f.advance(plan.start_s[j] - f.now)
        ids[j] = f.start_migration(requests[j])
    f.advance(10 * plan.makespan_s)

    for j, migration_id in ids.items():
        m = f.migrations[migration_id]
        assert m.state == "completed"
        assert m.ended_at == pytest.approx(plan.end_s[j], abs=1e-6)
