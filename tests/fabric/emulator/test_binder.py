"""The emulator's binder binds as PowerShell does, by the facts of Microsoft's help (cmdlet_facts.json).

Error ids are PowerShell's own (ParameterBinderStrings.resx, CmdletParameterBinderController.cs).
"""

import json
import uuid
from pathlib import Path

import pytest
from psrpcore.types import PSString

from fabric.emulator.binder import Terminating, bind, cmdlet_facts
from fabric.emulator.cmdlets import CMDLETS
from fabric.emulator.records import hyperv_object
from fabric.hyperv import reference_facts
from tests.fabric.conftest import open_pool

REPO = Path(__file__).resolve().parents[3]
# CI keeps the reference beside the clone (../shared); a worktree sits one level deeper.
DOCS = "shared/reference/powershell-docs"
REFERENCE = next((p / DOCS for p in REPO.parents[:2] if (p / DOCS).is_dir()), REPO.parent / DOCS)
VM = hyperv_object("VirtualMachine", Name="web01", Id=uuid.uuid4(), VMName="web01")
DISKS = [{"SourceFilePath": "C:\\VMs\\a.vhdx", "DestinationFilePath": "D:\\VMs\\a.vhdx"}]


def call(cmdlet, *args, inputs=None):
    """bind() for named (name, value) pairs and bare positional values; a value None is a switch."""
    params = [a if isinstance(a, tuple) else (None, a) for a in args]
    return bind(CMDLETS[cmdlet.lower()], params, inputs)


def refused(cmdlet, *args, inputs=None) -> tuple[str, str]:
    with pytest.raises(Terminating) as info:
        call(cmdlet, *args, inputs=inputs)
    record = info.value.record
    return str(record.FullyQualifiedErrorId).split(",")[0], str(record.Exception.Message)


def test_the_committed_facts_are_what_the_reference_says():
    if not REFERENCE.is_dir():
        pytest.skip(f"the reference is not at {REFERENCE}")
    committed = reference_facts.FACTS_FILE.read_text(encoding="utf-8")

    assert reference_facts.render(reference_facts.build(REFERENCE)) == committed
    facts = json.loads(committed)["cmdlets"]
    assert len(facts) == len(list(REFERENCE.glob("*/*.md")))
    name = facts["Move-VMStorage"]["parameters"]["Name"]
    assert name["aliases"] == ["VMName"] and name["sets"]["NameSingleDestination"] == {"mandatory": True, "position": 0}


def test_move_vmstorage_takes_the_vm_by_name_or_its_alias_vmname():
    by_name = call("Move-VMStorage", ("Name", "web01"), ("DestinationStoragePath", "D:\\VMs"))
    by_alias = call("Move-VMStorage", ("-vmname", "web01"), ("DestinationStoragePath", "D:\\VMs"))

    assert by_name.params == by_alias.params == {"Name": "web01", "DestinationStoragePath": "D:\\VMs"}
    assert by_alias.parameter_set == "NameSingleDestination"
    assert by_alias.received == {"vmname": "web01", "DestinationStoragePath": "D:\\VMs"}  # kept as sent


def test_names_bind_by_unambiguous_prefix_and_positions_by_the_help():
    bound = call("Move-VM", "web01", ("DestinationH", "hv2"), ("pass", None))

    assert bound.params == {"Name": "web01", "DestinationHost": "hv2", "Passthru": True}
    assert refused("Move-VM", ("Destination", "hv2"))[0] == "AmbiguousParameter"
    assert refused("Get-VM", "a", "b")[0] == "PositionalParameterNotFound"


def test_an_unknown_parameter_or_one_given_twice_fails():
    assert refused("Get-VM", ("Nmae", "dc01")) == (
        "NamedParameterNotFound",
        "A parameter cannot be found that matches parameter name 'Nmae'.",
    )
    assert refused("Get-VM", ("WhatIf", None))[0] == "NamedParameterNotFound"  # Get-VM has no -WhatIf
    assert refused("Get-VM", ("Name", "a"), ("name", "b"))[0] == "ParameterAlreadyBound"
    assert refused("Get-VM", ("Name", None))[0] == "MissingArgument"


def test_common_parameters_bind_by_name_and_alias():
    bound = call("Get-VM", ("ErrorAction", "Stop"), ("wa", "SilentlyContinue"), ("Verbose", None))

    assert bound.params == {"ErrorAction": "Stop", "WarningAction": "SilentlyContinue", "Verbose": True}
    assert refused("Get-VM", ("ErrorAction", "Sometimes"))[0] == "CannotConvertArgumentNoMessage"
    assert call("Move-VM", "web01", "hv2", ("WhatIf", None)).params["WhatIf"] is True


def test_a_call_that_fits_no_parameter_set_fails():
    # IncludeStorage/DestinationStoragePath and VirtualMachinePath/Vhds are different sets (hyperv.md 9).
    assert refused("Move-VM", "web01", "hv2", ("IncludeStorage", None), ("Vhds", DISKS)) == (
        "AmbiguousParameterSet",
        "Parameter set cannot be resolved using the specified named parameters.",
    )
    assert refused("Move-VMStorage", ("Name", "web01"), ("VM", VM), ("DestinationStoragePath", "D:\\"))[0] == (
        "AmbiguousParameterSet"
    )
    per_disk = call("Move-VM", "web01", "hv2", ("VirtualMachinePath", "D:\\VMs"), ("Vhds", DISKS))
    assert per_disk.parameter_set == "NameMultipleDestinations"
    assert call("Move-VM", "web01", "hv2").parameter_set == "NameSingleDestination"  # the default among two


def test_missing_mandatory_parameters_are_reported_not_prompted_for():
    assert refused("Move-VM", ("Name", "web01")) == (
        "MissingMandatoryParameter",
        "Cannot process command because of one or more missing mandatory parameters: DestinationHost.",
    )
    assert refused("Get-VMHardDiskDrive")[0] == "MissingMandatoryParameter"  # the default set needs -VMName


def test_a_string_where_an_object_is_required_fails_to_convert():
    vm_error = refused("Move-VM", ("VM", "web01"), ("DestinationHost", "hv2"))
    assert vm_error == (
        "CannotConvertArgumentNoMessage",
        'Cannot bind parameter \'VM\'. Cannot convert the "web01" value of type "System.String" to type '
        '"VirtualMachine".',
    )
    assert refused("Move-VMStorage", ("Name", "web01"), ("Vhds", "C:\\a.vhdx"))[0] == "CannotConvertArgumentNoMessage"
    assert refused("Get-VMHost", ("CimSession", "hv1"))[0] == "CannotConvertArgumentNoMessage"
    assert refused("Move-VM", ("Name", ["a", "b"]), ("DestinationHost", "hv2"))[0] == "CannotConvertArgument"


def test_numbers_booleans_guids_and_enums_convert_as_powershell_converts_them():
    assert call("Set-VMHost", ("MaximumVirtualMachineMigrations", "5"), ("UseAnyNetworkForMigration", False))
    assert call("Set-VMHost", ("VirtualMachineMigrationPerformanceOption", "smb")).params
    assert call("Get-VM", ("Id", str(uuid.uuid4()))).parameter_set == "Id"
    for args in (
        [("MaximumVirtualMachineMigrations", "many")],
        [("MaximumStorageMigrations", -1)],  # UInt32
        [("UseAnyNetworkForMigration", "yes")],  # Boolean parameters take booleans and numbers only
        [("VirtualMachineMigrationPerformanceOption", "Fast")],
    ):
        assert refused("Set-VMHost", *args)[0] == "CannotConvertArgumentNoMessage"
    assert refused("Get-VM", ("Id", "not-a-guid"))[0] == "CannotConvertArgumentNoMessage"


def test_pipeline_objects_bind_by_value_and_choose_the_set():
    storage = call("Move-VMStorage", ("DestinationStoragePath", "D:\\VMs"), inputs=[VM])
    disks = call("Get-VMHardDiskDrive", inputs=[VM])

    assert (storage.parameter_set, storage.params["VM"]) == ("VMSingleDestination", VM)
    assert disks.parameter_set == "VMObject"
    # A VM piped into Move-VM with only -DestinationHost fits VMSingleDestination and VMMultipleDestinations
    # alike, and neither is the default: PowerShell cannot resolve it; a bound switch (even $false) can.
    assert refused("Move-VM", ("DestinationHost", "hv2"), inputs=[VM])[0] == "AmbiguousParameterSet"
    live = call("Move-VM", ("DestinationHost", "hv2"), ("IncludeStorage", False), inputs=[VM])
    assert live.parameter_set == "VMSingleDestination" and live.params["IncludeStorage"] is False


def test_an_object_no_parameter_takes_is_refused_and_no_input_runs_nothing():
    bound = call("Enable-VMMigration", inputs=[VM])
    nothing = call("Get-VMHardDiskDrive", inputs=[])

    assert bound.inputs == [] and bound.refused == [VM]
    assert nothing.inputs == []
    assert call("Get-VHD", inputs=[PSString("C:\\VMs\\a.vhdx")]).params["Path"] == "C:\\VMs\\a.vhdx"


def test_registrations_name_only_parameters_the_help_has():
    # Cmdlets of the reference bind by the facts; parameter lists a registration still gives must not
    # promise what a real host refuses.
    for cmdlet in CMDLETS.values():
        spec = cmdlet_facts(cmdlet.name)
        if spec is None:
            continue
        known = {n.lower() for n in spec["parameters"]}
        known |= {a.lower() for p in spec["parameters"].values() for a in p["aliases"]}
        listed = {n.lower() for n in (*cmdlet.params, *cmdlet.switches, *cmdlet.positional)}
        assert listed <= known, (cmdlet.name, listed - known)


def test_over_the_wire_binding_failures_end_the_pipeline_with_powershells_error_id(emulator, emu_store):
    from pypsrp.powershell import PowerShell

    with emu_store.session() as fabric:
        vm = next(v for v in fabric.vms.values() if v.host == "hv-s1.contoso.test" and not v.is_clustered)
    with open_pool(emulator, "hv-s1.contoso.test") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Move-VM").add_parameter("Name", vm.name).add_parameter("DestinationHost", "hv-s2")
        ps.add_parameter("IncludeStorage").add_parameter("Vhds", [{"SourceFilePath": "a", "DestinationFilePath": "b"}])
        ps.invoke()

    assert ps.had_errors
    assert ps.streams.error[-1].fq_error == "AmbiguousParameterSet,Microsoft.HyperV.PowerShell.Commands.MoveVM"
    emulator.flush_log()
    [logged] = [c for c in emu_store.commands() if c["cmdlet"] == "Move-VM"]
    assert logged["result"] == "refused: parameter binding"
    with emu_store.session() as fabric:
        assert not fabric.migrations  # nothing started
