"""Cmdlets that change a host or a cluster: Set-VMHost, Enable-/Disable-VMMigration, migration networks,
cluster roles, job control, and the one known script (a cluster's MaximumParallelMigrations).

Each passes its parameters, as received, to the fabric method that records it.
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import ErrorCategory

from fabric.emulator import objects as o
from fabric.emulator.binder import Context, as_list
from fabric.emulator.cmdlets_read import not_a_node, select_vms
from fabric.emulator.records import plain, prop
from fabric.hyperv.api import HyperVError
from fabric.hyperv.host_values import normal_subnet, subnet_problem

# Set-VMHost parameter -> (fabric setting, how to read the value)
_PERFORMANCE = {
    "tcpip": "tcpip",
    "0": "tcpip",
    "compression": "compression",
    "1": "compression",
    "smb": "smb",
    "2": "smb",
}
_AUTH = {"credssp": "credssp", "0": "credssp", "kerberos": "kerberos", "1": "kerberos"}


def _enum_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return (name or str(value)).lower()


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value  # the fabric refuses it with InvalidParameter


SET_VMHOST = {
    "MaximumVirtualMachineMigrations": ("max_live_migrations", _int),
    "MaximumStorageMigrations": ("max_storage_migrations", _int),
    "VirtualMachineMigrationPerformanceOption": (
        "performance_option",
        lambda v: _PERFORMANCE.get(_enum_name(v), _enum_name(v)),
    ),
    "VirtualMachineMigrationAuthenticationType": ("auth_type", lambda v: _AUTH.get(_enum_name(v), _enum_name(v))),
    "UseAnyNetworkForMigration": ("use_any_network", bool),
    "VirtualMachinePath": ("vm_path", str),
    "VirtualHardDiskPath": ("vhd_path", str),
}


def _received(ctx: Context, params: dict) -> tuple[str, dict[str, Any]]:
    """The command for the fabric's record: its parameters as the client sent them."""
    return ctx.cmdlet.name, dict(ctx.received) or {k: plain(v) for k, v in params.items()}


def set_vmhost(ctx: Context, params: dict, inputs) -> list:
    values = {setting: convert(params[name]) for name, (setting, convert) in SET_VMHOST.items() if name in params}
    return _set(ctx, params, values)


def enable_migration(ctx: Context, params: dict, inputs) -> list:
    return _set(ctx, params, {"migration_enabled": True})


def disable_migration(ctx: Context, params: dict, inputs) -> list:
    return _set(ctx, params, {"migration_enabled": False})


def _set(ctx: Context, params: dict, values: dict[str, Any]) -> list:
    with ctx.session() as fabric:
        try:
            host = fabric.set_host_settings(ctx.fqdn, command=_received(ctx, params), **values)
        except HyperVError as exc:
            ctx.hyperv_error(exc, target=ctx.fqdn)
            return []
        return [o.vm_host(host)] if params.get("Passthru") else []


def add_migration_network(ctx: Context, params: dict, inputs) -> list:
    """Add-VMMigrationNetwork -Subnet [-Priority]: a subnet the host may use for live migration."""
    subnet = str(params.get("Subnet") or "")
    with ctx.session() as fabric:
        networks = list(fabric.hosts[ctx.fqdn].migration_networks)
        if subnet_problem(subnet) is None and normal_subnet(subnet) in networks:
            return []  # already there: Hyper-V keeps one entry per subnet
        wanted = [*networks, normal_subnet(subnet) if subnet_problem(subnet) is None else subnet]
        return _set_networks(ctx, fabric, params, wanted, subnet)


def remove_migration_network(ctx: Context, params: dict, inputs) -> list:
    """Remove-VMMigrationNetwork -Subnet: the host no longer migrates over that subnet."""
    subnet = str(params.get("Subnet") or "")
    with ctx.session() as fabric:
        networks = list(fabric.hosts[ctx.fqdn].migration_networks)
        wanted = [n for n in networks if n.lower() != subnet.strip().lower()]
        if wanted == networks:
            ctx.error(
                "ObjectNotFound",
                f"No migration network was found for subnet '{subnet}' on '{fabric.hosts[ctx.fqdn].name}'.",
                category=ErrorCategory.ObjectNotFound,
                target=subnet,
            )
            return []
        return _set_networks(ctx, fabric, params, wanted, subnet)


def _set_networks(ctx: Context, fabric, params: dict, wanted: list[str], subnet: str) -> list:
    try:
        host = fabric.set_host_settings(ctx.fqdn, command=_received(ctx, params), migration_networks=wanted)
    except HyperVError as exc:
        ctx.hyperv_error(exc, target=subnet)
        return []
    return o.migration_networks(host) if params.get("Passthru") else []


def set_cluster_parallel_migrations(ctx: Context, params: dict, inputs) -> list:
    """The known script powershell.SET_CLUSTER_PARALLEL_MIGRATIONS: ([int]$Value binds as PowerShell would)."""
    cluster, raw = str(params.get("Cluster") or ""), params.get("Value")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        ctx.error(
            "ParameterArgumentTransformationError",
            f"Cannot process argument transformation on parameter 'Value'. Cannot convert value \"{raw}\" to type "
            '"System.Int32". Error: "Input string was not in a correct format."',
            category=ErrorCategory.InvalidData,
            target=raw,
        )
        return []
    with ctx.session() as fabric:
        try:
            fabric.set_cluster_parallel_migrations(cluster, value, fqdn=ctx.fqdn, command=_received(ctx, params))
        except HyperVError as exc:
            ctx.hyperv_error(exc, target=cluster)
    return []


def remove_cluster_group(ctx: Context, params: dict, inputs) -> list:
    """Remove-ClusterGroup -VMId|-Name|<piped group> -RemoveResources -Force: the VM leaves high availability."""
    with ctx.session() as fabric:
        if not fabric.hosts[ctx.fqdn].cluster:
            not_a_node(ctx)
            return []
        for vm_id in _role_vm_ids(ctx, fabric, params, inputs, name_param="Name"):
            try:
                fabric.remove_cluster_role(ctx.fqdn, vm_id, command=_received(ctx, params))
            except HyperVError as exc:
                ctx.hyperv_error(exc, target=vm_id)
    return []


def add_cluster_vm_role(ctx: Context, params: dict, inputs) -> list:
    """Add-ClusterVirtualMachineRole -VMId|-VirtualMachine [-Cluster]: the VM is highly available again."""
    out = []
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        if not host.cluster:
            not_a_node(ctx)
            return []
        if params.get("Cluster") and str(params["Cluster"]).lower() not in (host.cluster.lower(), ""):
            ctx.error("ObjectNotFound", f"Cluster '{params['Cluster']}' is not the cluster of '{host.name}'")
            return []
        for vm_id in _role_vm_ids(ctx, fabric, params, inputs, name_param="VirtualMachine"):
            try:
                fabric.add_cluster_role(ctx.fqdn, vm_id, command=_received(ctx, params))
            except HyperVError as exc:
                ctx.hyperv_error(exc, target=vm_id)
                continue
            vm = fabric.vms[vm_id]
            out.append(o.cluster_group(vm, fabric.hosts[vm.host], host.cluster))
    return out


def _role_vm_ids(ctx: Context, fabric, params: dict, inputs, name_param: str) -> list[str]:
    if inputs:
        return [str(prop(i, "VMId") or prop(i, "Id")) for i in inputs]
    if params.get("VMId") is not None:
        return [str(params["VMId"]).lower()]
    host = fabric.hosts[ctx.fqdn]
    nodes = set(fabric.clusters[host.cluster].nodes) if host.cluster in fabric.clusters else {ctx.fqdn}
    name = str(params.get(name_param, ""))
    found = [vm.id for vm in fabric.vms.values() if vm.host in nodes and vm.name == name]
    if not found:
        ctx.error(
            "ObjectNotFound",
            f"The cluster group '{name}' was not found",
            category=ErrorCategory.ObjectNotFound,
            target=name,
        )
    return found


# CIM_ConcreteJob.RequestStateChange return values (wmi-docs/cim-concretejob-requeststatechange.md).
COMPLETED, FAILED, INVALID_STATE_TRANSITION = 0, 4, 4097


def invoke_cim_method(ctx: Context, params: dict, inputs) -> list:
    """RequestStateChange on Msvm_MigrationJob instances (4 = terminate: cancels the migration).

    Returns 0 once terminated (the simulated job ends at once), 4097 (invalid state transition) for a
    job that already ended or a transition other than terminate."""
    method = str(params.get("MethodName", ""))
    arguments = params.get("Arguments") or {}
    instances = [*as_list(params.get("InputObject")), *(inputs or [])]
    if method.lower() != "requeststatechange":
        ctx.error("HRESULT 0x80041055", f"Method '{method}' is not supported by this emulated host")
        return []
    out = []
    with ctx.session() as fabric:
        for instance in instances:
            job_id = str(prop(instance, "InstanceID", ""))
            if int(prop(arguments, "RequestedState", 0) or 0) != 4:
                out.append(o.cim_method_result(INVALID_STATE_TRANSITION))  # only terminating is modelled
                continue
            try:
                fabric.cancel_migration(
                    job_id, command=(ctx.cmdlet.name, {**_received(ctx, params)[1], "InstanceID": job_id})
                )
            except HyperVError as exc:
                # A job that already ended cannot be terminated: an invalid state transition.
                value = INVALID_STATE_TRANSITION if exc.code == "InvalidState" else FAILED
                out.append(o.cim_method_result(value, Message=exc.message))
                continue
            out.append(o.cim_method_result(COMPLETED))
    return out


def stop_vm(ctx: Context, params: dict, inputs) -> list:
    """Stop-VM -Name|piped VM [-Force] [-Save] [-TurnOff] [-Passthru]: shut down (or, with -Save, save)."""
    return _power(ctx, params, inputs, save=bool(params.get("Save")))


def save_vm(ctx: Context, params: dict, inputs) -> list:
    """Save-VM -Name|piped VM [-Passthru]."""
    return _power(ctx, params, inputs, save=True)


def start_vm(ctx: Context, params: dict, inputs) -> list:
    """Start-VM -Name|piped VM [-Passthru]: boot an off VM, resume a saved one."""
    return _power(ctx, params, inputs, save=False, start=True)


def _power(ctx: Context, params: dict, inputs, save: bool, start: bool = False) -> list:
    out = []
    with ctx.session() as fabric:
        for vm in select_vms(ctx, fabric, params, inputs):
            received = dict(ctx.received) | ({"VM": {"Name": vm.name, "Id": vm.id}} if inputs else {})
            try:
                if start:
                    fabric.start_vm(ctx.fqdn, vm.id, command=(ctx.cmdlet.name, received))
                else:
                    fabric.stop_vm(ctx.fqdn, vm.id, save=save, command=(ctx.cmdlet.name, received))
            except HyperVError as exc:
                ctx.hyperv_error(exc, target=vm.name)
                continue
            if params.get("Passthru"):
                out.append(o.vm_object(fabric, vm, False))
    return out
