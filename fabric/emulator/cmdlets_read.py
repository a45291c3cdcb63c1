"""The read cmdlets of an emulated host: Hyper-V inventory, CIM classes, cluster, SMB and DNS.

Reads are not written into the fabric's record (that would turn every read of the shared world into
a write of it); the emulator's wire log keeps them (binder.HostSide.on_command).
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import ErrorCategory

from fabric.emulator import objects as o
from fabric.emulator.binder import Context, as_list
from fabric.emulator.records import prop
from fabric.hyperv.powershell import wildcard
from fabric.sim.world import SimVm, unc_parts


def host_vms(fabric, fqdn: str) -> list[SimVm]:
    return [vm for vm in fabric.vms.values() if vm.host == fqdn]


def select_vms(
    ctx: Context, fabric, params: dict, inputs: list | None, name_param: str = "Name", id_param: str = "Id"
) -> list[SimVm]:
    """The host's VMs named by -Name (wildcards), -Id, or piped objects carrying a VM id.

    A name without wildcards or an id that matches nothing writes Hyper-V's not-found error.
    """
    mine = host_vms(fabric, ctx.fqdn)
    if inputs:
        ids = {str(prop(obj, "VMId") or prop(obj, "Id") or "").lower() for obj in inputs}
        return [vm for vm in mine if vm.id.lower() in ids]
    if params.get(id_param) is not None:
        wanted = str(params[id_param]).lower()
        found = [vm for vm in mine if vm.id.lower() == wanted]
        if not found:
            ctx.error(
                "InvalidParameter",
                f'Hyper-V was unable to find a virtual machine with id "{params[id_param]}".',
                category=ErrorCategory.ObjectNotFound,
                target=str(params[id_param]),
            )
        return found
    names = as_list(params.get(name_param))
    if not names:
        return mine
    found: list[SimVm] = []
    for name in names:
        pattern = wildcard(str(name))
        matches = [vm for vm in mine if pattern.match(vm.name)]
        if not matches and not any(c in str(name) for c in "*?["):
            ctx.error(
                "InvalidParameter",
                f'Hyper-V was unable to find a virtual machine with name "{name}".',
                category=ErrorCategory.ObjectNotFound,
                target=str(name),
            )
        found += [vm for vm in matches if vm not in found]
    return found


def get_vmhost(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        return [o.vm_host(fabric.hosts[ctx.fqdn])]


def get_vm(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        migrating = {m.vm_id for m in fabric.running_migrations()}
        return [o.vm_object(fabric, vm, vm.id in migrating) for vm in select_vms(ctx, fabric, params, inputs)]


def get_hard_disks(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        out = []
        for vm in vms:
            out += [o.hard_disk(vm, host, disk, i) for i, disk in enumerate(vm.disks)]
            out += [o.passthrough_disk(vm, host, n, len(vm.disks) + i) for i, n in enumerate(vm.passthrough_disks)]
        return out


def get_dvd_drives(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        return [drive for vm in vms for drive in o.dvd_drives(vm, host)]


def get_snapshots(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        return [snapshot for vm in vms for snapshot in o.snapshots(vm, host)]


def get_fibre_channel_hbas(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        return [hba for vm in vms for hba in o.fibre_channel_hbas(vm, host)]


def get_replication(ctx: Context, params: dict, inputs) -> list:
    """Get-VMReplication: without -VMName, every replication-enabled VM of the host (its Example 1)."""
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        params = params if params.get("VMName") or inputs else {**params, "VMName": "*"}
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        return [o.replication(vm, host) for vm in vms if vm.replication_mode]


def get_vhd(ctx: Context, params: dict, inputs) -> list:
    paths = [str(p) for p in as_list(params.get("Path"))] + [str(prop(i, "Path")) for i in inputs or []]
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        disks = {d.path.lower(): d for vm in fabric.vms.values() for d in vm.disks}
        out = []
        for path in paths:
            disk = disks.get(path.lower())
            if disk is None:
                ctx.error(
                    "ObjectNotFound",
                    f"Getting the mounted storage instance for the path '{path}' failed.",
                    category=ErrorCategory.ObjectNotFound,
                    target=path,
                )
            else:
                out.append(o.vhd(disk, host))
        return out


def get_network_adapters(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        params = dict(params) if not params.get("All") else {**params, "VMName": "*"}
        vms = select_vms(ctx, fabric, params, inputs, name_param="VMName")
        return [adapter for vm in vms for adapter in o.network_adapters(vm, host)]


def get_vm_processor(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        return [o.vm_processor(vm, host) for vm in select_vms(ctx, fabric, params, inputs, name_param="VMName")]


def get_switches(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        rows = o.switches(fabric.hosts[ctx.fqdn])
    names = as_list(params.get("Name"))
    if names:
        patterns = [wildcard(str(n)) for n in names]
        rows = [r for r in rows if any(p.match(str(prop(r, "Name"))) for p in patterns)]
    return rows


def get_migration_networks(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        return o.migration_networks(fabric.hosts[ctx.fqdn])


def get_supported_versions(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        return o.supported_versions(fabric.hosts[ctx.fqdn])


# What a cluster cmdlet writes on a host that is not a cluster node (the module installed, no cluster):
# error id ClusterEndpointNotRegistered (RPC's EPT_S_NOT_REGISTERED), category ConnectionError.
NOT_A_NODE = (
    "The cluster service is not running.  Make sure that the service is running on all nodes in the cluster.\n"
    "    There are no more endpoints available from the endpoint mapper"
)


def not_a_node(ctx: Context) -> None:
    ctx.error("ClusterEndpointNotRegistered", NOT_A_NODE, category=ErrorCategory.ConnectionError)


def _cluster(ctx: Context, fabric) -> Any:
    host = fabric.hosts[ctx.fqdn]
    if not host.cluster or host.cluster not in fabric.clusters:
        not_a_node(ctx)
        return None
    return fabric.clusters[host.cluster]


def get_cluster(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        name = str(params.get("Name") or "")
        if cluster is not None and name and name.lower() not in (cluster.name.lower(), cluster.fqdn.lower()):
            # An emulated node reaches only its own cluster.
            ctx.error(
                "ClusterNotFound",
                f"The cluster '{name}' was not found or could not be reached from '{fabric.hosts[ctx.fqdn].name}'.",
                category=ErrorCategory.ObjectNotFound,
                target=name,
            )
            return []
        return [] if cluster is None else [o.cluster_object(cluster)]


def get_cluster_node(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        nodes = [] if cluster is None else [o.cluster_node(fabric, cluster, fqdn) for fqdn in cluster.nodes]
    names = {str(n).lower() for n in as_list(params.get("Name"))}
    return [n for n in nodes if not names or str(prop(n, "Name")).lower() in names]


def get_cluster_resource(ctx: Context, params: dict, inputs) -> list:
    """Get-ClusterResource: the VM roles' resources of the cluster, or of the nodes piped in
    (Get-ClusterNode -Name N | Get-ClusterResource: the resources N owns)."""
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        if cluster is None:
            return []
        nodes = {fabric.hosts[f].name.lower(): f for f in cluster.nodes if f in fabric.hosts}
        if inputs is not None:  # piped: only the nodes that came down the pipeline (none: nothing)
            nodes = {n: f for n, f in nodes.items() if n in {str(prop(i, "Name")).lower() for i in inputs}}
        out = []
        for fqdn in nodes.values():
            for vm in host_vms(fabric, fqdn):
                if vm.is_clustered:
                    out += o.cluster_resources(vm, fabric.hosts[fqdn].name, cluster.name)
        names = [str(n).lower() for n in as_list(params.get("Name"))]
        return [r for r in out if not names or str(prop(r, "Name")).lower() in names]


def get_cluster_owner_node(ctx: Context, params: dict, inputs) -> list:
    """Get-ClusterOwnerNode for resources (piped in, or -Resource): their possible owners."""
    resources = [str(prop(i, "Name")) for i in inputs or []] + [str(r) for r in as_list(params.get("Resource"))]
    with ctx.session() as fabric:
        cluster = _cluster(ctx, fabric)
        if cluster is None:
            return []
        everyone = [fabric.hosts[f].name for f in cluster.nodes if f in fabric.hosts]
        by_resource = {}
        for vm in fabric.vms.values():
            if vm.is_clustered and fabric.hosts[vm.host].cluster == cluster.name:
                for kind in ("Virtual Machine", "Virtual Machine Configuration"):
                    by_resource[f"{kind} {vm.name}".lower()] = vm.possible_owners or everyone
        return [o.owner_nodes(r, by_resource[r.lower()]) for r in resources if r.lower() in by_resource]


def get_smb_connection(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        return o.smb_connections(fabric, fabric.hosts[ctx.fqdn])


def resolve_dns_name(ctx: Context, params: dict, inputs) -> list:
    out = []
    with ctx.session() as fabric:
        for name in as_list(params.get("Name")):
            fqdn = _resolve(fabric, str(name))
            if fqdn is None:
                ctx.error(
                    "DNS_ERROR_RCODE_NAME_ERROR",
                    f"{name} : DNS name does not exist",
                    category=ErrorCategory.ResourceUnavailable,
                    target=str(name),
                )
            else:
                out.append(o.dns_record(str(name), fqdn))
    return out


def _resolve(fabric, name: str) -> str | None:
    lowered = name.lower()
    for share in fabric.shares.values():
        server = (unc_parts(share.unc_path) or ("", ""))[0]
        fqdn = share.file_server_fqdn.lower()
        if fqdn and lowered in (server, fqdn, fqdn.split(".")[0], share.file_server.lower()):
            return share.file_server_fqdn
    for host in fabric.hosts.values():
        if lowered in (host.fqdn.lower(), host.name.lower()):
            return host.fqdn
    return None


def get_cim_instance(ctx: Context, params: dict, inputs) -> list:
    class_name = str(params.get("ClassName", "")).lower()
    namespace = str(params.get("Namespace") or o.CIMV2_NS).replace("/", "\\").lower()
    if params.get("Filter") or params.get("Query"):
        # Values must travel as typed parameters; filtering happens with Where-Object -Property -EQ -Value.
        ctx.error("NotSupported", "This emulated host does not evaluate WQL; pipe into Where-Object instead.")
        return []
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        if namespace == o.VIRT_NS.lower() and class_name == "msvm_migrationjob":
            return _migration_jobs(fabric, ctx.fqdn)
        if namespace == o.CIMV2_NS.lower() and class_name == "win32_operatingsystem":
            return [o.operating_system(host)]
        if namespace == o.CIMV2_NS.lower() and class_name == "win32_processor":
            return [o.processor(host)]
    ctx.error("HRESULT 0x80041010", "Invalid class ", category=ErrorCategory.MetadataError, target=class_name)
    return []


def _migration_jobs(fabric, fqdn: str) -> list:
    """The host's Msvm_MigrationJob instances: moves it takes part in and its Compare-VM checks, each
    until TimeBeforeRemoval (5 minutes) after it ended."""
    kept = fabric.now - o.TIME_BEFORE_REMOVAL_S
    moves = [
        o.migration_job(fabric, m)
        for m in fabric.migrations.values()
        if fqdn in (m.source, m.destination) and (m.ended_at is None or m.ended_at > kept)
    ]
    checks = [o.check_job(j) for j in fabric.check_jobs if j["source"] == fqdn and j["at"] > kept]
    return moves + checks


def where_object(ctx: Context, params: dict, inputs) -> list:
    """The comparison form only (-Property P -EQ -Value V): no script blocks travel to the host."""
    name, value = str(params.get("Property", "")), params.get("Value")
    if not params.get("EQ"):
        ctx.error("NotSupported", "Only Where-Object -Property <name> -EQ -Value <value> is supported here.")
        return []
    return [obj for obj in inputs or [] if _equal(prop(obj, name), value)]


def _equal(left: Any, right: Any) -> bool:
    # PowerShell's -eq compares strings case-insensitively and converts the right side to the left's type.
    if left is None or right is None:
        return left is right
    if isinstance(left, str) or isinstance(right, str):
        return str(left).lower() == str(right).lower()
    return left == right
