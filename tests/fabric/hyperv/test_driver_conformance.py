"""Every command the pypsrp driver sends binds to a parameter set of Microsoft's help.

The driver runs every kind of work against the host emulator (inventory, each transfer type, storage
moves whole and per disk, a VM piped from Get-VM, cancels, cluster leave and join, host settings and
the cluster parameter); then each command the emulator received is read back from its wire log (the
command_log table of the fabric file) and checked against cmdlet_facts.json by the small checker
below, written apart from the emulator's binder: every name is a parameter or an alias of the cmdlet,
and the parameters (with what the pipeline brings) fit a parameter set with all its mandatory
parameters, without leaving PowerShell a choice it cannot make.
"""

import json
import sqlite3
import time

from fabric.hyperv.api import HostSettings, MoveRequest
from fabric.hyperv.reference_facts import FACTS_FILE
from tests.fabric.conftest import PASSWORD, USER

D = ".contoso.test"
NO_MODULE = "hv-s4" + D  # the demo host without the FailoverClusters module
# Commands outside the reference folder (not Hyper-V, FailoverClusters or SmbShare cmdlets): CIM access
# to Msvm_MigrationJob, the Where-Object filter on it, DNS, and the constant script for a cluster
# property no cmdlet sets. They are listed here so that any other command must be in the facts.
OUTSIDE_REFERENCE = {
    "Get-CimInstance",
    "Where-Object",
    "Invoke-CimMethod",
    "Resolve-DnsName",
    # Possible owners of a resource: learn.microsoft.com/powershell/module/failoverclusters/get-clusterownernode
    "Get-ClusterOwnerNode",
    "Set-ClusterMaximumParallelMigrations (script)",
}


# --- the checker: reads the facts file on its own ----------------------------------------------------


def load_facts() -> dict:
    return json.loads(FACTS_FILE.read_text(encoding="utf-8"))


def check(entry: dict, facts: dict) -> list[str]:
    """What is wrong with one logged command (empty when it binds to a real parameter set)."""
    spec = facts["cmdlets"].get(entry["cmdlet"])
    if spec is None:
        return [] if entry["cmdlet"] in OUTSIDE_REFERENCE else [f"{entry['cmdlet']} is not in the reference"]
    given, wrong = parameters(entry, spec, facts)
    if wrong:
        return wrong
    fitting = fitting_sets(entry, spec, given)
    if not fitting:
        return [f"{entry['cmdlet']} {sorted(entry['params'])} fits none of its parameter sets"]
    if len(fitting) > 1 and spec["default_set"] not in fitting:
        return [f"{entry['cmdlet']} {sorted(entry['params'])} fits {fitting} and none is the default set"]
    return []


def parameters(entry: dict, spec: dict, facts: dict) -> tuple[set, list[str]]:
    """The parameters a command names (by their names or aliases, as sent), and names that are neither."""
    lookup = {}
    for name, param in [*spec["parameters"].items(), *((c, facts["common_parameters"][c]) for c in spec["common"])]:
        for key in (name, *param["aliases"]):
            lookup[key.lower()] = name
    wrong = [
        f"-{sent} is no parameter or alias of {entry['cmdlet']}"
        for sent in entry["params"]
        if sent.lower() not in lookup
    ]
    return {lookup.get(sent.lower()) for sent in entry["params"]} - set(spec["common"]), wrong


def fitting_sets(entry: dict, spec: dict, given: set) -> list[str]:
    return [s for s in spec["sets"] if fits(spec, s, given, entry.get("input"))]


def fits(spec: dict, set_name: str, given: set, piped: dict | None) -> bool:
    members = {n for n, p in spec["parameters"].items() if set_name in p["sets"]}
    if not given <= members:
        return False
    mandatory = {n for n in members if spec["parameters"][n]["sets"][set_name]["mandatory"]}
    missing = mandatory - given
    if piped is not None:
        missing = {n for n in missing if not piped_into(spec["parameters"][n], n, piped)}
    return not missing


def piped_into(param: dict, name: str, piped: dict) -> bool:
    """Whether the piped objects (their .NET type and properties, as logged) bind to this parameter."""
    if piped["count"] == 0:
        return bool(param["pipeline"])  # nothing came: the command never processes a record
    element = param["type"].removesuffix("[]")
    by_value = "ByValue" in param["pipeline"] and piped["type"].split(".")[-1] == element
    by_name = "ByPropertyName" in param["pipeline"] and {name, *param["aliases"]} & set(piped["properties"])
    return bool(by_value or by_name)


def test_the_checker_refuses_what_a_host_would_refuse():
    facts = load_facts()
    vm = {"count": 1, "type": "Microsoft.HyperV.PowerShell.VirtualMachine", "properties": ["Name", "Id"]}

    def problems(cmdlet, params, piped=None):
        return check({"cmdlet": cmdlet, "params": params, **({"input": piped} if piped else {})}, facts)

    assert problems("Move-VMStorage", {"VMName": "a", "DestinationStoragePath": "D:\\"}) == []
    assert problems("Move-VM", {"DestinationHost": "h", "IncludeStorage": False}, vm) == []
    assert problems("Move-VM", {"DestinationHost": "h"}, vm)  # VMSingle- and VMMultipleDestinations
    assert problems("Move-VM", {"Name": "a", "DestinationHost": "h", "IncludeStorage": True, "Vhds": []})
    assert problems("Move-VM", {"Name": "a"})  # -DestinationHost is mandatory
    assert problems("Get-VM", {"VMId": "x"})  # not a parameter of Get-VM
    assert problems("Get-Module", {})  # not in the reference


# --- the run: everything the driver can send ----------------------------------------------------------


def follow(driver, conn, migration_id, timeout=60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = driver.migration_status(conn, migration_id)
        if status.state != "running":
            return status.state
        time.sleep(0.05)
    raise AssertionError("the move did not end")


def test_every_command_the_driver_sends_binds_to_a_parameter_set_of_the_help(
    driver, emulator, emu_store, emu_fabric_path
):
    with emu_store.session() as fabric:
        conns = {c.fqdn.split(".")[0]: c for c in fabric.connections(username=USER, password=PASSWORD)}
        ids = {vm.name: vm.id for vm in fabric.vms.values()}
        disks = {vm.name: [d.path for d in vm.disks] for vm in fabric.vms.values()}
        # Names that are wildcards matching other VMs of their host: the driver pipes these from Get-VM -Id.
        fabric.vms[ids["ci-runner01"]].name = "*1"  # analytics01 too, on hv-s2
        fabric.vms[ids["backup01"]].name = "*01"  # dc01 too, on hv-s3
        fabric.touch()  # saved: the world changed
    ids |= {"*1": ids["ci-runner01"], "*01": ids["backup01"]}
    s1, s2, s3 = conns["hv-s1"], conns["hv-s2"], conns["hv-s3"]
    old1, new1, new2 = conns["hv-old1"], conns["hv-new1"], conns["hv-new2"]

    def move(conn, name, destination, kind, **kw):
        request = MoveRequest(ids[name], conn.fqdn, destination, kind, **kw)
        driver.compare(conn, request)
        return follow(driver, conn, driver.start_migration(conn, request))

    # Inventory sync of every host, and one VM read back.
    for conn in conns.values():
        driver.inventory(conn)
    driver.get_vm(s1, ids["web-dmz01"])
    # VMs given through the pipeline: a live move and a storage move.
    assert move(s2, "*1", s1.fqdn, "live") == "completed"
    assert move(s3, "*01", s3.fqdn, "storage", storage_path="E:\\VMs\\backup01") == "completed"
    # Each transfer type.
    assert move(s2, "web-dmz02", s1.fqdn, "live") == "completed"
    share = "\\\\fs01.contoso.test\\vms\\dc01"
    assert move(s3, "dc01", s1.fqdn, "live_vsm", storage_path=share, performance_option="smb") == "completed"
    target = "D:\\Hyper-V\\app-s01"
    vhds = ((disks["app-s01"][0], f"{target}\\app-s01.vhdx"),)
    assert move(s1, "app-s01", s3.fqdn, "live_vsm", storage_path=target, vhds=vhds) == "completed"
    assert move(s1, "dev-s01", s2.fqdn, "network", storage_path="D:\\Hyper-V\\dev-s01") == "completed"
    assert move(new2, "k8s-node01", "hv-new3" + D, "quick") == "completed"
    # Storage moves, whole and per disk.
    assert move(s3, "lab-01", s3.fqdn, "storage", storage_path="E:\\VMs\\lab-01") == "completed"
    per_disk = ((disks["monitor01"][0], "E:\\VMs\\monitor01\\" + disks["monitor01"][0].rsplit("\\", 1)[-1]),)
    assert move(s3, "monitor01", s3.fqdn, "storage", storage_path="E:\\VMs\\monitor01", vhds=per_disk) == "completed"
    # Cancels: a move between hosts (its WMI job) and a move inside a cluster (-Cancel).
    for conn, name, destination in ((s2, "analytics01", s1.fqdn), (new2, "sql-prod02", "hv-new3" + D)):
        migration_id = driver.start_migration(conn, MoveRequest(ids[name], conn.fqdn, destination, "live"))
        driver.cancel_migration(conn, migration_id)
        assert follow(driver, conn, migration_id) == "cancelled"
    # Leaving a cluster, moving with storage, joining the other.
    driver.remove_cluster_role(old1, ids["erp-db01"])
    csv = "C:\\ClusterStorage\\Volume1\\VMs\\erp"
    assert move(old1, "erp-db01", new1.fqdn, "live_vsm", storage_path=csv) == "completed"
    driver.add_cluster_role(new1, ids["erp-db01"])
    # Power for a maintenance: save one VM, shut another down, start one (piped from Get-VM -Id).
    driver.save_vm(s1, ids["web-dmz01"])
    driver.stop_vm(s1, ids["*1"])  # on hv-s1 since its move above
    driver.start_vm(s1, ids["web-dmz01"])  # after a maintenance's offline move: resumed where it is
    # Settings: every Set-VMHost value, migration on and off, migration networks, the cluster's limit.
    every = HostSettings(
        max_live_migrations=4,
        max_storage_migrations=3,
        performance_option="compression",
        auth_type="kerberos",
        use_any_network=False,
        vm_path="D:\\VMs",
        vhd_path="D:\\VHDs",
        migration_enabled=False,
        add_networks=("10.40.0.0/24",),
    )
    driver.set_host_settings(s3, every)
    driver.set_host_settings(s3, HostSettings(migration_enabled=True, remove_networks=("10.40.0.0/24",)))
    driver.set_cluster_parallel_migrations(new1, "CL-NEW", 2)
    # A node's drain, followed, and its resume with failback (Suspend-/Resume-ClusterNode.md).
    driver.suspend_node(new2, "hv-new3", drain=True)
    driver.node_drain(new2, "hv-new3")
    driver.resume_node(new2, "hv-new3", "immediate")

    emulator.flush_log()
    with sqlite3.connect(emu_fabric_path) as db:
        logged = [json.loads(entry) for (entry,) in db.execute("SELECT entry FROM command_log ORDER BY seq")]
    facts = load_facts()

    problems = [(entry["cmdlet"], entry["params"], p) for entry in logged for p in check(entry, facts)]
    assert problems == []
    # The one refusal a real host gives too: the FailoverClusters cmdlets on a host without the module.
    refused = [e for e in logged if e["result"].startswith("refused")]
    assert {(e["host"], e["cmdlet"]) for e in refused} <= {
        (NO_MODULE, name) for name in ("Get-Cluster", "Get-ClusterNode")
    }
    # The emulator's binder chose a set the checker finds too.
    for entry in logged:
        spec = facts["cmdlets"].get(entry["cmdlet"])
        if spec and entry["result"] != "ok: no input" and entry not in refused:
            assert entry["parameter_set"] in fitting_sets(entry, spec, parameters(entry, spec, facts)[0]), entry
    sent = {(e["cmdlet"], tuple(sorted(e["params"]))) for e in logged}
    expected = {
        ("Move-VM", ("DestinationHost", "Name", "Passthru")),
        ("Move-VM", ("DestinationHost", "DestinationStoragePath", "IncludeStorage", "Name", "Passthru")),
        ("Move-VM", ("DestinationHost", "Name", "Passthru", "Vhds", "VirtualMachinePath")),
        ("Move-VM", ("DestinationHost", "IncludeStorage", "Passthru")),  # piped, -IncludeStorage:$false
        ("Compare-VM", ("DestinationHost", "IncludeStorage")),
        ("Move-VMStorage", ("DestinationStoragePath", "VMName")),
        ("Move-VMStorage", ("VMName", "Vhds", "VirtualMachinePath")),
        ("Move-VMStorage", ("DestinationStoragePath",)),  # piped
        ("Move-ClusterVirtualMachineRole", ("MigrationType", "Node", "VMId")),
        ("Move-ClusterVirtualMachineRole", ("Cancel", "VMId")),
        ("Remove-ClusterGroup", ("Force", "RemoveResources", "VMId")),
        ("Add-ClusterVirtualMachineRole", ("VMId",)),
        ("Enable-VMMigration", ()),
        ("Disable-VMMigration", ()),
        ("Add-VMMigrationNetwork", ("Subnet",)),
        ("Remove-VMMigrationNetwork", ("Subnet",)),
        ("Invoke-CimMethod", ("Arguments", "MethodName")),
        ("Set-ClusterMaximumParallelMigrations (script)", ("Cluster", "Value")),
        ("Suspend-ClusterNode", ("Drain", "Name")),
        ("Resume-ClusterNode", ("Failback", "Name")),
        ("Get-ClusterNode", ("Name",)),
        ("Get-ClusterGroup", ()),
    }
    assert expected <= sent, expected - sent
    set_vmhost = max((e["params"] for e in logged if e["cmdlet"] == "Set-VMHost"), key=len)
    assert len(set_vmhost) == 7  # every value the console sets, in one command
    quick = [e for e in logged if e["cmdlet"] == "Move-ClusterVirtualMachineRole" and "MigrationType" in e["params"]]
    assert {e["params"]["MigrationType"] for e in quick} == {"Quick", "Live"}
