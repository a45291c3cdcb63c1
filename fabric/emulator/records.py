"""PowerShell values as Hyper-V writes them: typed objects, enums, error records, plain forms for the record.

Objects carry the .NET type names Hyper-V's cmdlets use, so a client (and the pypsrp driver) tells
them apart by type as it would on a real host. Enums are serialized with their .NET type and their
ToString (Running, Compression, Kerberos ...), exactly how Hyper-V spells them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorDetails,
    ErrorRecord,
    NETException,
    PSEnumBase,
    PSGuid,
    PSInt64,
    PSNoteProperty,
    PSObject,
    PSType,
    PSUInt,
    PSUInt16,
    PSUInt64,
)

HYPERV = "Microsoft.HyperV.PowerShell"
CLUSTER = "Microsoft.FailoverClusters.PowerShell"
CIM = "Microsoft.Management.Infrastructure.CimInstance"


@PSType([f"{HYPERV}.VMState"])
class VMState(PSEnumBase):
    Other = 1
    Running = 2
    Off = 3
    Stopping = 4
    Saved = 6
    Paused = 9
    Starting = 10
    Reset = 11
    Saving = 32773
    Pausing = 32776
    Resuming = 32777


@PSType([f"{HYPERV}.VMMigrationPerformance"])
class VMMigrationPerformance(PSEnumBase):
    TCPIP = 0
    Compression = 1
    SMB = 2


@PSType([f"{HYPERV}.MigrationAuthenticationType"])
class MigrationAuthenticationType(PSEnumBase):
    CredSSP = 0
    Kerberos = 1


@PSType([f"{HYPERV}.VMOperationalStatus"])
class VMOperationalStatus(PSEnumBase):
    Ok = 2
    InService = 11
    MigratingVirtualMachine = 32774  # UNCONFIRMED value; clients read the name


@PSType([f"{CLUSTER}.ClusterNodeState"])
class ClusterNodeState(PSEnumBase):
    Up = 0
    Down = 1
    Paused = 2


# Get-ClusterNode's DrainStatus after Suspend-ClusterNode -Drain: the names a real node reports
# (NotInitiated, InProgress, Completed, Failed); the type name and numeric values are UNCONFIRMED
# (clients read the name).
@PSType([f"{CLUSTER}.ClusterNodeDrainStatus"])
class ClusterNodeDrainStatus(PSEnumBase):
    NotInitiated = 0
    InProgress = 1
    Completed = 2
    Failed = 3


@PSType([f"{CLUSTER}.ClusterGroupState"])
class ClusterGroupState(PSEnumBase):
    Online = 0
    Offline = 1


@PSType([f"{HYPERV}.DvdMediaType"])
class DvdMediaType(PSEnumBase):
    # Names per Get-VMDvdDrive's output; numeric values UNCONFIRMED (clients read the name).
    none = 0  # serialized as "None"
    ISO = 1
    PassThrough = 2


@PSType([f"{HYPERV}.VMReplicationMode"])
class VMReplicationMode(PSEnumBase):
    # Names per Get-VMReplication's -ReplicationMode accepted values; numeric values UNCONFIRMED.
    none = 0  # serialized as "None"
    Primary = 1
    Replica = 2
    TestReplica = 3
    ExtendedReplica = 4


REPLICATION_MODES = {
    "primary": VMReplicationMode.Primary,
    "replica": VMReplicationMode.Replica,
    "extended_replica": VMReplicationMode.ExtendedReplica,
}

STATES = {
    "running": VMState.Running,
    "off": VMState.Off,
    "saved": VMState.Saved,
    "paused": VMState.Paused,
    "starting": VMState.Starting,
    "stopping": VMState.Stopping,
}
PERFORMANCE = {
    "tcpip": VMMigrationPerformance.TCPIP,
    "compression": VMMigrationPerformance.Compression,
    "smb": VMMigrationPerformance.SMB,
}
AUTH = {"credssp": MigrationAuthenticationType.CredSSP, "kerberos": MigrationAuthenticationType.Kerberos}


class HostObject(PSObject):
    """A PSObject whose Python attributes (__class__, PSObject) are looked up directly.

    psrpcore's PSObject.__getattribute__ first builds a dict of all the object's properties, on every
    attribute read; its serializer reads __class__ (each isinstance of a value that is not of that type)
    and PSObject many times per object, which cost the emulator a sixth of its CPU in an inventory sync.
    Names that are neither dunders nor PSObject go the PSObject way; the CLIXML written is the same
    (tests/fabric/emulator/test_records.py).
    """

    def __getattribute__(self, item: str) -> Any:
        if item == "PSObject" or item.startswith("__"):
            return object.__getattribute__(self, item)
        return super().__getattribute__(item)


def ps_object(type_names: Iterable[str], **props: Any) -> PSObject:
    """An object of the given .NET type names (most derived first) with these properties in order.

    The same object add_note_property(obj, name, value) for each property builds, at less than half its
    CPU (bench/RESULTS.md, issue 19): it made a scratch PSObject per property (PSPropertyInfo.__init__
    sets the value through set_value, which wants one) and looked through the properties already added
    for a duplicate (the names here are unique: keywords).
    """
    obj = HostObject()
    meta = obj.PSObject
    meta.type_names = [*type_names, "System.Object"]
    meta.extended_properties.extend(_note_property(name, value) for name, value in props.items())
    return obj


def _note_property(name: str, value: Any) -> PSNoteProperty:
    """PSNoteProperty(name, value) as psrpcore 0.3.1's __init__ leaves it (no type to cast to, no getter
    or setter); tests/fabric/emulator/test_records.py holds the two equal."""
    note = PSNoteProperty.__new__(PSNoteProperty)
    note.name, note.ps_type, note.mandatory = name, None, False
    note._value, note._getter, note._setter = value, None, None
    return note


def hyperv_object(kind: str, **props: Any) -> PSObject:
    return ps_object([f"{HYPERV}.{kind}"], **props)


def cim_object(class_name: str, namespace: str, parents: Iterable[str] = (), **props: Any) -> PSObject:
    """A CimInstance as Get-CimInstance returns it (its class, then its parents, then CimInstance)."""
    path = namespace.replace("\\", "/")
    names = [f"{CIM}#{path}/{c}" for c in (class_name, *parents)]
    names += [f"{CIM}#{c}" for c in (class_name, *parents)]
    return ps_object([*names, CIM], CimClass=f"{path}:{class_name}", **props)


def guid(value: str) -> PSGuid:
    return PSGuid(str(value))


def int64(value: float) -> PSInt64:
    return PSInt64(int(value))


def uint16(value: int) -> PSUInt16:
    return PSUInt16(int(value))


def uint32(value: int) -> PSUInt:
    return PSUInt(int(value))


def uint64(value: float) -> PSUInt64:
    return PSUInt64(int(value))


# --- errors ------------------------------------------------------------------------------------

EXCEPTION_TYPES = {
    "hyperv": [f"{HYPERV}.VirtualizationException", "System.Exception"],
    "cluster": [f"{CLUSTER}.ClusterCmdletException", "System.Exception"],
    "binding": [
        "System.Management.Automation.ParameterBindingException",
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
        "System.Exception",
    ],
    "notfound": [
        "System.Management.Automation.CommandNotFoundException",
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
        "System.Exception",
    ],
}


def error_record(
    error_id: str,
    message: str,
    *,
    command_class: str = "",
    category: ErrorCategory | int = ErrorCategory.InvalidOperation,
    target: Any = None,
    recommended_action: str = "",
    exception: str = "hyperv",
    activity: str = "",
) -> ErrorRecord:
    """An ErrorRecord as a Hyper-V cmdlet writes it: FullyQualifiedErrorId "<id>,<cmdlet class>"."""
    exc = NETException(Message=message, HResult=-2146233088)
    exc.PSObject.type_names = [*EXCEPTION_TYPES[exception], "System.Object"]
    category = ErrorCategory(category)
    return ErrorRecord(
        Exception=exc,
        CategoryInfo=ErrorCategoryInfo(
            Category=category,
            Activity=activity,
            Reason=EXCEPTION_TYPES[exception][0].rsplit(".", 1)[-1],
            TargetName="" if target is None else str(target),
            TargetType="String" if isinstance(target, str) else "",
        ),
        TargetObject=target,
        FullyQualifiedErrorId=f"{error_id},{command_class}" if command_class else error_id,
        ErrorDetails=ErrorDetails(Message=message, RecommendedAction=recommended_action)
        if recommended_action
        else None,
    )


def code_message(code: str, message: str) -> tuple[str, str]:
    """(error id, message) for a Hyper-V failure: numbered codes travel at the end of the message, as
    Hyper-V prints them ("... (0x800705AA)"); symbolic ones (InvalidState ...) are the error id."""
    if code.isdigit() or code.lower().startswith("0x"):
        return "OperationFailed", f"{message} ({code})"
    return code, message


# --- plain values for the record -----------------------------------------------------------------


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of a parameter value as received (strings stay exactly as they came)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, PSEnumBase):
        return value.name
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value]
    if isinstance(value, PSObject) and depth < 2:
        props = {p.name: plain(p.get_value(value), depth + 1) for p in value.PSObject.extended_properties}
        props |= {p.name: plain(p.get_value(value), depth + 1) for p in value.PSObject.adapted_properties}
        keep = {k: props[k] for k in ("Name", "Id", "VMId", "InstanceID", "VirtualSystemName") if k in props}
        return {"type": value.PSObject.type_names[0] if value.PSObject.type_names else "", **(keep or props)}
    return str(value)


def prop(obj: Any, name: str, default: Any = None) -> Any:
    """A property of an object received from the pipeline (case-insensitive, like PowerShell)."""
    if isinstance(obj, dict):  # a Hashtable (PSDict is a dict and a PSObject: its keys are what counts)
        for key, value in obj.items():
            if str(key).lower() == name.lower():
                return value
        return default
    if isinstance(obj, PSObject):
        for p in (*obj.PSObject.extended_properties, *obj.PSObject.adapted_properties):
            if p.name.lower() == name.lower():
                return p.get_value(obj)
    return default
