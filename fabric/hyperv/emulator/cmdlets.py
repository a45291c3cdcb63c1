"""The cmdlets an emulated Hyper-V host understands, with their parameter sets, and its one known script."""

from __future__ import annotations

from fabric.hyperv.emulator import cmdlets_admin as admin
from fabric.hyperv.emulator import cmdlets_move as move
from fabric.hyperv.emulator import cmdlets_read as read
from fabric.hyperv.emulator.binder import Cmdlet
from fabric.hyperv.powershell import SET_CLUSTER_PARALLEL_MIGRATIONS

HV = "Microsoft.HyperV.PowerShell.Commands."
FC = "Microsoft.FailoverClusters.PowerShell."
CIM = "Microsoft.Management.Infrastructure.CimCmdlets."
MOVE_PARAMS = (
    "Name",
    "VM",
    "DestinationHost",
    "DestinationStoragePath",
    "VirtualMachinePath",
    "SnapshotFilePath",
    "SmartPagingFilePath",
    "Vhds",
    "ComputerName",
    "Credential",
)


def _hv(name: str, func, params=(), switches=(), positional=()) -> Cmdlet:
    return Cmdlet(name, func, tuple(params), tuple(switches), tuple(positional), HV + name.replace("-", ""))


def _fc(name: str, func, params=(), switches=(), positional=()) -> Cmdlet:
    return Cmdlet(name, func, tuple(params), tuple(switches), tuple(positional), f"{FC}{name.replace('-', '')}Command")


CMDLETS_LIST = [
    _hv("Get-VMHost", read.get_vmhost, ("ComputerName", "Credential")),
    _hv("Get-VM", read.get_vm, ("Name", "Id", "ComputerName", "Credential"), positional=("Name",)),
    _hv("Get-VMHardDiskDrive", read.get_hard_disks, ("VMName", "VM", "ComputerName"), positional=("VMName",)),
    _hv("Get-VMNetworkAdapter", read.get_network_adapters, ("VMName", "VM", "ComputerName"), ("All",), ("VMName",)),
    _hv("Get-VMProcessor", read.get_vm_processor, ("VMName", "VM", "ComputerName"), positional=("VMName",)),
    # Facts moves fail on (hyperv.md section 9); parameters per reference/powershell-docs/Hyper-V/<name>.md.
    _hv(
        "Get-VMDvdDrive",
        read.get_dvd_drives,
        ("VMName", "VM", "ComputerName", "ControllerNumber", "ControllerLocation"),
        positional=("VMName",),
    ),
    _hv(
        "Get-VMSnapshot",
        read.get_snapshots,
        ("VMName", "VM", "Name", "ComputerName", "SnapshotType"),
        positional=("VMName", "Name"),
    ),
    _hv("Get-VMFibreChannelHba", read.get_fibre_channel_hbas, ("VMName", "VM", "ComputerName"), positional=("VMName",)),
    _hv(
        "Get-VMReplication",
        read.get_replication,
        ("VMName", "VM", "ComputerName", "ReplicaServerName", "PrimaryServerName", "ReplicationMode"),
        positional=("VMName",),
    ),
    _hv("Get-VMSwitch", read.get_switches, ("Name", "ComputerName", "SwitchType"), positional=("Name",)),
    _hv("Get-VMMigrationNetwork", read.get_migration_networks, ("Subnet", "ComputerName")),
    _hv("Get-VMHostSupportedVersion", read.get_supported_versions, ("ComputerName",), ("Default",)),
    Cmdlet("Get-VHD", read.get_vhd, ("Path", "ComputerName"), (), ("Path",), "Microsoft.Vhd.PowerShell.Cmdlets.GetVhd"),
    _hv("Compare-VM", move.compare_vm, MOVE_PARAMS, ("IncludeStorage", "AsJob"), ("Name", "DestinationHost")),
    _hv("Move-VM", move.move_vm, MOVE_PARAMS, ("IncludeStorage", "AsJob", "Passthru"), ("Name", "DestinationHost")),
    _hv(
        "Move-VMStorage",
        move.move_vm_storage,
        (
            "VMName",
            "VM",
            "DestinationStoragePath",
            "VirtualMachinePath",
            "SnapshotFilePath",
            "SmartPagingFilePath",
            "Vhds",
            "ComputerName",
        ),
        ("AsJob", "AllowUnverifiedPaths"),
        ("VMName",),
    ),
    _hv(
        "Set-VMHost",
        admin.set_vmhost,
        (
            "MaximumVirtualMachineMigrations",
            "MaximumStorageMigrations",
            "VirtualMachineMigrationPerformanceOption",
            "VirtualMachineMigrationAuthenticationType",
            "UseAnyNetworkForMigration",
            "VirtualMachinePath",
            "VirtualHardDiskPath",
            "ComputerName",
        ),
        ("Passthru",),
    ),
    _hv(
        "Add-VMMigrationNetwork",
        admin.add_migration_network,
        ("Subnet", "Priority", "ComputerName"),
        ("Passthru",),
        ("Subnet", "Priority"),
    ),
    _hv(
        "Remove-VMMigrationNetwork",
        admin.remove_migration_network,
        ("Subnet", "ComputerName"),
        ("Passthru",),
        ("Subnet",),
    ),
    _hv("Enable-VMMigration", admin.enable_migration, ("ComputerName",), ("Passthru",)),
    _hv("Disable-VMMigration", admin.disable_migration, ("ComputerName",), ("Passthru",)),
    _fc("Get-Cluster", read.get_cluster, ("Name", "Domain")),
    _fc("Get-ClusterNode", read.get_cluster_node, ("Name", "Cluster"), positional=("Name",)),
    # Possible owners of a VM role's resources: Get-ClusterResource (reference), piped into
    # Get-ClusterOwnerNode (learn.microsoft.com/powershell/module/failoverclusters/get-clusterownernode).
    _fc(
        "Get-ClusterResource",
        read.get_cluster_resource,
        ("Name", "VMId", "InputObject", "Cluster"),
        positional=("Name",),
    ),
    _fc(
        "Get-ClusterOwnerNode",
        read.get_cluster_owner_node,
        ("Resource", "Group", "ResourceType", "InputObject", "Cluster"),
    ),
    _fc(
        "Move-ClusterVirtualMachineRole",
        move.move_cluster_role,
        ("Name", "VMId", "Node", "MigrationType", "Wait", "Cluster"),
        ("Cancel",),
        ("Name", "Node"),
    ),
    _fc(
        "Remove-ClusterGroup",
        admin.remove_cluster_group,
        ("Name", "VMId", "Cluster", "InputObject"),
        ("RemoveResources", "Force"),
        ("Name",),
    ),
    _fc("Add-ClusterVirtualMachineRole", admin.add_cluster_vm_role, ("VMId", "VirtualMachine", "Name", "Cluster")),
    Cmdlet(
        "Get-SmbConnection",
        read.get_smb_connection,
        ("ServerName", "ShareName"),
        (),
        (),
        "Microsoft.Management.Infrastructure.CimCmdlets.SmbConnection",
    ),
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
