"""Readiness for maintenance at a glance: could each host be emptied now, and how long would it take;
could each cluster lose any one node (N+1), and which VMs stand in the way.

The planner answers it the way Evacuate would: the same snapshot, the same placement and ordering. A
VM stands in the way when it runs (or is paused) and the plan cannot move it live; a VM that is off
or saved stays on its host through a reboot, as VMM's maintenance mode leaves it. A cluster is N+1
when every node's VMs fit on the cluster's other nodes: the plan for that question may use only
them (a failover cluster restarts its roles on its own nodes, not on a standalone host).

The results are stored on the hosts and clusters (fabric's readiness fields), refreshed by a worker
after each sync and each finished move (jobs.tasks.enqueue_readiness_if_stale), so the pages and the
API read them without planning.
"""

from __future__ import annotations

from django.utils import timezone

from fabric.driver import fabric_seconds_per_second
from fabric.models import Cluster, Host
from migrations_ui.planning.inventory import Snapshot
from migrations_ui.planning.planner import Plan, plan_evacuation
from utilities.texts import Msg

# Off or saved VMs stay on the host through its maintenance; these must move or the host stays busy.
MUST_MOVE = ("running", "paused")


def refresh_readiness() -> int:
    """Plan an evacuation of every host (and, for cluster nodes, one within the cluster) and store
    the answers. Returns how many hosts were assessed."""
    snapshot = Snapshot()
    now = timezone.now().isoformat()
    per_second = fabric_seconds_per_second()
    hosts = [h for h in snapshot.hosts if h.reachable]
    in_cluster: dict[int, dict[str, dict]] = {}
    for host in hosts:
        host.readiness = {**_assess(snapshot, host, _plan(snapshot, host), per_second), "at": now}
        if host.cluster_id:
            within = _plan(snapshot, host, cluster_only=True)
            in_cluster.setdefault(host.cluster_id, {})[host.fqdn] = _assess(snapshot, host, within, per_second)
    Host.objects.bulk_update(hosts, ["readiness"])
    Host.objects.filter(reachable=False).update(readiness=None)  # not known: the host does not answer
    clusters = list(Cluster.objects.filter(pk__in=in_cluster))
    for cluster in clusters:
        nodes = in_cluster[cluster.pk]
        cluster.readiness = {"n_plus_one": all(n["ready"] for n in nodes.values()), "nodes": nodes, "at": now}
    Cluster.objects.bulk_update(clusters, ["readiness"])
    return len(hosts)


def _plan(snapshot: Snapshot, host: Host, *, cluster_only: bool = False) -> Plan:
    candidates = snapshot.candidates(host.pk)
    if cluster_only:
        nodes = {h.fqdn for h in snapshot.hosts if h.cluster_id == host.cluster_id}
        candidates = [c for c in candidates if c.fqdn in nodes]
    return plan_evacuation(
        snapshot.facts[host.pk],
        snapshot.by_host[host.pk],
        candidates,
        snapshot.options,
        resident=snapshot.resident(but=host),
    )


def _assess(snapshot: Snapshot, host: Host, plan: Plan, per_second: int) -> dict:
    states = {vm.id: vm.state.lower() for vm in snapshot.by_host[host.pk]}
    blockers = [_blocker(left) for left in plan.left if states.get(left.vm_id) in MUST_MOVE]
    return {
        "ready": not blockers,
        "moves": len(plan.moves),
        # Wall-clock seconds, as the job and batch pages count (a simulated fabric runs faster).
        "estimate_s": round(plan.makespan_s / per_second, 1),
        "blockers": blockers,
    }


def _blocker(left) -> dict:
    reason = {"reason": str(left.reason)}
    if isinstance(left.reason, Msg):  # kept so a page in another language can say it (finding_text)
        reason["i18n"] = {"reason": left.reason.as_stored()}
    return {"vm": left.vm, "vm_id": left.vm_id, **reason}
