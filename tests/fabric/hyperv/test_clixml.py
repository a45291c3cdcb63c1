"""The quicker CLIXML reader reads what pypsrp's reads: every object a host sends, property by
property (the emulator's objects, serialized as a host serializes them)."""

import uuid
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from psrpcore.types import serialize
from pypsrp.complex_objects import (
    ApartmentState,
    ComplexObject,
    GenericComplexObject,
    HostInfo,
    Pipeline,
    RemoteStreamOptions,
)
from pypsrp.messages import CreatePipeline, Destination, Message
from pypsrp.serializer import Serializer

from fabric.emulator import objects, records
from fabric.hyperv import psrp
from fabric.hyperv.clixml import QuickSerializer
from fabric.hyperv.psrp_session import SWITCH, build
from fabric.sim.demo import build_demo_fabric


def plain(value):
    """An object as comparable data: nested objects by their types, text and properties."""
    if isinstance(value, GenericComplexObject):
        props = (value.adapted_properties, value.extended_properties, value.property_sets)
        return (tuple(value.types), value.to_string, *(plain(p) for p in props), value._xml)
    if isinstance(value, ComplexObject):  # one pypsrp knows (an error record): its attributes
        names = [n for n in vars(value) if not n.startswith("_")] + ["_to_string", "_xml"]
        return (type(value).__name__, {n: plain(getattr(value, n)) for n in names})
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def read(serializer, xml: str):
    return plain(serializer.deserialize(xml))


@pytest.fixture(scope="module")
def host_objects():
    fabric = build_demo_fabric(seed=1)
    found = []
    for vm in fabric.vms.values():
        host = fabric.hosts[vm.host]
        found += [objects.vm_object(fabric, vm, False), objects.vm_processor(vm, host)]
        found += objects.network_adapters(vm, host) + [objects.vhd(d, host) for d in vm.disks]
        found += objects.dvd_drives(vm, host) + objects.snapshots(vm, host) + objects.fibre_channel_hbas(vm, host)
        if vm.replication_mode:
            found.append(objects.replication(vm, host))
    found += [objects.cluster_object(c) for c in fabric.clusters.values()]
    for c in fabric.clusters.values():
        found += [objects.cluster_node(fabric, c, fqdn) for fqdn in c.nodes]
    for host in fabric.hosts.values():
        found += [objects.vm_host(host), objects.operating_system(host), objects.processor(host)]
        found += objects.supported_versions(host) + objects.migration_networks(host) + objects.switches(host)
    found += [objects.owner_nodes("Virtual Machine vm1", ["node1", "node2"]), objects.dns_record("fs1", "fs1.x.y")]
    found.append(records.error_record("ObjectNotFound", "not found", command_class="X.GetVhd", target="a"))
    return [ElementTree.tostring(serialize(o, None), encoding="unicode") for o in found]


def test_it_reads_every_object_as_pypsrp_does(host_objects):
    assert len(host_objects) > 100
    for xml in host_objects:
        assert read(QuickSerializer(), xml) == read(Serializer(), xml)


def test_type_names_referenced_again_and_nested_lists_read_as_pypsrp_does():
    """One message whose objects share their type names (TNRef) and hold a list and a hashtable."""
    switch = "<T>Deserialized.Microsoft.HyperV.PowerShell.VMSwitch</T><T>Deserialized.System.Object</T>"
    xml = (
        '<Obj RefId="0"><MS>'
        f'<Obj N="First" RefId="1"><TN RefId="0">{switch}</TN><ToString>a</ToString>'
        '<Props><S N="Name">a</S></Props></Obj>'
        '<Obj N="Again" RefId="2"><TNRef RefId="0" /><Props><S N="Name">b</S></Props></Obj>'
        '<Obj N="Items" RefId="3"><TN RefId="1"><T>System.Object[]</T><T>System.Array</T><T>System.Object</T></TN>'
        "<LST><S>x</S><I32>2</I32></LST></Obj>"
        '<Obj N="Table" RefId="4"><TN RefId="2"><T>System.Collections.Hashtable</T><T>System.Object</T></TN>'
        '<DCT><En><S N="Key">k</S><I32 N="Value">1</I32></En></DCT></Obj>'
        "</MS></Obj>"
    )
    quick, slow = QuickSerializer().deserialize(xml), Serializer().deserialize(xml)
    assert plain(quick) == plain(slow)
    assert quick.extended_properties["Again"].types[0] == "Deserialized.Microsoft.HyperV.PowerShell.VMSwitch"
    assert quick.extended_properties["Items"] == ["x", 2]
    assert quick.extended_properties["Table"] == {"k": 1}


def test_lists_read_as_pypsrp_does():
    """ArrayLists (as the emulator writes a list), empty and nested, one referenced again, a Deserialized
    one, and an array whose entries pypsrp reads as objects."""
    array_list = "<T>System.Collections.ArrayList</T><T>System.Object</T>"
    xml = (
        '<Obj RefId="0"><MS>'
        f'<Obj N="Items" RefId="1"><TN RefId="0">{array_list}</TN><LST><S>x</S><I32>2</I32><Nil />'
        '<Obj RefId="2"><TNRef RefId="0" /><LST /></Obj>'
        '<Obj RefId="3"><TN RefId="1"><T>Microsoft.HyperV.PowerShell.VMSwitch</T><T>System.Object</T></TN>'
        '<MS><S N="Name">a</S></MS></Obj></LST></Obj>'
        '<Ref N="Again" RefId="1" />'
        '<Obj N="Empty" RefId="4"><TNRef RefId="0" /><LST /></Obj>'
        '<Obj N="Bare" RefId="5"><TNRef RefId="0" /></Obj>'
        '<Obj N="Old" RefId="6"><TN RefId="2"><T>Deserialized.System.Collections.ArrayList</T>'
        "<T>Deserialized.System.Object</T></TN><LST><S>y</S></LST></Obj>"
        '<Obj N="Objects" RefId="7"><TN RefId="3"><T>System.Object[]</T><T>System.Array</T><T>System.Object</T></TN>'
        '<LST><Obj RefId="8"><TNRef RefId="1" /><MS><S N="Name">b</S></MS></Obj></LST></Obj>'
        "</MS></Obj>"
    )
    quick, slow = QuickSerializer().deserialize(xml), Serializer().deserialize(xml)
    assert plain(quick) == plain(slow)
    props = quick.extended_properties
    assert props["Items"][:3] == ["x", 2, None] and props["Items"][3] == []
    assert props["Again"] is props["Items"]
    assert (props["Empty"], props["Bare"], props["Old"]) == ([], [], ["y"])


@pytest.mark.parametrize(
    "xml",
    [
        '<S N="x">line_x000A_two</S>',
        "<S>_X000A_ and _x00_ and _x_ and _x0041__x0042_</S>",
        "<S>x_y_z</S>",
        "<S />",
        "<B>True</B>",
        "<I64>-5</I64>",
        "<U64>18446744073709551615</U64>",
        "<Db>1.5</Db>",
        "<G>6b3a3c3e-1111-4222-8333-944444444444</G>",
        "<Nil />",
        "<BA>AAE=</BA>",
        "<C>65</C>",
        "<DT>2026-12-05T10:00:00Z</DT>",
    ],
)
def test_it_reads_each_primitive_as_pypsrp_does(xml):
    assert QuickSerializer().deserialize(xml) == Serializer().deserialize(xml)


def create_pipeline(statements):
    """The CreatePipeline message pypsrp's PowerShell.begin_invoke sends for these statements."""
    pool = SimpleNamespace(host=None, protocol_version="2.3", apartment_state=ApartmentState(value=2))
    ps = build(pool, tuple(statements))
    options = RemoteStreamOptions(value=RemoteStreamOptions.ADD_INVOCATION_INFO)
    pipeline = Pipeline(is_nested=False, cmds=ps.commands, history=None, redirect_err_to_out=False)
    return CreatePipeline(
        no_input=True,
        apartment_state=pool.apartment_state,
        remote_stream_options=options,
        add_to_history=False,
        host_info=HostInfo(host=None),
        pipeline=pipeline,
        is_nested=False,
    )


@pytest.mark.parametrize(
    "statements",
    [
        [*psrp.HOST_STATEMENTS, *psrp.VM_STATEMENTS],
        psrp.CLUSTER_STATEMENTS,
        [[("Get-VM", {"Id": "6b3a3c3e-1111-4222-8333-944444444444"}), ("Stop-VM", {"Force": SWITCH})]],
        [[("Set-VMHost", {"MaximumVirtualMachineMigrations": 1, "UseAnyNetworkForMigration": True})]],
        [[("Set-VMHost", {"MaximumVirtualMachineMigrations": True, "UseAnyNetworkForMigration": 1})]],
        [[("Move-VM", {"Vhds": [{"SourceFilePath": "a", "DestinationFilePath": "b"}]})]],
    ],
)
def test_a_pipeline_written_once_is_sent_as_pypsrp_writes_it(statements):
    rpid, quick = str(uuid.uuid4()), QuickSerializer()
    for _ in range(2):  # written, then reused
        pid = str(uuid.uuid4())
        sent = Message(Destination.SERVER, rpid, pid, create_pipeline(statements), quick).pack()
        assert sent == Message(Destination.SERVER, rpid, pid, create_pipeline(statements), Serializer()).pack()
