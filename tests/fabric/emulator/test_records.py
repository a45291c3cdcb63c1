"""records.ps_object builds its note properties itself: the objects (and bytes) must stay psrpcore's."""

import datetime
import time
import uuid
from xml.etree import ElementTree

from psrpcore.types import PSInt64, PSNoteProperty, PSObject, PSVersion, add_note_property, serialize

from fabric.emulator import clixml_writer
from fabric.emulator import objects as o
from fabric.emulator.records import (
    ClusterNodeState,
    DvdMediaType,
    VMState,
    guid,
    hyperv_object,
    ps_object,
    uint16,
    uint32,
)
from fabric.hyperv.api import MoveRequest
from fabric.sim.demo import build_demo_fabric

D = ".contoso.test"


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


def psrpcore_bytes(obj: PSObject) -> bytes:
    """What psrpcore's pool sends for an output object (ServerRunspacePool.prepare_message)."""
    return ElementTree.tostring(serialize(obj, None), encoding="utf-8", method="xml")


def test_the_written_clixml_is_psrpcores_for_every_kind_of_value():
    running, nested = VMState.Running, hyperv_object("VMHardDiskDrive", Path='C:\\a&b<c>"_x00.vhdx', Size=PSInt64(5))
    obj = ps_object(
        ["Some.Type&Co"],
        Name="vm_x1_ é \u0007 \U0001f600",
        Empty="",
        Plain="printable ASCII, written as it is",
        Escaped="a\tb_Xc\x7f",
        Missing=None,
        Count=3,
        Negative=-4,
        Big=2**40,
        Bigger=PSInt64(2**40),
        Small=uint16(7),
        Unsigned=uint32(2**31),
        Ratio=0.25,
        On=True,
        Off=False,
        State=running,
        Again=running,  # the same enum member twice: a <Ref>
        Node=ClusterNodeState.Paused,  # equal in value to Running, another member
        Media=DvdMediaType.none,
        Id=guid("6f3f0a4c-6f52-4a3a-9a52-0e2d6b3b8a11"),
        Uuid=uuid.UUID("6f3f0a4c-6f52-4a3a-9a52-0e2d6b3b8a12"),
        Version=PSVersion("10.0.17763"),
        When=datetime.datetime(2026, 12, 6, 12, 0, 1, 123456, tzinfo=datetime.UTC),
        Items=["a", 1, None, [running]],
        NoItems=[],
        Disk=nested,
        SameDisk=nested,  # the same object twice: a <Ref>
        Other=hyperv_object("VMHardDiskDrive", Path="D:\\b.vhdx"),  # its type: a <TNRef>
    )
    obj.PSObject.to_string = "Some <thing>"

    assert clixml_writer.write(obj) == psrpcore_bytes(obj)


def test_a_value_the_writer_does_not_know_is_left_to_psrpcore():
    assert clixml_writer.write(ps_object(["Some.Type"], Table={"a": 1})) is None
    assert clixml_writer.write(ps_object(["Some.Type"], Raw=b"\x00")) is None
    assert clixml_writer.write("plain text") is None  # only the cmdlets' objects


def test_the_written_clixml_is_psrpcores_for_every_object_the_hosts_send(driver, conns, emu_store, monkeypatch):
    written, differ = [], []
    write = clixml_writer.write

    def compared(value):
        data = write(value)
        if data is not None:
            (written if data == psrpcore_bytes(value) else differ).append(data)
        return data

    monkeypatch.setattr(clixml_writer, "write", compared)
    for conn in conns.values():
        driver.inventory(conn)
    with emu_store.session() as fabric:
        vm = fabric.vm_by_name("web-dmz02")
    request = MoveRequest(kind="live", vm_id=vm.id, source=vm.host, destination="hv-s1" + D)
    migration_id = driver.start_migration(conns["hv-s2"], request)
    while driver.migration_status(conns["hv-s2"], migration_id).state == "running":
        time.sleep(0.05)

    assert not differ, differ[:1]
    assert len(written) > 300
