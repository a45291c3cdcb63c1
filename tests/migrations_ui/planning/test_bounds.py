"""The strong lower bounds plans are judged by (ordering.lower_bound strong=True, bench/planner.py's
shared_nic_bound) never above what a schedule of the same moves achieves: every order of small random
plans is simulated, within the hosts' limits and within every lower cap of their live slots (what
the console's admission can run; a cap delays moves as a schedule that waits would), and no makespan
may come below either bound."""

import importlib.util
import itertools
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from migrations_ui.planning.estimates import HostRates, MoveSpec
from migrations_ui.planning.ordering import alone_estimates, lower_bound, simulate
from migrations_ui.preflight.facts import Kind

GIB = 1024**3
_BENCH = Path(__file__).resolve().parents[3] / "bench" / "planner.py"


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture (asked for by tests/conftest.py's autouse fixtures): pure tests."""
    return SimpleNamespace()


@pytest.fixture(scope="module")
def shared_nic_bound():
    spec = importlib.util.spec_from_file_location("bench_planner", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.shared_nic_bound


def _instance(rng: random.Random):
    """2-3 hosts, 2-5 moves of every kind that copies or streams, rates and limits of bench/planner.py's mix."""
    hosts = [f"h{i}" for i in range(rng.randint(2, 3))]
    rates = {h: HostRates(rng.choice((10.0, 25.0)), rng.choice((500.0, 800.0, 1500.0))) for h in hosts}
    limits = {}
    for h in hosts:
        limits[(h, "live")] = rng.randint(1, 3)
        limits[(h, "storage")] = rng.randint(1, 3)
    specs = []
    for k in range(rng.randint(2, 5)):
        source, destination = rng.sample(hosts, 2)
        kind = rng.choice((Kind.LIVE, Kind.LIVE_VSM, Kind.NETWORK))
        running = kind != Kind.NETWORK
        specs.append(
            MoveSpec(
                vm=f"v{k}",
                kind=kind,
                source=source,
                destination=destination,
                option=rng.choice(("compression", "tcpip", "smb")),
                memory_bytes=rng.choice((2, 8, 32)) * GIB if running else 0.0,
                dirty_bytes_s=rng.uniform(2, 250) * 1e6 if running else 0.0,
                storage_bytes=rng.randint(4, 60) * GIB if kind != Kind.LIVE else 0.0,
            )
        )
    return specs, rates, limits


def _best_makespan(specs, rates, limits) -> float:
    """The shortest of every order of the moves, within the hosts' limits and every lower cap of their live slots."""
    slots = sorted(s for s in limits if s[1] == "live")
    best = float("inf")
    for caps in itertools.product(*(range(1, limits[s] + 1) for s in slots)):
        capped = {**limits, **dict(zip(slots, caps, strict=True))}
        for order in itertools.permutations(range(len(specs))):
            best = min(best, simulate(specs, order, rates, capped).makespan_s)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_no_schedule_of_small_plans_beats_the_strong_bounds(seed, shared_nic_bound):
    rng = random.Random(seed)
    for _ in range(12):
        specs, rates, limits = _instance(rng)
        best = _best_makespan(specs, rates, limits)
        alone = alone_estimates(specs, rates)
        moves = [
            SimpleNamespace(spec=s, alone=e, source=s.source, destination=s.destination)
            for s, e in zip(specs, alone, strict=True)
        ]
        assert lower_bound(specs, rates, limits, strong=True) <= best * (1 + 1e-9)
        assert shared_nic_bound(moves, rates, limits) <= best * (1 + 1e-9)


def test_copies_into_one_host_end_no_sooner_than_its_slowest_partners_disk_allows(shared_nic_bound):
    # Three Live VSM moves off a host with a 0.8 GB/s disk: their 112 GiB cross that disk, however
    # fast the destination's, and the move whose copy ends last still sends its memory.
    rates = {"src": HostRates(25.0, 800.0), "dst": HostRates(10.0, 1500.0)}
    limits = {(h, s): 2 for h in rates for s in ("live", "storage")}
    specs = [
        MoveSpec(f"v{k}", Kind.LIVE_VSM, "src", "dst", "compression", mem * GIB, 40e6, files * GIB)
        for k, (mem, files) in enumerate(((8, 59), (4, 37), (16, 16)))
    ]
    alone = alone_estimates(specs, rates)
    files_s = 112 * GIB / 800e6
    shortest_after = min(e.memory_s + e.resume_s for e in alone)
    assert lower_bound(specs, rates, limits, strong=True) == pytest.approx(5.0 + files_s + shortest_after)
    # The destination's NIC is shared by a copy and a stream: the copy then goes at 0.625 GB/s, below
    # the source's disk; before, the bound let two copies run there at the destination's disk rate.
    moves = [
        SimpleNamespace(spec=s, alone=e, source="src", destination="dst") for s, e in zip(specs, alone, strict=True)
    ]
    assert shared_nic_bound(moves, rates, limits) > files_s
    assert _best_makespan(specs, rates, limits) >= lower_bound(specs, rates, limits, strong=True)


@pytest.mark.parametrize("kind", [Kind.LIVE_VSM, Kind.NETWORK])
def test_a_copy_alone_is_bound_by_its_whole_duration(kind, shared_nic_bound):
    # The linear program alone lets a move's prepare and resume overlap its copy in another slot;
    # the two windows every schedule has (the first prepare phase, the rest of the move after the
    # host's last copy) put them before and after it, where they are.
    rates = {"src": HostRates(25.0, 800.0), "dst": HostRates(10.0, 1500.0)}
    limits = {(h, s): 2 for h in rates for s in ("live", "storage")}
    memory = 8 * GIB if kind == Kind.LIVE_VSM else 0.0
    spec = MoveSpec("v0", kind, "src", "dst", "compression", memory, 40e6 if memory else 0.0, 40 * GIB)
    (alone,) = alone_estimates([spec], rates)
    move = SimpleNamespace(spec=spec, alone=alone, source="src", destination="dst")
    assert shared_nic_bound([move], rates, limits) == pytest.approx(alone.duration_s)
    assert simulate([spec], [0], rates, limits).makespan_s == pytest.approx(alone.duration_s)
