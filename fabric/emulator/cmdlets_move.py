"""The cmdlets that move VMs (Compare-VM, Move-VM, Move-VMStorage, Move-ClusterVirtualMachineRole).

A move starts as a migration job of the simulated host (Msvm_MigrationJob), then the cmdlet follows
it, writing a progress record about once a second ("NN%", PercentComplete, Activity as the job's
caption) while simulated time runs, and a Completed record at the end. Stopping the pipeline stops
the following, not the job: the move goes on and stays visible in Msvm_MigrationJob (hyperv.md
section 5: stopping the pipeline probably does not cancel the host-side move).
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import ErrorCategory

from fabric.emulator import objects as o
from fabric.emulator.binder import Context, as_list
from fabric.emulator.cmdlets_read import not_a_node, select_vms
from fabric.emulator.records import prop, ps_object
from fabric.hyperv.api import HyperVError, MigrationStatus, MoveRequest
from fabric.sim.world import SimVm

CANCELLED_CODE = "0x800704C7"


def resolve_host(fabric, name: str) -> str:
    """A destination as the operator wrote it (FQDN or short name) as the fabric's FQDN; unknown stays as is."""
    lowered = name.lower()
    for host in fabric.hosts.values():
        if lowered in (host.fqdn.lower(), host.name.lower()):
            return host.fqdn
    return name


def _one_vm(ctx: Context, fabric, params: dict, inputs: list | None, name_param: str) -> SimVm | None:
    vms = select_vms(ctx, fabric, params, inputs, name_param=name_param)
    if len(vms) > 1:
        ctx.error(
            "InvalidParameter",
            f"'{params.get(name_param)}' matches {len(vms)} virtual machines; name one, or pipe it from Get-VM -Id.",
            category=ErrorCategory.InvalidArgument,
            target=str(params.get(name_param)),
        )
        return None
    return vms[0] if vms else None


def _vhds(params: dict) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(prop(h, "SourceFilePath")), str(prop(h, "DestinationFilePath"))) for h in as_list(params.get("Vhds"))
    )


def _move_request(ctx: Context, fabric, vm: SimVm, params: dict, storage_only: bool) -> MoveRequest:
    storage_path = str(params.get("DestinationStoragePath") or params.get("VirtualMachinePath") or "")
    vhds = _vhds(params)
    if storage_only:
        return MoveRequest(vm.id, ctx.fqdn, ctx.fqdn, "storage", storage_path=storage_path, vhds=vhds)
    with_storage = bool(params.get("IncludeStorage") or storage_path or vhds)
    kind = ("network" if vm.state in ("off", "saved") else "live_vsm") if with_storage else "live"
    destination = resolve_host(fabric, str(params.get("DestinationHost", "")))
    return MoveRequest(vm.id, ctx.fqdn, destination, kind, storage_path=storage_path, vhds=vhds)


def _received(ctx: Context, params: dict, vm: SimVm, inputs: list | None) -> tuple[str, dict[str, Any]]:
    """The command for the fabric's record: parameters as received, plus the VM a pipeline handed in."""
    received = dict(ctx.received)
    if inputs:
        received["VM"] = {"Name": vm.name, "Id": vm.id}
    return ctx.cmdlet.name, received


def compare_vm(ctx: Context, params: dict, inputs) -> list:
    with ctx.session() as fabric:
        vm = _one_vm(ctx, fabric, params, inputs, "Name")
        if vm is None:
            return []
        request = _move_request(ctx, fabric, vm, params, storage_only=False)
        try:
            found = fabric.compare(request, command=_received(ctx, params, vm, inputs))
        except HyperVError as exc:
            ctx.hyperv_error(exc, target=vm.name)
            return []
        return [o.compare_report(vm, request.destination, list(found))]


def move_vm(ctx: Context, params: dict, inputs) -> list:
    return _move(ctx, params, inputs, storage_only=False, name_param="Name")


def move_vm_storage(ctx: Context, params: dict, inputs) -> list:
    return _move(ctx, params, inputs, storage_only=True, name_param="Name")  # -VMName is its alias


def _move(ctx: Context, params: dict, inputs, storage_only: bool, name_param: str) -> list:
    with ctx.session() as fabric:
        vm = _one_vm(ctx, fabric, params, inputs, name_param)
        if vm is None:
            return []
        request = _move_request(ctx, fabric, vm, params, storage_only)
        try:
            migration_id = fabric.start_migration(request, command=_received(ctx, params, vm, inputs))
        except HyperVError as exc:
            ctx.hyperv_error(exc, target=vm.name)
            return []
    if params.get("AsJob"):
        return [_job(ctx, migration_id)]
    status = follow(ctx, migration_id, o.ACTIVITY_STORAGE if storage_only else o.ACTIVITY_MOVE)
    return _ended(ctx, status, vm, passthru=bool(params.get("Passthru")) and not storage_only)


def move_cluster_role(ctx: Context, params: dict, inputs) -> list:
    """Move-ClusterVirtualMachineRole -Name|-VMId -Node -MigrationType [-Wait 0] [-Cancel], on the host's cluster."""
    with ctx.session() as fabric:
        host = fabric.hosts[ctx.fqdn]
        vm = _cluster_vm(ctx, fabric, params)
        if vm is None:
            return []
        owner = fabric.hosts[vm.host]
        command = _received(ctx, params, vm, None)
        if params.get("Cancel"):
            running = fabric.migration_of_vm(vm.id)
            if running is None:
                ctx.error("InvalidState", f"No migration of '{vm.name}' is in progress", target=vm.name)
                return []
            fabric.cancel_migration(running.id, command=command)
            return [o.cluster_group(vm, owner, host.cluster)]
        node = resolve_host(fabric, str(params.get("Node", "")))
        migration_type = str(params.get("MigrationType", "Live")).lower()
        kind = "live" if migration_type == "live" else "quick"
        try:
            migration_id = fabric.start_migration(MoveRequest(vm.id, vm.host, node, kind), command=command)
        except HyperVError as exc:
            ctx.hyperv_error(exc, target=vm.name)
            return []
    if params.get("Wait") is not None and int(params["Wait"]) == 0:
        with ctx.session() as fabric:
            return [o.cluster_group(vm, fabric.hosts[vm.host], host.cluster)]
    status = follow(ctx, migration_id, o.ACTIVITY_MOVE)
    _ended(ctx, status, vm, passthru=False)
    with ctx.session() as fabric:
        return [o.cluster_group(fabric.vms[vm.id], fabric.hosts[fabric.vms[vm.id].host], host.cluster)]


def _cluster_vm(ctx: Context, fabric, params: dict) -> SimVm | None:
    host = fabric.hosts[ctx.fqdn]
    if not host.cluster:
        not_a_node(ctx)
        return None
    nodes = set(fabric.clusters[host.cluster].nodes)
    candidates = [vm for vm in fabric.vms.values() if vm.host in nodes and vm.is_clustered]
    if params.get("VMId") is not None:
        wanted = str(params["VMId"]).lower()
        found = [vm for vm in candidates if vm.id.lower() == wanted]
    else:
        found = [vm for vm in candidates if vm.name == str(params.get("Name", ""))]
    if len(found) != 1:
        target = params.get("VMId") or params.get("Name")
        ctx.error(
            "ObjectNotFound",
            f"No clustered virtual machine role '{target}' in cluster '{host.cluster}'",
            category=ErrorCategory.ObjectNotFound,
            target=str(target),
        )
        return None
    return found[0]


def follow(ctx: Context, migration_id: str, activity: str) -> MigrationStatus | None:
    """Progress records about once a second until the job ends; None if the pipeline was stopped first."""
    while True:
        with ctx.session() as fabric:
            status = fabric.migration_status(migration_id)
        if status.state != "running":
            ctx.progress(activity, 100 if status.state == "completed" else status.percent, completed=True)
            return status
        ctx.progress(activity, status.percent)
        if not ctx.wait(ctx.side.progress_interval):
            return None


def _ended(ctx: Context, status: MigrationStatus | None, vm: SimVm, passthru: bool) -> list:
    if status is None or status.state == "running":
        return []
    if status.state == "failed" and status.error is not None:
        ctx.hyperv_error(status.error, target=vm.name)
        return []
    if status.state == "cancelled":
        ctx.hyperv_error(
            HyperVError(CANCELLED_CODE, f"The migration of '{vm.name}' was cancelled: the operation was canceled."),
            target=vm.name,
        )
        return []
    if passthru:
        with ctx.session() as fabric:
            return [o.vm_object(fabric, fabric.vms[vm.id], False)]
    return []


def _job(ctx: Context, migration_id: str) -> object:
    """What -AsJob returns: a PowerShell job; the host-side migration job is its EmulatorMigrationJobId."""
    return ps_object(
        ["Microsoft.HyperV.PowerShell.Commands.VMJob", "System.Management.Automation.Job"],
        Name=f"{ctx.cmdlet.name} job",
        State="Running",
        Command=ctx.cmdlet.name,
        Location=ctx.fqdn,
        EmulatorMigrationJobId=migration_id,
    )
