"""records.ps_object builds its note properties itself: the objects (and bytes) must stay psrpcore's."""

import datetime
from xml.etree import ElementTree

from psrpcore.types import PSInt64, PSNoteProperty, PSObject, add_note_property, serialize

from fabric.emulator import objects as o
from fabric.emulator.records import VMState, guid, hyperv_object, ps_object
from fabric.sim.demo import build_demo_fabric


def built_by_psrpcore(obj: PSObject) -> PSObject:
    """The same object made the documented way: add_note_property for each property."""
    slow = PSObject()
    slow.PSObject.type_names = list(obj.PSObject.type_names)
    for note in obj.PSObject.extended_properties:
        add_note_property(slow, note.name, note.get_value(obj))
    return slow


def clixml(obj: PSObject) -> bytes:
    return ElementTree.tostring(serialize(obj, None))  # no SecureString: no cipher


def assert_same(obj: PSObject) -> None:
    slow = built_by_psrpcore(obj)
    assert [vars(p) for p in obj.PSObject.extended_properties] == [vars(p) for p in slow.PSObject.extended_properties]
    assert all(type(p) is PSNoteProperty for p in obj.PSObject.extended_properties)
    assert obj.PSObject.adapted_properties == slow.PSObject.adapted_properties == []
    assert clixml(obj) == clixml(slow)


def test_its_objects_are_those_add_note_property_builds():
    nested = hyperv_object("VMHardDiskDrive", Path="C:\\a_x00.vhdx", Size=PSInt64(5))
    assert_same(
        ps_object(
            ["Some.Type"],
            Name="vm_x1_",
            Missing=None,
            Count=3,
            Big=PSInt64(2**40),
            On=True,
            State=VMState.Running,
            Id=guid("6f3f0a4c-6f52-4a3a-9a52-0e2d6b3b8a11"),
            When=datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC),
            Items=["a", 1, None],
            Disk=nested,
        )
    )
    # Properties still read and set as on any PSObject.
    obj = ps_object(["Some.Type"], Name="a", Count=1)
    obj.Count = 2
    assert (obj.Name, obj.Count, obj.PSObject.type_names) == ("a", 2, ["Some.Type", "System.Object"])


def test_every_object_of_a_demo_host_serializes_as_before():
    fabric = build_demo_fabric()
    for host in fabric.hosts.values():
        objs = [o.vm_host(host), *o.switches(host), o.operating_system(host), o.processor(host)]
        for vm in (v for v in fabric.vms.values() if v.host == host.fqdn):
            objs += [o.vm_object(fabric, vm, False), o.vm_processor(vm, host), *o.network_adapters(vm, host)]
            objs += [o.hard_disk(vm, host, d, i) for i, d in enumerate(vm.disks)]
            objs += [*o.dvd_drives(vm, host), *o.snapshots(vm, host), *o.fibre_channel_hbas(vm, host)]
        for obj in objs:
            assert_same(obj)
