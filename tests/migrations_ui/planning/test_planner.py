import json
import random
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest

from fabric.hyperv.api import MoveRequest
from fabric.sim.demo import build_demo_fabric
from migrations_ui.jobs.admission import Waiting, decide
from migrations_ui.planning.estimates import HostRates
from migrations_ui.planning.ordering import lower_bound, move_slots, simulate, slot_overuse
from migrations_ui.planning.planner import (
    STOPPED_MOVE,
    Plan,
    PlanOptions,
    plan_evacuation,
    plan_moves,
    plan_rebalance,
    slot_limits,
)
from migrations_ui.preflight.facts import DiskFacts, HostFacts, Kind, VmFacts

GIB = 1024**3
DOMAIN = "contoso.test"
SHARE = f"\\\\fs01.{DOMAIN}\\vms"
CSV = "C:\\ClusterStorage\\Volume1"


@pytest.fixture
def settings():
    """Stands in for pytest-django's fixture, which tests/conftest.py's autouse fixtures ask for: these
    tests are pure and run with -p no:django too."""
    return SimpleNamespace()


def host(name, *, cluster=None, memory_gib=256, free_gib=None, live=2, storage=2, shares=(SHARE,), **kw):
    return HostFacts(
        fqdn=f"{name}.{DOMAIN}",
        name=name,
        cluster=f"{cluster}.{DOMAIN}" if cluster else None,
        cluster_name=cluster or "",
        cluster_max_parallel=live if cluster else None,
        supported_config_versions=kw.pop("versions", ("9.0", "10.0")),
        memory_total_bytes=memory_gib * GIB,
        memory_available_bytes=(memory_gib if free_gib is None else free_gib) * GIB,
        processor_family="Xeon",
        max_live=live,
        max_storage=storage,
        migration_networks=("10.0.0.0/24",),
        virtual_switches=kw.pop("switches", ("vSwitch-Prod",)),
        shares=shares,
        **kw,
    )


def vm(name, memory_gib=4, *, state="running", folder=SHARE, clustered=False, shared=None, **kw):
    disks = [DiskFacts(f"{folder}\\{name}\\{name}.vhdx", size_bytes=20 * GIB)]
    if shared:
        disks.append(DiskFacts(f"{SHARE}\\{shared}\\shared.vhdx", shared=True, size_bytes=100 * GIB))
    return VmFacts(
        id=f"id-{name}",
        name=name,
        state=state,
        memory_bytes=memory_gib * GIB,
        config_version=kw.pop("version", "10.0"),
        config_path=f"{folder}\\{name}",
        clustered=clustered,
        switch_names=kw.pop("switches", ("vSwitch-Prod",)),
        disks=tuple(disks),
        **kw,
    )


def evacuate(source, vms, candidates, resident=None, **options) -> Plan:
    return plan_evacuation(source, vms, candidates, PlanOptions(**options), resident=resident or {})


def where(plan: Plan) -> dict[str, str]:
    return {m.vm: m.destination.split(".")[0] for m in plan.moves}


def sweep(plan: Plan) -> list:
    return slot_overuse(
        [(m.transfer_type, m.source, m.destination, m.start_s, m.end_s) for m in plan.moves], plan.limits
    )


A, B, C, D = host("hv-a"), host("hv-b"), host("hv-c"), host("hv-d")


def test_it_moves_every_running_vm_live_to_another_host():
    vms = [vm(f"web{i}", 2 + i) for i in range(5)]

    plan = evacuate(A, vms, [A, B, C])

    assert sorted(where(plan)) == sorted(v.name for v in vms)
    assert set(where(plan).values()) <= {"hv-b", "hv-c"}
    assert {m.transfer_type for m in plan.moves} == {Kind.LIVE}
    assert plan.left == ()
    assert plan.host == A.fqdn


def test_it_keeps_memory_headroom_on_every_destination():
    small = host("hv-b", free_gib=40)  # 40 - 10% of 256 leaves 14.4 GiB to give
    roomy = host("hv-c", free_gib=200)
    vms = [vm("big", 16), vm("mid", 12), vm("tiny", 2)]

    plan = evacuate(A, vms, [small, roomy], headroom=0.10)

    assert where(plan)["big"] == "hv-c"
    for h in (small, roomy):
        given = sum(v.memory_bytes for v in vms if where(plan).get(v.name) == h.name)
        assert given <= h.memory_available_bytes - 0.10 * h.memory_total_bytes


def test_a_vm_no_host_has_memory_for_is_left_with_the_reason():
    plan = evacuate(A, [vm("huge", 64)], [host("hv-b", free_gib=40), host("hv-c", free_gib=60)])

    assert plan.moves == ()
    (left,) = plan.left
    assert left.vm == "huge"
    assert "hv-b, hv-c: not enough memory left with 10% headroom" in left.reason


def test_with_no_other_host_every_vm_is_left_with_the_reason():
    # Every other host in maintenance or unreachable: the planner gets no candidates at all.
    plan = evacuate(A, [vm("web", 8), vm("db", 16)], [])

    assert plan.moves == ()
    assert {(v.vm, v.reason) for v in plan.left} == {
        ("web", "No other host to move it to."),
        ("db", "No other host to move it to."),
    }


def test_ha_vms_stay_in_their_cluster():
    n1, n2, n3 = (host(f"hv-n{i}", cluster="CL1", shares=(SHARE,)) for i in (1, 2, 3))
    roomy = host("hv-s", memory_gib=1024)  # standalone, emptier than any node
    vms = [vm(f"ha{i}", 8, folder=CSV, clustered=True) for i in range(4)]

    plan = evacuate(n1, vms, [n1, n2, n3, roomy])

    assert set(where(plan).values()) <= {"hv-n2", "hv-n3"}
    assert len(plan.moves) == 4


def test_an_ha_vm_whose_cluster_has_no_room_is_left_not_moved_out():
    n1, n2 = host("hv-n1", cluster="CL1"), host("hv-n2", cluster="CL1", free_gib=20)
    plan = evacuate(n1, [vm("ha", 32, folder=CSV, clustered=True)], [n1, n2, host("hv-s", memory_gib=1024)])

    assert plan.moves == ()
    assert "hv-n2: not enough memory" in plan.left[0].reason


def test_the_nodes_of_a_guest_cluster_never_share_a_host():
    fc1, fc2 = vm("sql-fc1", 16, shared="fc"), vm("sql-fc2", 16, shared="fc")
    emptiest = host("hv-b", memory_gib=1024)

    plan = evacuate(A, [fc1], [A, emptiest, C], resident={emptiest.fqdn: [fc2]})
    assert where(plan) == {"sql-fc1": "hv-c"}
    # The plan says why not the emptiest host, where an operator would look first.
    notes = [(f.rule, f.message) for f in plan.moves[0].findings if f.rule == "placement-passed-over"]
    assert notes == [
        (
            "placement-passed-over",
            "Not hv-b: sql-fc2, the other node of sql-fc1's guest cluster (they share a VHDX), runs on hv-b; "
            "a failure of hv-b would stop both nodes.",
        )
    ]

    both = evacuate(A, [fc1, fc2], [A, emptiest, C])
    assert len(set(where(both).values())) == 2

    stuck = evacuate(A, [fc1], [A, emptiest], resident={emptiest.fqdn: [fc2]})
    assert "sql-fc2, the other node of sql-fc1's guest cluster" in stuck.left[0].reason


def test_blocked_destinations_are_never_chosen():
    no_switch = host("hv-b", switches=("vSwitch-Prod",), memory_gib=2048)
    old = host("hv-c", switches=("vSwitch-Prod", "vSwitch-DMZ"), versions=("8.0", "9.0"), memory_gib=2048)
    fine = host("hv-d", switches=("vSwitch-Prod", "vSwitch-DMZ"))
    dmz = vm("dmz", 4, switches=("vSwitch-DMZ",))

    plan = evacuate(A, [dmz], [A, no_switch, old, fine])
    assert where(plan) == {"dmz": "hv-d"}

    nowhere = evacuate(A, [dmz], [A, no_switch, old])
    reason = nowhere.left[0].reason
    assert "hv-b: hv-b has no virtual switch named 'vSwitch-DMZ'" in reason
    assert "hv-c: hv-c (its OS) does not run VM configuration version 10.0" in reason


def test_live_is_preferred_over_live_vsm():
    off_share = host("hv-b", shares=(), memory_gib=2048)  # emptier, but would need the storage copied
    on_share = host("hv-c", free_gib=100)

    plan = evacuate(A, [vm("app", 8)], [A, off_share, on_share])

    assert where(plan) == {"app": "hv-c"}
    assert plan.moves[0].transfer_type == Kind.LIVE
    only_vsm = evacuate(A, [vm("app", 8)], [A, off_share])
    assert only_vsm.moves[0].transfer_type == Kind.LIVE_VSM
    assert only_vsm.moves[0].alone.storage_s > 0


def test_stopped_and_saved_vms_are_left_or_moved_offline_as_asked():
    vms = [vm("on", 4), vm("off", 8, state="off"), vm("saved", 2, state="saved")]

    left = evacuate(A, vms, [A, B])
    assert where(left) == {"on": "hv-b"}
    assert {v.vm: v.reason for v in left.left}["off"].startswith("off is off: stopped and saved VMs stay")

    moved = evacuate(A, vms, [A, B], stopped=STOPPED_MOVE)
    assert {m.vm: m.transfer_type for m in moved.moves} == {"on": "live", "off": "network", "saved": "network"}
    assert moved.left == ()


def test_a_stopped_ha_vm_is_not_copied_offline():
    n1, n2 = host("hv-n1", cluster="CL1"), host("hv-n2", cluster="CL1")
    plan = evacuate(n1, [vm("ha-off", 8, state="off", folder=CSV, clustered=True)], [n1, n2], stopped=STOPPED_MOVE)
    assert plan.moves == ()
    assert "refuses an offline copy of the clustered VM ha-off" in plan.left[0].reason


def test_a_host_that_allows_no_migration_is_never_planned_for():
    stuck = evacuate(replace(A, max_live=0), [vm("a1", 4)], [A, B])
    assert stuck.moves == () and "hv-a: allows no migration at all (limit 0)" in stuck.left[0].reason
    plan = evacuate(A, [vm("a1", 4)], [A, replace(B, max_live=0, memory_available_bytes=2048 * GIB), C])
    assert where(plan) == {"a1": "hv-c"}


def test_the_json_is_the_stable_shape():
    plan = evacuate(A, [vm("a1", 4), vm('x"; $(Remove-VM *) <b>', 2), vm("off", 2, state="off")], [A, B])

    data = json.loads(json.dumps(plan.as_json()))

    # Fields are only ever added (issue 20 added link_caps), never renamed or dropped.
    assert list(data) == ["host", "moves", "left", "makespan_s", "lower_bound_s", "link_caps"]
    assert data["link_caps"] == []  # two slots on 10 GbE with compression: four moves fill the link
    assert data["host"] == A.fqdn
    assert [list(m) for m in data["moves"]] == [["vm", "destination", "transfer_type", "start_s", "end_s"]] * 2
    assert data["left"] == [{"vm": "off", "reason": plan.left[0].reason}]
    assert 'x"; $(Remove-VM *) <b>' in {m["vm"] for m in data["moves"]}
    assert data["makespan_s"] == max(m["end_s"] for m in data["moves"])
    assert 0 < data["lower_bound_s"] <= data["makespan_s"]


def test_an_empty_plan():
    plan = evacuate(A, [], [A, B])
    assert plan.as_json() == {
        "host": A.fqdn,
        "moves": [],
        "left": [],
        "makespan_s": 0.0,
        "lower_bound_s": 0.0,
        "link_caps": [],
    }


def _random_fabric(seed: int, slots: int):
    """Hosts of every kind (cluster nodes, share hosts, local disks only), VMs of 1-64 GiB in all states."""
    rng = random.Random(seed)
    hosts = []
    for i in range(rng.randint(4, 10)):
        clustered = i < 4 and seed % 2 == 0
        local = not clustered and rng.random() < 0.2
        hosts.append(
            host(
                f"hv{i:02d}",
                cluster="CL" if clustered else None,
                memory_gib=rng.choice((256, 512)),
                live=slots,
                storage=slots,
                shares=() if local else (SHARE,),
                performance_option=rng.choice(("compression", "compression", "tcpip", "smb")),
                vm_path="D:\\VMs" if local else SHARE,
            )
        )
    vms: dict[str, list[VmFacts]] = {h.fqdn: [] for h in hosts}
    for k in range(rng.randint(8, 40)):
        h = rng.choice(hosts[:3]) if rng.random() < 0.6 else rng.choice(hosts)
        folder = CSV if h.cluster else ("D:\\VMs" if not h.shares else SHARE)
        state = rng.choice(("running",) * 8 + ("off", "saved"))
        vms[h.fqdn].append(vm(f"vm{k:03d}", rng.choice((1, 2, 4, 8, 16, 32, 64)), state=state, folder=folder,
                              clustered=bool(h.cluster)))  # fmt: skip
    hosts = [replace(h, memory_available_bytes=h.memory_total_bytes - sum(v.memory_bytes for v in vms[h.fqdn]))
             for h in hosts]  # fmt: skip
    rates = {h.fqdn: HostRates(rng.choice((10.0, 25.0)), rng.choice((500.0, 1500.0))) for h in hosts}
    dirty = {v.id: rng.uniform(1, 250) for vs in vms.values() for v in vs}
    options = PlanOptions(rates=rates, dirty_mbps=dirty, stopped=STOPPED_MOVE, headroom=0.05)
    return hosts, vms, options


@pytest.mark.parametrize("slots", [1, 2, 4])
def test_no_plan_ever_runs_more_moves_on_a_host_than_its_slots(slots):
    for seed in range(12):
        hosts, vms, options = _random_fabric(seed, slots)
        plans = [plan_rebalance(hosts, vms, options)]
        plans += [plan_evacuation(h, vms[h.fqdn], hosts, options, resident=vms) for h in hosts[:3]]
        for plan in plans:
            assert sweep(plan) == []
            for (h, kind), limit in plan.limits.items():
                assert limit <= slot_limits(hosts)[(h, kind)]
            assert plan.lower_bound_s <= plan.makespan_s + 1e-6
            assert [m.start_s for m in plan.moves] == sorted(m.start_s for m in plan.moves)
            assert all(m.end_s - m.start_s >= m.alone.duration_s - 1e-6 for m in plan.moves)


def test_the_same_facts_give_the_same_plan():
    hosts, vms, options = _random_fabric(3, 2)
    first = [plan_evacuation(h, vms[h.fqdn], hosts, options, resident=vms).as_json() for h in hosts]
    again = [plan_evacuation(h, vms[h.fqdn], hosts, options, resident=vms).as_json() for h in hosts]
    assert first == again
    assert plan_rebalance(hosts, vms, options).as_json() == plan_rebalance(hosts, vms, options).as_json()


def test_the_order_fills_the_source_slots_evenly():
    # Two slots on the source: each move starts as soon as a slot frees (at 0 or at another's end).
    # Longest first lays 32 + 8 + 8 and 24 + 16 + 4 GiB on them; the improvement passes find a better
    # split (32 + 16 against 24 + 8 + 8 + 4), the best: the strong bound's packing.
    vms = [vm(f"v{m}", m) for m in (32, 24, 16, 8, 8, 4)]
    plan = evacuate(A, vms, [A, B, C, D], dirty_mbps={v.id: 1.0 for v in vms})
    assert [m.vm for m in plan.moves][:2] == ["v32", "v24"]
    ends = {round(m.end_s, 6) for m in plan.moves}
    assert all(m.start_s == 0 or round(m.start_s, 6) in ends for m in plan.moves)
    strong = lower_bound([m.spec for m in plan.moves], {}, plan.limits, strong=True)
    assert plan.makespan_s == pytest.approx(strong, rel=1e-6)
    longest = sorted(range(len(plan.moves)), key=lambda j: -plan.moves[j].alone.duration_s)
    assert plan.makespan_s < simulate([m.spec for m in plan.moves], longest, {}, plan.limits).makespan_s


def test_a_rebalance_evens_out_memory_and_moves_each_vm_once():
    hosts = [host(f"hv{i}", memory_gib=512) for i in range(4)]
    vms = {hosts[0].fqdn: [vm(f"a{k}", 16) for k in range(20)], hosts[1].fqdn: [vm(f"b{k}", 8) for k in range(10)]}
    vms |= {h.fqdn: [] for h in hosts[2:]}
    hosts = [replace(h, memory_available_bytes=h.memory_total_bytes - sum(v.memory_bytes for v in vms[h.fqdn]))
             for h in hosts]  # fmt: skip

    plan = plan_rebalance(hosts, vms, PlanOptions(tolerance=0.05))

    assert plan.host is None and plan.as_json()["host"] is None
    assert len({m.vm for m in plan.moves}) == len(plan.moves)
    used = {h.fqdn: h.memory_total_bytes - h.memory_available_bytes for h in hosts}
    for m in plan.moves:
        used[m.source] -= 16 * GIB if m.vm.startswith("a") else 8 * GIB
        used[m.destination] += 16 * GIB if m.vm.startswith("a") else 8 * GIB
    target = sum(used.values()) / (4 * 512 * GIB)
    assert all(abs(u / (512 * GIB) - target) <= 0.05 + 16 / 512 for u in used.values())
    assert all(m.source == hosts[0].fqdn for m in plan.moves if m.vm.startswith("a"))


def test_a_rebalance_keeps_ha_vms_in_their_cluster():
    nodes = [host(f"hv-n{i}", cluster="CL1", memory_gib=512) for i in (1, 2)]
    standalone = host("hv-s", memory_gib=2048)
    vms = {nodes[0].fqdn: [vm(f"ha{k}", 32, folder=CSV, clustered=True) for k in range(8)], nodes[1].fqdn: []}
    vms[standalone.fqdn] = []
    hosts = [replace(nodes[0], memory_available_bytes=256 * GIB), nodes[1], standalone]

    plan = plan_rebalance(hosts, vms, PlanOptions())

    assert plan.moves
    assert {m.destination for m in plan.moves} == {nodes[1].fqdn}


def test_move_back_returns_each_vm_to_where_it_came_from():
    vms = [vm("db", 16), vm("web", 4), vm("dmz", 4, switches=("vSwitch-DMZ",))]
    away = evacuate(A, vms, [A, replace(B, virtual_switches=("vSwitch-Prod", "vSwitch-DMZ")), C])
    by_name = {v.name: v for v in vms}
    hosts = {h.fqdn: h for h in (B, C)} | {B.fqdn: replace(B, virtual_switches=("vSwitch-Prod", "vSwitch-DMZ"))}
    home = replace(A, virtual_switches=("vSwitch-Prod",))  # the DMZ switch did not come back after maintenance

    back = plan_moves([(by_name[m.vm], hosts[m.destination], home) for m in away.moves], host=A.fqdn)

    assert {m.vm: m.destination for m in back.moves} == {"db": A.fqdn, "web": A.fqdn}
    assert [v.vm for v in back.left] == ["dmz"]
    assert "hv-a has no virtual switch named 'vSwitch-DMZ'" in back.left[0].reason
    assert sweep(back) == []


def test_an_operator_may_send_an_ha_vm_out_of_its_cluster_with_a_warning():
    n1, other = host("hv-n1", cluster="CL1"), host("hv-o1", cluster="CL2")
    plan = plan_moves([(vm("ha", 8, clustered=True), n1, other)])
    assert plan.moves[0].destination == other.fqdn
    assert "ha-lost-during-move" in {f.rule for f in plan.moves[0].findings}


def test_moves_to_one_host_count_its_memory_once():
    target = host("hv-t", free_gib=60)  # 60 - 25.6 headroom: room for 34.4 GiB
    moves = [(vm(f"v{i}", 16), A, target) for i in range(3)]
    plan = plan_moves(moves)
    assert len(plan.moves) == 2
    assert "not enough memory" in plan.left[0].reason


# --- the demo fabric: a plan run on the simulated Hyper-V ---------------------------------------


def demo_facts(fabric):
    """What the inventory would hand the planner for the simulated fabric (preflight does it from the ORM)."""
    hosts, vms = {}, {}
    for h in fabric.hosts.values():
        c = fabric.clusters.get(h.cluster) if h.cluster else None
        hosts[h.fqdn] = HostFacts(
            fqdn=h.fqdn,
            name=h.name,
            cluster=c.fqdn if c else None,
            cluster_name=c.name if c else "",
            cluster_max_parallel=c.max_parallel_migrations if c else None,
            os_version=h.os_version,
            supported_config_versions=tuple(h.supported_config_versions),
            memory_total_bytes=h.memory_total_bytes,
            memory_available_bytes=h.memory_available_bytes,
            processor_family=h.processor_family,
            max_live=h.max_live_migrations,
            max_storage=h.max_storage_migrations,
            performance_option=h.performance_option,
            migration_networks=tuple(h.migration_networks),
            virtual_switches=tuple(h.virtual_switches),
            shares=tuple(h.shares),
            vm_path=h.vm_path,
        )
    for v in fabric.vms.values():
        facts = VmFacts(
            id=v.id,
            name=v.name,
            state=v.state,
            memory_bytes=v.memory_bytes,
            config_version=v.config_version,
            config_path=v.config_path,
            clustered=v.is_clustered,
            compat_vector_stale=v.compat_vector_stale,
            switch_names=tuple(v.switch_names),
            disks=tuple(DiskFacts(d.path, d.shared, d.size_bytes) for d in v.disks),
        )
        vms.setdefault(v.host, []).append(facts)
    options = PlanOptions(
        rates={h.fqdn: HostRates(h.nic_gbps, h.storage_mbps) for h in fabric.hosts.values()},
        dirty_mbps={v.id: v.dirty_rate_mbps for v in fabric.vms.values()},
        stopped=STOPPED_MOVE,
    )
    return hosts, vms, options


def run_through_admission(fabric, plan: Plan, step: float = 0.5, limits=None) -> float:
    """Queue the plan's moves in order, let the admission start them, run them on the simulator
    (within `limits`; default: the hosts' own)."""
    limits = dict(plan.limits if limits is None else limits)
    queue = [Waiting(i, m.transfer_type, m.source, m.destination) for i, m in enumerate(plan.moves)]
    in_use, running = Counter(), {}
    while queue or running:
        for job in decide(queue, in_use, limits).admit:
            m = plan.moves[job]
            running[job] = fabric.start_migration(MoveRequest(m.vm_id, m.source, m.destination, m.transfer_type))
            in_use.update(move_slots(m.transfer_type, m.source, m.destination))
        queue = [w for w in queue if w.job_id not in running]
        fabric.advance(step)
        for job, migration_id in list(running.items()):
            if fabric.migrations[migration_id].state != "running":
                assert fabric.migrations[migration_id].state == "completed"
                m = plan.moves[job]
                in_use.subtract(move_slots(m.transfer_type, m.source, m.destination))
                del running[job]
    return fabric.now


@pytest.mark.parametrize("node", ["hv-old1", "hv-new2", "hv-new3"])
def test_evacuating_a_demo_cluster_node_runs_as_planned(node):
    fabric = build_demo_fabric()
    hosts, vms, options = demo_facts(fabric)
    source = hosts[f"{node}.{DOMAIN}"]

    plan = plan_evacuation(source, vms[source.fqdn], list(hosts.values()), options, resident=vms)

    running = [v for v in vms[source.fqdn] if v.running]
    assert sorted(m.vm for m in plan.moves) == sorted(v.name for v in running)
    assert {hosts[m.destination].cluster for m in plan.moves} == {source.cluster}
    took = run_through_admission(fabric, plan)  # a host over its limit would refuse the move (21501)
    assert took == pytest.approx(plan.makespan_s, rel=0.02, abs=1.0)
    assert {fabric.vms[v.id].host for v in running} <= {m.destination for m in plan.moves}
