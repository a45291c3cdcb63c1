"""pypsrp's CLIXML serializer with its costs taken out, for the runspace pools the driver opens.

pypsrp's Serializer.deserialize() first writes the element it is handed back out as XML text
(ElementTree.tostring), which only an object of a type it does not know keeps (as its _xml); it then
looks the tag up in a table of readers it builds anew for every element. It is called for every
property of every object a host sends, and nearly all of those are strings and numbers: reading a
host's inventory spent most of its CPU there (bench/sync.py --profile: tostring alone was 1.1 s of
the 1.8 s deserializing 20 hosts). Primitive elements are read here straight away, exactly as
pypsrp reads them. So is an object pypsrp would read as a GenericComplexObject (every object a
cmdlet returns: its type names name no class pypsrp knows before System.Object): the same object,
its _xml written only when asked for. References, secure strings and the objects pypsrp has classes
for (error records, progress, PSRP's own messages) go to pypsrp unchanged.

Sending costs too: pypsrp deep-copies every command of a pipeline (Pipeline._get_statements) and
writes it twice (Cmds, then every statement again in ExtraCmds) for each CreatePipeline message. The
inventory sends the same statements to every host, so a CreatePipeline message whose every value is
a plain one (text, number, truth value, GUID, pypsrp's enums) is written once and its bytes reused:
the same bytes pypsrp would write, since each message is serialized afresh (RefIds from 0).
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from pypsrp._utils import to_string
from pypsrp.complex_objects import Enum, GenericComplexObject, ListMeta
from pypsrp.messages import CreatePipeline
from pypsrp.serializer import Serializer

# pypsrp 0.9's readers of the primitive types (serializer.py, Serializer.deserialize), tag -> reader.
_PRIMITIVES: dict[str, Callable[[Serializer, ElementTree.Element], Any]] = {
    "S": lambda s, e: s._deserialize_string(e.text),
    "ToString": lambda s, e: s._deserialize_string(e.text),
    "URI": lambda s, e: s._deserialize_string(e.text),
    "XD": lambda s, e: s._deserialize_string(e.text),
    "SBK": lambda s, e: s._deserialize_string(e.text),
    "C": lambda s, e: chr(int(e.text)),
    "B": lambda s, e: e.text.lower() == "true",
    "DT": lambda s, e: e.text,
    "TS": lambda s, e: e.text,
    "D": lambda s, e: e.text,
    "Version": lambda s, e: e.text,
    **dict.fromkeys(("By", "SB", "U16", "I16", "U32", "I32", "U64", "I64"), lambda s, e: int(e.text)),
    "Sg": lambda s, e: float(e.text),
    "Db": lambda s, e: float(e.text),
    "BA": lambda s, e: base64.b64decode(e.text),
    "G": lambda s, e: uuid.UUID(e.text),
    "Nil": lambda s, e: None,
}


# Written CreatePipeline messages by what they hold (pipeline_key); shared by every pool.
_WRITTEN: dict[tuple, bytes] = {}
_WRITTEN_MAX = 256
_WRITTEN_LOCK = threading.Lock()
_PLAIN = (str, int, float, bool, uuid.UUID, type(None))


class _NotPlain(Exception):
    pass


def _value_key(value: Any) -> tuple:
    if isinstance(value, _PLAIN):
        return (type(value).__name__, value)  # the type too: True == 1 but is written as <B>
    if isinstance(value, Enum) and isinstance(value.value, int):
        return (type(value).__name__, tuple(value._types), value.value)
    raise _NotPlain


def pipeline_key(message: CreatePipeline) -> tuple | None:
    """Everything pypsrp writes for this CreatePipeline, as a hashable key; None when a value is not
    a plain one (a hashtable, a list, a host object ...), which is then written as usual."""
    pipeline, host = message.pipeline, message.host_info
    if pipeline is None or not pipeline.commands or host is None or host.host is not None:
        return None
    pipeline.commands[-1].end_of_statement = True  # as pypsrp's Pipeline._get_statements sets it
    try:
        commands = tuple(
            (
                tuple(
                    (attr, _value_key(getattr(command, attr)))
                    for attr, _ in command._extended_properties
                    if attr != "args"
                ),
                tuple((arg.name, _value_key(arg.value)) for arg in command.args),
                command.end_of_statement,
            )
            for command in pipeline.commands
        )
        return (
            commands,
            _value_key(pipeline.is_nested),
            _value_key(pipeline.history),
            _value_key(pipeline.redirect_err_to_out),
            _value_key(message.no_input),
            _value_key(message.apartment_state),
            _value_key(message.remote_stream_options),
            _value_key(message.add_to_history),
            _value_key(message.is_nested),
        )
    except (_NotPlain, AttributeError):
        return None


# Type names that pypsrp 0.9 maps to none of its classes (Serializer.deserialize's table of structures:
# every name there begins with System. or is Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo).
_PASSED_OVER = frozenset({"System.Enum", "System.ValueType"})


# The list types pypsrp 0.9 reads as ListMeta() (its table of structures), when the first type named.
_LISTS = frozenset({"System.Array", "System.Collections.ArrayList", "System.Collections.Generic.List"})


def _generic(types: list[str]) -> bool:
    """Whether pypsrp reads an <Obj> of these type names as a GenericComplexObject: when System.Object is
    the first of them it knows (or none is given); any other System type goes to pypsrp itself."""
    for name in types:
        if name.startswith("Deserialized.System."):
            name = name[13:]
        if name == "System.Object":
            return True
        if name in _PASSED_OVER:
            continue
        if name.startswith("System.") or name.endswith("[]") or name.startswith("Selected.Microsoft.PowerShell."):
            return False
    return not types


class _Generic(GenericComplexObject):
    """A GenericComplexObject whose _xml (the element as text, which pypsrp writes out for every object
    it reads) is written only if something asks for it."""

    def __init__(self, element: ElementTree.Element, text: str | None) -> None:
        super().__init__()
        self._element, self._text = element, text

    @property
    def _xml(self) -> str:
        if self._text is None:
            self._text = to_string(ElementTree.tostring(self._element, encoding="utf-8", method="xml"))
        return self._text

    @_xml.setter
    def _xml(self, value: str | None) -> None:
        self._text = value


class QuickSerializer(Serializer):
    def serialize(self, value, metadata=None, parent=None, clear=True):
        if not (isinstance(value, CreatePipeline) and metadata is None and parent is None and clear):
            return super().serialize(value, metadata, parent, clear)
        key = pipeline_key(value)
        written = None if key is None else _WRITTEN.get(key)
        if written is None:
            written = ElementTree.tostring(super().serialize(value), encoding="utf-8", method="xml")
            if key is not None:
                with _WRITTEN_LOCK:
                    if len(_WRITTEN) >= _WRITTEN_MAX:
                        _WRITTEN.clear()
                    _WRITTEN[key] = written
        return written  # pypsrp's Message.pack sends bytes as they are

    def deserialize(self, element, metadata=None, clear=True):
        text = None
        if isinstance(element, str):
            if metadata is not None or not element.startswith("<Obj"):
                return super().deserialize(element, metadata, clear)
            text = element
            try:
                # As pypsrp parses the same text (Serializer.deserialize); the host is authenticated.
                element = ElementTree.fromstring(element)  # noqa: S314
            except ElementTree.ParseError:
                return super().deserialize(text, metadata, clear)
        if element.tag == "Obj" and metadata is None:
            if clear:
                self._clear()
            types = self._get_types_from_obj(element)
            if _generic(types):
                return self._generic_obj(element, text)
            if types and types[0].removeprefix("Deserialized.") in _LISTS:
                return self._list(element)
            return super().deserialize(element if text is None else text, metadata, clear=False)
        read = _PRIMITIVES.get(element.tag)
        if read is None:
            return super().deserialize(element if text is None else text, metadata, clear)
        if clear:
            self._clear()
        return read(self, element)

    def _deserialize_string(self, value):
        """pypsrp's: _xHHHH_ escapes decoded (through UTF-16); text without "_x" is itself, as there."""
        if value is not None and "_x" not in value:
            return value
        return super()._deserialize_string(value)

    def _list(self, element: ElementTree.Element) -> list:
        """pypsrp's reading of a list type it maps to ListMeta() (Serializer._deserialize_lst), without
        writing the element back out as text first: its entries, each read with the one ObjectMeta
        pypsrp's ListMeta() gives them all."""
        entries = element.find("LST")
        meta = ListMeta().list_value_meta
        value = [] if entries is None else [self.deserialize(entry, meta, clear=False) for entry in entries]
        self.obj[element.attrib["RefId"]] = value
        return value

    def _generic_obj(self, element: ElementTree.Element, text: str | None) -> _Generic:
        """pypsrp's Serializer._deserialize_dynamic_obj, without writing the element back out as text."""
        obj = _Generic(element, text)
        self.obj[element.attrib["RefId"]] = obj
        for child in element:
            tag = child.tag
            if tag == "TN":
                obj.types.extend(t.text for t in child)
                self.tn[child.attrib["RefId"]] = obj.types
            elif tag == "TNRef":
                obj.types = self.tn[child.attrib["RefId"]]
            elif tag == "Props":
                for prop in child:
                    obj.adapted_properties[prop.attrib["N"]] = self.deserialize(prop, clear=False)
            elif tag == "MS":
                for prop in child:
                    obj.extended_properties[prop.attrib["N"]] = self.deserialize(prop, clear=False)
            elif tag == "ToString":
                obj.to_string = self.deserialize(child, clear=False)
            else:
                obj.property_sets.append(self.deserialize(child, clear=False))
        return obj


def install(pool) -> None:
    """Give a pypsrp RunspacePool (not yet opened) the quicker serializer: the pool's fragmenter packs
    and unpacks every message with it."""
    serializer = QuickSerializer()
    pool._serializer = serializer
    pool._fragmenter.serializer = serializer
