"""The cluster cmdlets that pause, drain and resume a node, and Get-ClusterGroup.

Per Microsoft's help (reference/powershell-docs/FailoverClusters): Suspend-ClusterNode [-Name] N
[-Drain] [-Wait] pauses the node and, with -Drain, drains its roles first; without -Wait "the call is
initiated and the cmdlet returns without waiting". Resume-ClusterNode [-Name] N [-Failback
NoFailback|Immediate|Policy] resumes it and may bring the drained roles back. Both output the
ClusterNode. Get-ClusterGroup lists the cluster's roles (here: the VM roles) with OwnerNode and State.
"""

from __future__ import annotations

from psrpcore.types import ErrorCategory

from fabric.emulator import objects as o
from fabric.emulator.binder import Context, as_list
from fabric.emulator.cmdlets_read import _cluster
from fabric.hyperv.api import HyperVError

# What this emulated cluster does not model: it refuses rather than pretend.
UNMODELLED = ("ForceDrain", "TargetNode", "InputObject")


def suspend_cluster_node(ctx: Context, params: dict, inputs) -> list:
    return _node_command(ctx, params, suspend=True)


def resume_cluster_node(ctx: Context, params: dict, inputs) -> list:
    return _node_command(ctx, params, suspend=False)


def _node_command(ctx: Context, params: dict, suspend: bool) -> list:
    unmodelled = [p for p in UNMODELLED if params.get(p) is not None]
    if unmodelled:
        ctx.error("NotSupported", f"This emulated cluster does not model -{unmodelled[0]}.")
        return []
    out = []
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        if cluster is None:
            return []
        names = [str(n) for n in as_list(params.get("Name"))] or [fabric.hosts[ctx.fqdn].name]
        for name in names:
            try:
                if suspend:
                    node = fabric.suspend_node(
                        ctx.fqdn, name, drain=bool(params.get("Drain")), command=(ctx.cmdlet.name, ctx.received)
                    )
                else:
                    failback = str(params.get("Failback") or "")
                    command = (ctx.cmdlet.name, ctx.received)
                    node = fabric.resume_node(ctx.fqdn, name, failback=failback, command=command)
            except HyperVError as exc:
                ctx.hyperv_error(exc, target=name)
                continue
            out.append(node.fqdn)
    if suspend and params.get("Wait") is not None and params.get("Wait") is not False:
        _wait_for_drains(ctx, out)
    with ctx.session() as fabric:
        return [o.cluster_node(fabric, cluster, fqdn) for fqdn in out]


def _wait_for_drains(ctx: Context, nodes: list[str]) -> None:
    """-Wait: the cmdlet returns once the drains have ended (or the pipeline is stopped)."""
    while True:
        with ctx.session() as fabric:
            if all(fabric.hosts[f].drain_status != "in_progress" for f in nodes):
                return
        if not ctx.wait(ctx.side.progress_interval):
            return


def get_cluster_group(ctx: Context, params: dict, inputs) -> list:
    """Get-ClusterGroup [[-Name] N] [-VMId G], or the groups of nodes piped in: the VM roles."""
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        if cluster is None:
            return []
        vms = [v for v in fabric.vms.values() if v.is_clustered and v.host in cluster.nodes]
        if inputs is not None:
            owners = {str(getattr(i, "Name", i)).lower() for i in inputs}
            vms = [v for v in vms if fabric.hosts[v.host].name.lower() in owners]
        names = {str(n).lower() for n in as_list(params.get("Name"))}
        if names:
            vms = [v for v in vms if v.name.lower() in names]
        if params.get("VMId") is not None:
            vms = [v for v in vms if v.id.lower() == str(params["VMId"]).lower()]
        if (names or params.get("VMId") is not None) and not vms:
            target = str(params.get("VMId") or params.get("Name"))
            ctx.error(
                "ObjectNotFound",
                f"The cluster group '{target}' was not found",
                category=ErrorCategory.ObjectNotFound,
                target=target,
            )
        return [o.cluster_group(v, fabric.hosts[v.host], cluster.name) for v in sorted(vms, key=lambda v: v.name)]
