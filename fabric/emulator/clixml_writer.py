"""The CLIXML of the emulator's output objects, written as text: the bytes psrpcore's serializer writes.

psrpcore builds an ElementTree element for every value (wrapping primitives in PSObjects on the way)
and then writes the tree out: that was two fifths of an emulator process's CPU in an inventory sync
(bench/sync.py, bench/RESULTS.md). The objects the cmdlets return (records.ps_object) hold few kinds
of values: text, numbers, truth values, GUIDs, versions, dates, enums, lists and more such objects.
Those are written here, following psrpcore 0.3.1's _Serializer.serialize rule by rule; any other value
makes write() return None, and psrpcore writes that message as before.
tests/fabric/emulator/test_records.py holds the bytes equal for every object of the demo hosts.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from psrpcore.types import (
    PSByte,
    PSDateTime,
    PSEnumBase,
    PSGuid,
    PSInt,
    PSInt16,
    PSInt64,
    PSList,
    PSObject,
    PSSByte,
    PSSingle,
    PSUInt,
    PSUInt16,
    PSUInt64,
    PSVersion,
)
from psrpcore.types._base import TypeRegistry
from psrpcore.types._serializer import _serialize_datetime, _serialize_enum_to_string, _serialize_string

from fabric.emulator.records import HostObject

_TAG = {ps_type: tag for tag, ps_type in TypeRegistry().element_registry.items()}
# psrpcore's integer types (PSObjects that are ints), written as their element with the int's text.
_INTEGERS = {t: _TAG[t] for t in (PSByte, PSSByte, PSInt16, PSInt, PSInt64, PSUInt16, PSUInt, PSUInt64)}
_TEXTS = {PSGuid: _TAG[PSGuid], PSVersion: _TAG[PSVersion]}  # written as str(value)
_LIST_TYPES = PSList.PSObject.type_names
_INT32_MAX = PSInt.MaxValue


class _Unknown(Exception):
    """A value this writer does not know: psrpcore writes the message."""


def write(value: Any) -> bytes | None:
    """The CLIXML psrpcore writes for this output object (UTF-8), or None for one this does not know."""
    if type(value) is not HostObject:
        return None
    writer = _Writer()
    try:
        writer.value(value, "")
    except _Unknown:
        return None
    return "".join(writer.parts).encode()


def _string(value: str) -> str:
    """psrpcore's _serialize_string (two regular expressions) for text that needs it: control characters,
    characters outside the BMP, or an "_x" that must itself be escaped. Printable ASCII is itself."""
    if value.isascii() and value.isprintable() and "_x" not in value and "_X" not in value:
        return value
    return _serialize_string(value)


def _text(value: str) -> str:
    """Element text as ElementTree escapes it."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def _attribute(value: str) -> str:
    """An attribute's value as ElementTree escapes it (the _x escapes already took control characters)."""
    return _text(value).replace('"', "&quot;")


def _plain(value: PSObject) -> bool:
    """A psrpcore primitive with no properties of its own (one with some is written as an <Obj>)."""
    meta = value.PSObject
    return not (meta.adapted_properties or meta.extended_properties)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.next_ref = 0
        self.refs: dict[int, int] = {}  # id(object or enum member) -> its RefId (psrpcore: identity)
        self.type_refs: dict[str, int] = {}  # first type name -> its TN RefId
        self.kept: list[Any] = []  # what refs holds ids of, alive until the message is written

    def element(self, tag: str, name: str, text: str) -> None:
        self.parts.append(f"<{tag}{name}>{text}</{tag}>" if text else f"<{tag}{name} />")

    def value(self, value: Any, name: str) -> None:
        """One value; name is ' N="..."' for a property, empty for the message or a list entry."""
        kind = type(value)
        if value is None:
            self.parts.append(f"<Nil{name} />")
        elif kind is bool:
            self.element("B", name, "true" if value else "false")
        elif kind is str:
            self.element("S", name, _text(_string(value)))
        elif kind is int:
            self.element("I64" if value > _INT32_MAX else "I32", name, str(value))
        elif kind is float:
            self.element(_TAG[PSSingle], name, str(value).upper())
        elif kind in _INTEGERS and _plain(value):
            self.element(_INTEGERS[kind], name, str(int(value)))
        elif kind in _TEXTS and _plain(value):
            self.element(_TEXTS[kind], name, str(value))
        elif kind is uuid.UUID:
            self.element(_TAG[PSGuid], name, str(value))
        elif kind is datetime.datetime:
            self.element(_TAG[PSDateTime], name, _serialize_datetime(value))
        elif isinstance(value, PSEnumBase):
            self.enum(value, name)
        elif kind is list:
            self.list(value, name)
        elif kind is HostObject and not value.PSObject.adapted_properties:
            self.object(value, name)
        else:
            raise _Unknown(kind)

    def open(self, value: Any, name: str) -> bool:
        """<Obj RefId=..> for an object seen first, or <Ref> to it (False: nothing more to write)."""
        ref = self.refs.get(id(value))
        if ref is not None:
            self.parts.append(f'<Ref RefId="{ref}"{name} />')
            return False
        ref = self.next_ref
        self.next_ref += 1
        if type(value) is not list:  # psrpcore cannot refer back to a list (no weak reference)
            self.refs[id(value)] = ref
            self.kept.append(value)
        self.parts.append(f'<Obj RefId="{ref}"{name}>')
        return True

    def type_names(self, names: list[str]) -> None:
        ref = self.type_refs.get(names[0])
        if ref is not None:
            self.parts.append(f'<TNRef RefId="{ref}" />')
            return
        ref = self.type_refs[names[0]] = len(self.type_refs)
        self.parts.append(f'<TN RefId="{ref}">{"".join(f"<T>{_text(n)}</T>" for n in names)}</TN>')

    def enum(self, value: PSEnumBase, name: str) -> None:
        meta, inner = value.PSObject, value.value  # psrpcore's enums hold a PSInt
        if meta.adapted_properties or meta.extended_properties or not (type(inner) in _INTEGERS and _plain(inner)):
            raise _Unknown(type(value))
        if self.open(value, name):
            self.element(_INTEGERS[type(inner)], "", str(int(inner)))
            self.type_names(meta.type_names)
            self.to_string(_serialize_enum_to_string(value))
            self.parts.append("</Obj>")

    def list(self, value: list, name: str) -> None:
        self.open(value, name)
        self.type_names(_LIST_TYPES)
        if value:
            self.parts.append("<LST>")
            for entry in value:
                self.value(entry, "")
            self.parts.append("</LST>")
        else:
            self.parts.append("<LST />")
        self.parts.append("</Obj>")

    def object(self, value: HostObject, name: str) -> None:
        if not self.open(value, name):
            return
        meta = value.PSObject
        if meta.type_names:
            self.type_names(meta.type_names)
        if meta.extended_properties:
            self.parts.append("<MS>")
            for prop in meta.extended_properties:
                self.value(prop.get_value(value), f' N="{_attribute(_string(prop.name))}"')
            self.parts.append("</MS>")
        self.to_string(meta.to_string)
        self.parts.append("</Obj>")

    def to_string(self, text: str | None) -> None:
        if text:  # psrpcore writes no ToString for an empty one
            self.parts.append(f"<ToString>{_text(text)}</ToString>")
