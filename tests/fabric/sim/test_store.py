import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fabric.hyperv.api import Connection, HostUnreachable, HyperVError, MoveRequest
from fabric.sim.demo import build_demo_fabric
from fabric.sim.driver import SimDriver
from fabric.sim.store import FabricStore

ROOT = Path(__file__).resolve().parents[3]


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def demo_vm(fabric, name):
    return fabric.vm_by_name(name)


def live_request(fabric, name, destination):
    vm = demo_vm(fabric, name)
    return MoveRequest(vm.id, vm.host, destination, "live")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "fabric.sqlite3"


@pytest.fixture
def store(path):
    store = FabricStore(path, time_scale=None)
    store.create(build_demo_fabric())
    return store


def test_it_knows_whether_a_world_exists(path):
    store = FabricStore(path, time_scale=None)
    assert not store.exists()
    with pytest.raises(LookupError), store.session():
        pass

    store.create(build_demo_fabric())

    assert store.exists()
    assert FabricStore(path, time_scale=None).exists()


def test_it_shares_one_world_between_two_stores_on_one_file(store, path):
    other = FabricStore(path, time_scale=None)
    with other.session() as fabric:  # the other store now holds a cached copy
        assert not fabric.running_migrations()

    with store.session() as fabric:
        migration_id = fabric.start_migration(live_request(fabric, "erp-web01", "hv-new1.contoso.test"))

    with other.session() as fabric:
        assert fabric.migrations[migration_id].state == "running"
        assert [v.migrating for v in fabric.inventory("hv-old1.contoso.test").vms if v.name == "erp-web01"] == [True]
    other.advance(600)
    with store.session() as fabric:
        assert fabric.migrations[migration_id].state == "completed"
        assert demo_vm(fabric, "erp-web01").host == "hv-new1.contoso.test"
        assert fabric.now == 600


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_it_shares_one_world_with_another_process(store, path):
    with store.session() as fabric:
        migration_id = fabric.start_migration(live_request(fabric, "app-s02", "hv-s1.contoso.test"))

    seen = run_python(
        "from fabric.sim.store import FabricStore\n"
        f"store = FabricStore({str(path)!r}, time_scale=None)\n"
        "with store.session() as fabric:\n"
        f"    print(fabric.migrations[{migration_id!r}].state)\n"
        "    vm = fabric.vm_by_name('web-dmz02')\n"
        "    from fabric.hyperv.api import MoveRequest\n"
        "    print(fabric.start_migration(MoveRequest(vm.id, vm.host, 'hv-s1.contoso.test', 'live')))\n"
    )

    state, started_there = seen.splitlines()
    assert state == "running"
    with store.session() as fabric:
        assert fabric.migrations[started_there].vm_name == "web-dmz02"
        assert len(fabric.running_migrations()) == 2


def test_it_derives_simulated_time_from_the_wall_clock(path):
    clock = FakeClock()
    web, worker = FabricStore(path, 4, clock), FabricStore(path, 4, clock)
    web.create(build_demo_fabric())
    with worker.session() as fabric:
        migration_id = fabric.start_migration(live_request(fabric, "sql-prod02", "hv-new1.contoso.test"))

    clock.now += 10
    assert web.sim_time() == pytest.approx(40)
    with worker.session() as fabric:
        assert fabric.now == pytest.approx(40)
        assert fabric.migrations[migration_id].state == "running"
    clock.now += 600
    with web.session() as fabric:
        assert fabric.migrations[migration_id].state == "completed"


def test_it_keeps_time_continuous_when_the_scale_changes(path):
    clock = FakeClock()
    fast, slow = FabricStore(path, 4, clock), FabricStore(path, 2, clock)
    fast.create(build_demo_fabric())
    clock.now += 10
    assert fast.sim_time() == pytest.approx(40)

    assert slow.sim_time() == pytest.approx(40)
    clock.now += 10
    assert slow.sim_time() == pytest.approx(60)
    clock.now += 10  # still at the slow scale until the fast store next opens the world
    assert fast.sim_time() == pytest.approx(80)
    clock.now += 10
    assert slow.sim_time() == pytest.approx(120)


def test_it_fast_forwards_a_wall_clock_world(path):
    clock = FakeClock()
    store = FabricStore(path, 4, clock)
    store.create(build_demo_fabric())

    store.advance(300)

    assert store.sim_time() == pytest.approx(300)
    assert FabricStore(path, 4, clock).sim_time() == pytest.approx(300)


def test_it_commits_a_refusal_and_rolls_back_other_errors(store, path):
    with pytest.raises(HyperVError), store.session() as fabric:
        vm = demo_vm(fabric, "dev-s01")  # off: no live migration
        fabric.start_migration(MoveRequest(vm.id, vm.host, "hv-s2.contoso.test", "live"))
    with pytest.raises(RuntimeError), store.session() as fabric:
        fabric.set_reachable("hv-s1.contoso.test", False)
        raise RuntimeError("crash in the middle")

    with FabricStore(path, time_scale=None).session() as fabric:
        assert fabric.record[-1]["result"] == "refused"
        assert fabric.hosts["hv-s1.contoso.test"].reachable
    with store.session() as fabric:
        assert fabric.hosts["hv-s1.contoso.test"].reachable


def test_it_writes_nothing_when_nothing_changed(store, path):
    def revision():
        with sqlite3.connect(path) as connection:
            return connection.execute("SELECT revision FROM world").fetchone()[0]

    before = revision()
    with store.session() as fabric:
        fabric.inventory("hv-s1.contoso.test")
    assert revision() == before

    with store.session() as fabric:
        fabric.set_reachable("hv-s1.contoso.test", False)
    assert revision() == before + 1


def test_it_refuses_nested_sessions(store):
    with store.session(), pytest.raises(RuntimeError), store.session():
        pass


def test_it_drives_the_world_through_the_driver_api(store, path):
    driver = SimDriver(FabricStore(path, time_scale=None))
    with store.session() as fabric:
        conns = {c.fqdn: c for c in fabric.connections()}
        vm = demo_vm(fabric, "web-dmz02")
    source = conns["hv-s2.contoso.test"]

    inventory = driver.inventory(source)
    migration_id = driver.start_migration(source, MoveRequest(vm.id, source.fqdn, "hv-s1.contoso.test", "live"))
    store.advance(3)
    running = driver.migration_status(source, migration_id)
    driver.cancel_migration(source, migration_id)

    assert vm.name in [v.name for v in inventory.vms]
    assert running.state == "running"
    assert driver.migration_status(source, migration_id).state == "cancelled"
    assert vm.name in [v.name for v in driver.inventory(source).vms]
    with store.session() as fabric:
        fabric.set_reachable(source.fqdn, False)
    with pytest.raises(HostUnreachable):
        driver.inventory(source)
    with pytest.raises(HostUnreachable):
        driver.migration_status(source, migration_id)
    with pytest.raises(HostUnreachable):
        driver.inventory(Connection("nowhere.contoso.test", "127.0.0.99"))


def test_it_loads_and_saves_a_20000_vm_world(path):
    # How fast: bench/fabric.py.
    fabric = build_demo_fabric(hosts=100, vms=20_000)
    FabricStore(path, time_scale=None).create(fabric)
    vm = next(v for v in fabric.vms.values() if v.state == "running" and not v.is_clustered)
    destination = next(h for h in fabric.hosts if h != vm.host and not fabric.hosts[h].cluster)

    fresh = FabricStore(path, time_scale=None)  # nothing cached: parses the file
    with fresh.session() as world:
        world.start_migration(MoveRequest(vm.id, vm.host, destination, "live"))

    with FabricStore(path, time_scale=None).session() as world:
        assert len(world.vms) == 20_000
        assert len(world.running_migrations()) == 1
