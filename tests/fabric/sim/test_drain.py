"""The simulated cluster's drain and failback (fabric/sim/drain.py), on a small cluster of its own."""

import pytest

from fabric.hyperv.api import HyperVError
from fabric.sim.simulator import Fabric, SimCluster, SimHost, SimShare, SimVm
from tests.fabric.sim.test_simulator import add_vm

GIB = 1024**3
SHARE = "\\\\fs.test\\vms"


def cluster(nodes=("n1", "n2", "n3"), cap=1, memory_gib=64) -> Fabric:
    fabric = Fabric(seed=3)
    fabric.add_share(SimShare(SHARE, "fs.test", "fs.test"))
    fabric.add_cluster(SimCluster("CL", "cl.test", 11, cap))
    for i, name in enumerate(nodes):
        fabric.add_host(
            SimHost(
                f"{name}.test",
                name,
                f"127.0.0.{21 + i}",
                cluster="CL",
                shares=[SHARE],
                memory_total_bytes=memory_gib * GIB,
                memory_available_bytes=memory_gib * GIB,
                virtual_switches=["vSwitch-Prod"],
            )
        )
    return fabric


def vm(fabric, name, host="n1", memory_gib=4, **kw) -> SimVm:
    """A VM of the cluster: highly available unless said otherwise, on the share every node reaches."""
    kw.setdefault("is_clustered", True)
    return add_vm(fabric, name, host=host, memory_gib=memory_gib, switch_names=["vSwitch-Prod"], **kw)


def run_drain(fabric, node="n1.test", step=1.0, limit=3600) -> int:
    """Let time run until the drain ends; the most live migrations off the node at once."""
    most = 0
    while fabric.hosts[node].drain_status == "in_progress" and fabric.now < limit:
        most = max(most, sum(m.source == node for m in fabric.running_migrations()))
        fabric.advance(step)
    return most


def where(fabric, name) -> str:
    return fabric.vm_by_name(name).host.split(".")[0]


def test_only_cluster_roles_move_and_at_most_the_clusters_limit_at_once():
    fabric = cluster(cap=2)
    for i in range(5):
        vm(fabric, f"role{i}")
    vm(fabric, "standalone", is_clustered=False)
    node = fabric.suspend_node("n2.test", "n1", drain=True)  # asked of another node
    assert (node.node_state, node.drain_status) == ("paused", "in_progress")
    assert run_drain(fabric) == 2
    assert node.drain_status == "completed"
    assert all(where(fabric, f"role{i}") in ("n2", "n3") for i in range(5))
    assert where(fabric, "standalone") == "n1"  # a drain moves cluster roles only


def test_it_honours_possible_owners_memory_and_paused_nodes():
    fabric = cluster(nodes=("n1", "n2", "n3", "n4"), memory_gib=16)
    vm(fabric, "owned", possible_owners=["n1", "n3"])
    vm(fabric, "big", memory_gib=40)  # no other node has the memory
    vm(fabric, "off", state="off", memory_gib=40)  # an offline role only changes its owner
    fabric.suspend_node("n1.test", "n4", drain=False)  # paused: takes no roles
    fabric.suspend_node("n1.test", "n1", drain=True)
    run_drain(fabric)
    node = fabric.hosts["n1.test"]
    assert where(fabric, "owned") == "n3"
    assert where(fabric, "big") == "n1" and node.drain_stuck == ["id-big"]
    assert where(fabric, "off") in ("n2", "n3")
    assert node.drain_status == "failed"
    assert not any(v.host == "n4.test" for v in fabric.vms.values())


def test_a_role_whose_live_migration_fails_stays_and_fails_the_drain():
    fabric = cluster()
    vm(fabric, "ok")
    bad = vm(fabric, "bad")
    fabric.inject_failure(bad.id, "memory")
    fabric.suspend_node("n1.test", "n1", drain=True)
    run_drain(fabric)
    assert where(fabric, "bad") == "n1" and where(fabric, "ok") != "n1"
    assert fabric.hosts["n1.test"].drain_status == "failed"


def test_failback_immediate_brings_the_drained_roles_back_and_no_failback_leaves_them():
    fabric = cluster()
    for i in range(3):
        vm(fabric, f"role{i}")
    fabric.suspend_node("n1.test", "n1", drain=True)
    run_drain(fabric)
    fabric.resume_node("n1.test", "n1", failback="NoFailback")
    assert fabric.hosts["n1.test"].node_state == "up"
    fabric.advance(600)
    assert all(where(fabric, f"role{i}") != "n1" for i in range(3))

    fabric.suspend_node("n1.test", "n2", drain=True)
    run_drain(fabric, node="n2.test")
    fabric.resume_node("n1.test", "n2", failback="Immediate")
    fabric.advance(600)
    drained = fabric.hosts["n2.test"].drained
    assert drained and not fabric.hosts["n2.test"].failback
    assert all(fabric.vms[v].host == "n2.test" for v in drained)


def test_a_node_of_another_cluster_is_not_found():
    fabric = cluster()
    with pytest.raises(HyperVError) as raised:
        fabric.suspend_node("n1.test", "elsewhere", drain=True)
    assert raised.value.code == "ObjectNotFound"


def test_a_paused_node_takes_no_role_moved_to_it():
    from fabric.hyperv.api import MoveRequest

    fabric = cluster()
    role = vm(fabric, "role")
    fabric.suspend_node("n1.test", "n2", drain=False)
    with pytest.raises(HyperVError) as raised:
        fabric.start_migration(MoveRequest(role.id, "n1.test", "n2.test", "live"))
    assert raised.value.code == "0x800713CE"
    fabric.resume_node("n1.test", "n2")
    assert fabric.start_migration(MoveRequest(role.id, "n1.test", "n2.test", "live"))
