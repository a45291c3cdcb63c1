"""The cmdlets an emulated Hyper-V host understands, and its one known script.

A cmdlet of Microsoft's help (cmdlet_facts.json) binds by its facts: its registration names only the
function. Parameter lists given here anyway are not used for it (tests cross-check them against the
facts); commands outside the reference (CIM, Where-Object, DNS, the script) bind by their lists.
"""

from __future__ import annotations

from fabric.emulator import cmdlets_admin as admin
from fabric.emulator import cmdlets_cluster as cluster
from fabric.emulator import cmdlets_move as move
from fabric.emulator import cmdlets_read as read
from fabric.emulator.binder import Cmdlet
from fabric.hyperv.powershell import SET_CLUSTER_PARALLEL_MIGRATIONS

HV = "Microsoft.HyperV.PowerShell.Commands."
FC = "Microsoft.FailoverClusters.PowerShell."
CIM = "Microsoft.Management.Infrastructure.CimCmdlets."


def _hv(name: str, func, params=(), switches=(), positional=()) -> Cmdlet:
    return Cmdlet(name, func, tuple(params), tuple(switches), tuple(positional), HV + name.replace("-", ""))


def _fc(name: str, func, params=(), switches=(), positional=()) -> Cmdlet:
    return Cmdlet(name, func, tuple(params), tuple(switches), tuple(positional), f"{FC}{name.replace('-', '')}Command")


CMDLETS_LIST = [
    _hv("Get-VMHost", read.get_vmhost),
    _hv("Get-VM", read.get_vm),
    _hv("Get-VMHardDiskDrive", read.get_hard_disks),
    _hv("Get-VMNetworkAdapter", read.get_network_adapters),
    _hv("Get-VMProcessor", read.get_vm_processor),
    # Facts moves fail on (hyperv.md section 9).
    _hv("Get-VMDvdDrive", read.get_dvd_drives),
    _hv("Get-VMSnapshot", read.get_snapshots),
    _hv("Get-VMFibreChannelHba", read.get_fibre_channel_hbas),
    _hv("Get-VMReplication", read.get_replication),
    _hv("Get-VMSwitch", read.get_switches),
    _hv("Get-VMMigrationNetwork", read.get_migration_networks),
    _hv("Get-VMHostSupportedVersion", read.get_supported_versions),
    Cmdlet("Get-VHD", read.get_vhd, command_class="Microsoft.Vhd.PowerShell.Cmdlets.GetVhd"),
    _hv("Compare-VM", move.compare_vm),
    _hv("Move-VM", move.move_vm),
    _hv("Move-VMStorage", move.move_vm_storage),
    _hv("Set-VMHost", admin.set_vmhost),
    _hv("Add-VMMigrationNetwork", admin.add_migration_network),
    _hv("Remove-VMMigrationNetwork", admin.remove_migration_network),
    _hv("Enable-VMMigration", admin.enable_migration),
    _hv("Disable-VMMigration", admin.disable_migration),
    _hv("Stop-VM", admin.stop_vm),
    _hv("Save-VM", admin.save_vm),
    _hv("Start-VM", admin.start_vm),
    _fc("Get-Cluster", read.get_cluster),
    # Its command class is GetNodeCommand, as its errors name it (ClusterEndpointNotRegistered,...GetNodeCommand).
    Cmdlet("Get-ClusterNode", read.get_cluster_node, command_class=FC + "GetNodeCommand"),
    _fc("Get-ClusterResource", read.get_cluster_resource),
    # Not in the reference folder: possible owners of a VM role's resources, piped from Get-ClusterResource
    # (learn.microsoft.com/powershell/module/failoverclusters/get-clusterownernode); bound by these lists.
    _fc(
        "Get-ClusterOwnerNode",
        read.get_cluster_owner_node,
        ("Resource", "Group", "ResourceType", "InputObject", "Cluster"),
    ),
    _fc("Move-ClusterVirtualMachineRole", move.move_cluster_role),
    _fc("Remove-ClusterGroup", admin.remove_cluster_group),
    _fc("Get-ClusterGroup", cluster.get_cluster_group),
    # Their command classes as FailoverClusters names them: SuspendNodeCommand / ResumeNodeCommand (UNCONFIRMED).
    Cmdlet("Suspend-ClusterNode", cluster.suspend_cluster_node, command_class=FC + "SuspendNodeCommand"),
    Cmdlet("Resume-ClusterNode", cluster.resume_cluster_node, command_class=FC + "ResumeNodeCommand"),
    _fc("Add-ClusterVirtualMachineRole", admin.add_cluster_vm_role),
    Cmdlet("Get-SmbConnection", read.get_smb_connection, command_class=CIM + "SmbConnection"),
    Cmdlet(
        "Resolve-DnsName",
        read.resolve_dns_name,
        ("Name", "Type", "Server"),
        ("DnsOnly",),
        ("Name",),
        "Microsoft.DnsClient.Commands.ResolveDnsName",
    ),
    Cmdlet(
        "Get-CimInstance",
        read.get_cim_instance,
        ("ClassName", "Namespace", "Filter", "Query", "ComputerName"),
        (),
        ("ClassName",),
        CIM + "GetCimInstanceCommand",
    ),
    Cmdlet(
        "Invoke-CimMethod",
        admin.invoke_cim_method,
        ("MethodName", "Arguments", "InputObject", "ClassName", "Namespace"),
        (),
        ("MethodName",),
        CIM + "InvokeCimMethodCommand",
    ),
    Cmdlet(
        "Where-Object",
        read.where_object,
        ("Property", "Value"),
        ("EQ",),
        ("Property", "Value"),
        "Microsoft.PowerShell.Commands.WhereObjectCommand",
    ),
]

CMDLETS = {c.name.lower(): c for c in CMDLETS_LIST}

# Scripts an emulated host runs: only these exact constant texts, their values bound as parameters.
SCRIPTS = {
    SET_CLUSTER_PARALLEL_MIGRATIONS: Cmdlet(
        "Set-ClusterMaximumParallelMigrations (script)",
        admin.set_cluster_parallel_migrations,
        ("Cluster", "Value"),
        (),
        ("Cluster", "Value"),
        "System.Management.Automation.ScriptBlock",
    )
}
