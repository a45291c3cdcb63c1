"""The pypsrp driver drains a cluster node through the emulator: Suspend-ClusterNode -Drain, then
Get-ClusterNode / Get-ClusterGroup / Msvm_MigrationJob as the cluster moves the roles, and
Resume-ClusterNode -Failback Immediate bringing them back."""

import time

import pytest

from fabric.hyperv.api import HyperVError
from fabric.sim.drain import CLUSTER_MOVE

NODE = "hv-new1"


def until(driver, conn, done, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        drain = driver.node_drain(conn, NODE)
        if done(drain):
            return drain
        time.sleep(0.1)
    raise AssertionError("the drain did not get there")


def roles_on(store, node):
    with store.session() as fabric:
        return {v.name for v in fabric.vms.values() if v.is_clustered and v.host.startswith(node + ".")}


def test_it_drains_a_node_the_clusters_way_and_brings_the_roles_back(driver, conns, emu_store):
    before = roles_on(emu_store, NODE)
    asked = driver.suspend_node(conns["hv-new2"], NODE)  # asked of another node of the cluster
    assert (asked.node, asked.state, asked.drain_status) == (NODE, "paused", "in_progress")

    seen_moving = set()

    def ended(drain):
        seen_moving.update(m.vm_id for m in drain.moves if m.state == "running")
        return drain.drain_status != "in_progress"

    drain = until(driver, conns["hv-new2"], ended)
    assert drain.state == "paused"
    stayed = roles_on(emu_store, NODE)
    # Roles Hyper-V cannot move (the demo's blockers) keep the drain from completing.
    assert drain.drain_status == ("failed" if stayed else "completed")
    assert stayed < before
    owners = {r.name: r.owner_node for r in drain.roles}
    assert all(owners[name] != NODE for name in before - stayed)
    assert all(owners[name] == NODE for name in stayed)
    assert seen_moving  # the live migrations were visible while they ran
    with emu_store.session() as fabric:
        cap = fabric.clusters["CL-NEW"].max_parallel_migrations
        drains = [r for r in fabric.record if r["cmdlet"] == CLUSTER_MOVE and r["params"].get("MigrationType")]
        spans = [fabric.migrations[r["migration_id"]] for r in drains if "migration_id" in r]
        spans = [(m.started_at, m.ended_at) for m in spans]
    assert spans
    # Never more live migrations at once than the cluster's MaximumParallelMigrations.
    assert all(sum(s <= t < e for s, e in spans) <= cap for t, _ in spans)

    resumed = driver.resume_node(conns["hv-new2"], NODE, "immediate")
    assert resumed.state == "up"
    until(driver, conns["hv-new2"], lambda d: roles_on(emu_store, NODE) == before)


def test_a_host_that_is_no_cluster_node_cannot_be_drained(driver, conns):
    with pytest.raises(HyperVError) as raised:
        driver.suspend_node(conns["hv-s1"], "hv-s1")
    assert raised.value.code == "ClusterEndpointNotRegistered"
