"""A cluster node's pause, drain and failback, as the simulated cluster service does them.

Suspend-ClusterNode -Drain (reference/powershell-docs/FailoverClusters/Suspend-ClusterNode.md) pauses
the node and moves its clustered roles to other nodes; without -Wait the cmdlet returns at once and
Get-ClusterNode tells how the drain goes (State Paused, DrainStatus InProgress, then Completed or
Failed). Only cluster roles move: a VM that is not highly available stays on the node. The model of
the cluster's placement is simple but keeps to what a cluster honours: a role goes only to a node
that is up (not paused), among its possible owners, with the memory for it (the one with the most
free memory), and running roles move by live migration, at most as many at once as the node's live
limit (the cluster's MaximumParallelMigrations where it has one). An offline role (a VM that is off
or saved) moves by changing its owner. A role that finds no such node, or whose live migration fails,
stays on the node and the drain ends Failed.

Resume-ClusterNode -Failback Immediate (Resume-ClusterNode.md: "clustered roles that were drained
from the node are returned to it") brings the drained roles back the same way; NoFailback leaves them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabric.hyperv.api import HyperVError, MoveRequest
from fabric.sim.checks import live_limit, migration_counts
from fabric.sim.world import MEMORY_STATES, SimHost, SimVm

if TYPE_CHECKING:
    from fabric.sim.simulator import Fabric

    _Base = Fabric
else:
    _Base = object

# The cluster's own record of a role it moves for a drain or a failback (not a cmdlet anybody sent).
CLUSTER_MOVE = "(cluster) move role"


class FabricDrain(_Base):
    """Fabric methods for Suspend-ClusterNode and Resume-ClusterNode (see simulator.Fabric)."""

    def cluster_node(self, fqdn: str, name: str) -> SimHost:
        """The node called `name` (short name or FQDN) of the cluster of the host `fqdn`."""
        host = self.reachable_host(fqdn)
        for node in self.clusters[host.cluster].nodes if host.cluster in self.clusters else ():
            found = self.hosts.get(node)
            if found is not None and name.lower() in (found.name.lower(), found.fqdn.lower()):
                return found
        raise HyperVError("ObjectNotFound", f"The cluster node '{name}' was not found in cluster '{host.cluster}'")

    def suspend_node(self, fqdn: str, name: str, *, drain: bool, command=None) -> SimHost:
        """Pause the node; with drain, start moving its roles off (drain_step goes on as time runs)."""
        node = self.cluster_node(fqdn, name)
        node.node_state = "paused"
        if drain:
            node.drain_status = "in_progress"
            node.drain_moves, node.drained, node.drain_stuck = [], [], []
        cmdlet, params = command or ("Suspend-ClusterNode", {"Name": node.name, "Drain": drain})
        self._log(cmdlet, params, result="paused")
        self.drain_step()
        return node

    def resume_node(self, fqdn: str, name: str, *, failback: str = "", command=None) -> SimHost:
        """Resume the node; failback "immediate" brings the roles its last drain moved back at once."""
        node = self.cluster_node(fqdn, name)
        node.node_state = "up"
        if failback.lower() == "immediate":
            node.failback = [v for v in node.drained if v in self.vms and self.vms[v].is_clustered]
        cmdlet, params = command or ("Resume-ClusterNode", {"Name": node.name, "Failback": failback or None})
        self._log(cmdlet, params, result="up")
        self.drain_step()
        return node

    # --- the cluster service's work, each time something ends -----------------------------------

    def drain_step(self) -> None:
        """Start what the drains and failbacks can start now, and end the drains that are done."""
        for node in list(self.hosts.values()):
            if node.drain_status == "in_progress":
                self._drain(node)
            if node.failback:
                self._failback(node)

    def _drain(self, node: SimHost) -> None:
        for migration_id in node.drain_moves:
            m = self.migrations.get(migration_id)
            if m is None or m.state == "running":
                continue
            done = node.drained if m.state == "completed" else node.drain_stuck
            if m.vm_id not in done:
                done.append(m.vm_id)
        moving = {m.vm_id for m in self.running_migrations()}
        waiting = [
            vm
            for vm in sorted(self.vms.values(), key=lambda v: v.name)
            if vm.host == node.fqdn and vm.is_clustered and vm.id not in moving and vm.id not in node.drain_stuck
        ]
        for vm in waiting:
            migration_id = self._move_role(vm, node, None)
            if migration_id == "":
                node.drain_stuck.append(vm.id)
            elif migration_id is None:
                break  # the live limit is reached: the next role starts when a move ends
            elif migration_id == "moved":
                node.drained.append(vm.id)
            else:
                node.drain_moves.append(migration_id)
        still = any(m.vm_id in self.vms and m.id in node.drain_moves for m in self.running_migrations())
        left = [vm for vm in self.vms.values() if vm.host == node.fqdn and vm.is_clustered]
        if not still and all(vm.id in node.drain_stuck for vm in left):
            node.drain_status = "failed" if left else "completed"
            self._log(CLUSTER_MOVE, {"Node": node.name, "DrainStatus": node.drain_status})
        self.touch()

    def _failback(self, node: SimHost) -> None:
        moving = {m.vm_id for m in self.running_migrations()}
        for vm_id in list(node.failback):
            vm = self.vms.get(vm_id)
            if vm is None or not vm.is_clustered or vm.host == node.fqdn:
                node.failback.remove(vm_id)
                continue
            if vm_id in moving:
                continue
            migration_id = self._move_role(vm, self.hosts[vm.host], node)
            if migration_id is None:
                break
            if migration_id in ("", "moved"):
                node.failback.remove(vm_id)
        self.touch()

    def _move_role(self, vm: SimVm, source: SimHost, target: SimHost | None) -> str | None:
        """Move one role: "moved" (an offline role changed owner), a migration id (a live migration
        started), None (the live limit is reached: wait), "" (no node can take it, or Hyper-V refused)."""
        running = vm.state in MEMORY_STATES
        if running and migration_counts(self, source.fqdn)[0] >= live_limit(self, source):
            return None
        destination = target or self._placement(vm, source, running)
        if destination is None:
            return ""
        if not running:
            vm.host = destination.fqdn
            self._log(CLUSTER_MOVE, {"VMId": vm.id, "Node": destination.name, "Offline": True})
            return "moved"
        try:
            return self.start_migration(
                MoveRequest(vm.id, source.fqdn, destination.fqdn, "live"),
                command=(CLUSTER_MOVE, {"VMId": vm.id, "Node": destination.name, "MigrationType": "Live"}),
            )
        except HyperVError as exc:
            return None if exc.code == "21501" else ""

    def _placement(self, vm: SimVm, source: SimHost, running: bool) -> SimHost | None:
        """The node the cluster gives the role: up, a possible owner, with the memory; the most free memory."""
        owners = {o.lower() for o in vm.possible_owners}
        fits = [
            h
            for h in (self.hosts[f] for f in self.clusters[source.cluster].nodes if f in self.hosts)
            if h is not source
            and h.reachable
            and h.node_state == "up"
            and (not owners or h.name.lower() in owners)
            and (not running or h.memory_available_bytes >= vm.memory_bytes)
        ]
        return max(fits, key=lambda h: (h.memory_available_bytes, h.name), default=None)
