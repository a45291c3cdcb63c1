"""pypsrp's CLIXML serializer with one cost taken out, for the runspace pools the driver opens.

pypsrp's Serializer.deserialize() first writes the element it is handed back out as XML text
(ElementTree.tostring), which only an object of a type it does not know keeps (as its _xml); it then
looks the tag up in a table of readers it builds anew for every element. It is called for every
property of every object a host sends, and nearly all of those are strings and numbers: reading a
host's inventory spent most of its CPU there (bench/sync.py --profile: tostring alone was 1.1 s of
the 1.8 s deserializing 20 hosts). Primitive elements are read here straight away, exactly as
pypsrp reads them; objects, references and secure strings go to pypsrp unchanged.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

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


class QuickSerializer(Serializer):
    def deserialize(self, element, metadata=None, clear=True):
        read = None if isinstance(element, str) else _PRIMITIVES.get(element.tag)
        if read is None:
            return super().deserialize(element, metadata, clear)
        if clear:
            self._clear()
        return read(self, element)


def install(pool) -> None:
    """Give a pypsrp RunspacePool (not yet opened) the quicker serializer: the pool's fragmenter packs
    and unpacks every message with it."""
    serializer = QuickSerializer()
    pool._serializer = serializer
    pool._fragmenter.serializer = serializer
