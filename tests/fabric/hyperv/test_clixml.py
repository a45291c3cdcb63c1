"""The quicker CLIXML reader reads what pypsrp's reads: every object a host sends, property by
property (the emulator's objects, serialized as a host serializes them)."""

from xml.etree import ElementTree

import pytest
from psrpcore.types import serialize
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

from fabric.emulator import objects
from fabric.hyperv.clixml import QuickSerializer
from fabric.sim.demo import build_demo_fabric


def plain(value):
    """An object as comparable data: nested objects by their types, text and properties."""
    if isinstance(value, GenericComplexObject):
        props = (value.adapted_properties, value.extended_properties, value.property_sets)
        return (tuple(value.types), value.to_string, *(plain(p) for p in props), value._xml)
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
    found += [objects.cluster_object(c) for c in fabric.clusters.values()]
    return [ElementTree.tostring(serialize(o, None), encoding="unicode") for o in found]


def test_it_reads_every_object_as_pypsrp_does(host_objects):
    assert len(host_objects) > 100
    for xml in host_objects:
        assert read(QuickSerializer(), xml) == read(Serializer(), xml)


@pytest.mark.parametrize(
    "xml",
    [
        '<S N="x">line_x000A_two</S>',
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
