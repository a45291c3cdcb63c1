"""Reading the move facts from objects as a real host sends them (plain property dicts here)."""

from fabric.hyperv import psrp_parse as parse

VM_ID = "6b3a3c3e-1111-4222-8333-944444444444"


def groups(**extra):
    vm = {
        "Id": VM_ID,
        "Name": "sql01",
        "State": "Running",
        "IsClustered": True,
        "Path": "C:\\ClusterStorage\\V1\\sql01",
    }
    vm.update(extra.pop("vm", {}))
    return {"VirtualMachine": [vm], **extra}


def test_a_pass_through_disk_is_no_file_and_is_counted_by_its_disk_number():
    [vm] = parse.vms(
        groups(
            HardDiskDrive=[
                {"VMId": VM_ID, "Path": "C:\\ClusterStorage\\V1\\sql01\\os.vhdx", "DiskNumber": None},
                # What a host reports for a physical disk: a DiskNumber, and no virtual disk file.
                {"VMId": VM_ID, "Path": "Disk 3 200.00 GB Bus 0 Lun 3 Target 0", "DiskNumber": 3},
            ]
        )
    )
    assert [d.path for d in vm.disks] == ["C:\\ClusterStorage\\V1\\sql01\\os.vhdx"]
    assert vm.passthrough_disks == (3,)


def test_only_drives_holding_an_iso_count():
    [vm] = parse.vms(
        groups(
            DvdDrive=[
                {"VMId": VM_ID, "DvdMediaType": "ISO", "Path": "C:\\ISO\\a.iso"},
                {"VMId": VM_ID, "DvdMediaType": "None", "Path": None},
                {"VMId": VM_ID, "DvdMediaType": "PassThrough", "Path": "D:"},
            ]
        )
    )
    assert vm.dvd_isos == ("C:\\ISO\\a.iso",)


def test_possible_owners_come_from_the_vm_resource_whether_nested_objects_are_names_or_objects():
    owners = [
        {"ClusterObject": {"Name": "Virtual Machine sql01"}, "OwnerNodes": [{"Name": "n1"}, {"Name": "n2"}]},
        {"ClusterObject": "Virtual Machine Configuration sql01", "OwnerNodes": ["n3"]},
    ]
    [vm] = parse.vms(groups(ClusterOwnerNodeList=owners))
    assert vm.possible_owners == ("n1", "n2")


def test_a_vm_resource_renamed_by_hand_leaves_its_owners_unknown():
    owners = [{"ClusterObject": "SQL role resource", "OwnerNodes": ["n1"]}]
    [vm] = parse.vms(groups(ClusterOwnerNodeList=owners))
    assert vm.possible_owners == ()


def test_replication_reads_mode_and_servers_and_defaults_to_none():
    replication = [{"VMId": VM_ID, "Mode": "Replica", "PrimaryServer": "hv1.x", "ReplicaServer": "broker.x"}]
    [vm] = parse.vms(groups(VMReplication=replication))
    assert (vm.replication_mode, vm.primary_server, vm.replica_server) == ("replica", "hv1.x", "broker.x")
    [plain] = parse.vms(groups())
    assert plain.replication_mode == "" and plain.checkpoints == 0 and plain.fc_sans == ()


def test_processors_come_from_get_vmprocessor_then_get_vm_and_are_unknown_without_either():
    [vm] = parse.vms(groups(VMProcessor=[{"VMId": VM_ID, "Count": 8, "CompatibilityForMigrationEnabled": True}]))
    assert (vm.processor_count, vm.processor_compatibility) == (8, True)
    [vm] = parse.vms(groups(vm={"ProcessorCount": 4}))
    assert (vm.processor_count, vm.processor_compatibility) == (4, False)
    [vm] = parse.vms(groups())
    assert vm.processor_count == 0


def test_a_disks_type_and_sizes_come_from_get_vhd_and_stay_unknown_when_it_cannot_read_the_file():
    os_disk, data_disk = "C:\\ClusterStorage\\V1\\sql01\\os.vhdx", "C:\\ClusterStorage\\V1\\sql01\\DATA.vhdx"
    [vm] = parse.vms(
        groups(
            HardDiskDrive=[{"VMId": VM_ID, "Path": os_disk}, {"VMId": VM_ID, "Path": data_disk}],
            # Get-VHD answers for the first file only (the second is TOLERATED ObjectNotFound); paths
            # match whatever their case.
            VirtualHardDisk=[
                {"Path": os_disk.upper(), "VhdType": "Dynamic", "FileSize": 9 * 2**30, "Size": 127 * 2**30}
            ],
        )
    )
    assert [(d.vhd_type, d.size_bytes, d.max_size_bytes) for d in vm.disks] == [
        ("Dynamic", 9 * 2**30, 127 * 2**30),
        ("", 0, 0),
    ]
