"""Whether an argument converts to a parameter's type, as PowerShell's parameter binder decides it.

Types are the help's names (String, UInt32, Guid[], VirtualMachine, Hashtable[] ...). A failure is
(error id, message) with the ids PowerShell's binder uses (ParameterBinderStrings):
CannotConvertArgument when a collection is given to a scalar parameter, CannotConvertArgumentNoMessage
("Cannot bind parameter 'X'. ...") when a value does not convert, e.g. a string where an object such as
a VirtualMachine, a CimSession or a Hashtable is required.
"""

from __future__ import annotations

import uuid
from typing import Any

from psrpcore.types import PSEnumBase, PSObject

INTEGERS = {"Int32": (-(2**31), 2**31 - 1), "Int64": (-(2**63), 2**63 - 1), "UInt16": (0, 2**16 - 1)}
INTEGERS |= {"UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1)}
SYSTEM = {name: f"System.{name}" for name in ("String", "Boolean", "Guid", *INTEGERS)}
SYSTEM |= {"Hashtable": "System.Collections.Hashtable"}
SYSTEM |= {name: f"System.Management.Automation.{name}" for name in ("SwitchParameter", "PSObject")}
COLLECTIONS = {"StringCollection": "String"}  # .NET collections the help names without []

Failure = tuple[str, str]


def element_type(type_name: str) -> tuple[str, bool]:
    """(element type, takes a collection) of a help type name."""
    if type_name.endswith("[]"):
        return type_name[:-2], True
    if type_name in COLLECTIONS:
        return COLLECTIONS[type_name], True
    return type_name, False


def value_type(value: Any) -> str:
    """The .NET type name PowerShell would show for a received value."""
    if isinstance(value, bool):
        return "System.Boolean"
    if isinstance(value, str):
        return "System.String"
    if isinstance(value, int):
        return "System.Int32"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, (list, tuple)):
        return "System.Object[]"
    if isinstance(value, PSObject) and value.PSObject.type_names:
        return str(value.PSObject.type_names[0])
    return "System.Object"


def is_instance(value: Any, type_name: str) -> bool:
    """An object of that .NET type (by its type names, e.g. Microsoft.HyperV.PowerShell.VirtualMachine)."""
    names = value.PSObject.type_names if isinstance(value, PSObject) else []
    return any(str(n) == type_name or str(n).endswith("." + type_name) for n in names)


def matches_exactly(value: Any, type_name: str) -> bool:
    """Binds without coercion (PowerShell's first pipeline binding passes): the value already has the type."""
    element, many = element_type(type_name)
    values = list(value) if many and isinstance(value, (list, tuple)) else [value]
    return all(_exact(v, element) for v in values)


def _exact(value: Any, element: str) -> bool:
    if element in ("PSObject", "Object"):
        return True
    if element in INTEGERS:
        return isinstance(value, int) and not isinstance(value, bool)
    python = {"String": str, "Guid": uuid.UUID, "Boolean": bool, "SwitchParameter": bool, "Hashtable": dict}
    if element in python:
        return isinstance(value, python[element])
    return is_instance(value, element)


def convert(name: str, value: Any, type_name: str, accepted: list[str] | None = None) -> Failure | None:
    """None if the value binds to parameter `name` of this type, else (error id, message)."""
    element, many = element_type(type_name)
    if isinstance(value, (list, tuple)) and not many:
        if element in ("PSObject", "Object"):
            return None
        return (
            "CannotConvertArgument",
            f"Cannot convert '{value_type(value)}' to the type '{SYSTEM.get(element, element)}' required by "
            f"parameter '{name}'. Specified method is not supported.",
        )
    for item in value if isinstance(value, (list, tuple)) else [value]:
        problem = _scalar(item, element, accepted)
        if problem:
            return "CannotConvertArgumentNoMessage", f"Cannot bind parameter '{name}'. {problem}"
    return None


def _scalar(value: Any, element: str, accepted: list[str] | None) -> str | None:
    """None if one value converts to the element type, else why not (PowerShell's wording)."""
    target = SYSTEM.get(element, element)
    if element in ("String", "PSObject", "Object", "TimeSpan"):
        return None
    if element == "SwitchParameter" or element == "Boolean":
        if value is None or isinstance(value, (bool, int)):
            return None
        return (
            f'Cannot convert value "{value_type(value)}" to type "{target}". Boolean parameters accept only '
            "Boolean values and numbers, such as $True, $False, 1 or 0."
        )
    if element in INTEGERS:
        low, high = INTEGERS[element]
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except (TypeError, ValueError):
            number = None
        if number is not None and low <= number <= high:
            return None
        return f'Cannot convert value "{value}" to type "{target}". Error: "Input string was not in a correct format."'
    if element == "Guid":
        try:
            uuid.UUID(str(value))
            return None
        except ValueError:
            return (
                f'Cannot convert value "{value}" to type "System.Guid". Error: "Guid should contain 32 digits '
                'with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)."'
            )
    if element == "Hashtable":
        return None if isinstance(value, dict) else _cannot(value, target)
    if accepted:  # an enum: its name (any case) or its number
        name = value.name if isinstance(value, PSEnumBase) else value
        if isinstance(name, int) and not isinstance(name, bool):
            return None
        if str(name).lower() in (a.lower() for a in accepted):
            return None
        return (
            f'Cannot convert value "{name}" to type "{element}". Error: "Unable to match the identifier name '
            f"{name} to a valid enumerator name. Specify one of the following enumerator names and try again: "
            f'{", ".join(accepted)}"'
        )
    return None if is_instance(value, element) else _cannot(value, target)


def _cannot(value: Any, target: str) -> str:
    return f'Cannot convert the "{value}" value of type "{value_type(value)}" to type "{target}".'
