"""One case table per rule: a proposal that trips it, and one just on the other side."""

from dataclasses import replace

import pytest

from migrations_ui.preflight.facts import DiskFacts, HostFacts, Kind, Proposal, ShareFacts, VmFacts
from migrations_ui.preflight.rules import RULES, evaluate

GIB = 2**30
SHARE = "\\\\fs01.contoso.test\\vms"
SHARES = (
    ShareFacts(SHARE, "fs01.contoso.test", "fs01.contoso.test"),
    ShareFacts("\\\\fs01\\vmstore2", "fs01", "fs01.contoso.test"),
)

VM = VmFacts(
    id="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    name="web01",
    state="running",
    memory_bytes=8 * GIB,
    config_version="10.0",
    config_path=SHARE + "\\web01",
    switch_names=("LAN",),
    disks=(DiskFacts(SHARE + "\\web01\\web01.vhdx", size_bytes=40 * GIB),),
)
S1 = HostFacts(
    fqdn="hv-s1.contoso.test",
    name="hv-s1",
    supported_config_versions=("8.0", "9.0", "10.0"),
    memory_total_bytes=256 * GIB,
    memory_available_bytes=128 * GIB,
    processor_family="Intel Xeon Gold 6338",
    migration_networks=("10.10.0.0/24",),
    virtual_switches=("LAN",),
    shares=(SHARE,),
    delegation="configured",  # recorded by an administrator
)
S2 = replace(S1, fqdn="hv-s2.contoso.test", name="hv-s2")
N1 = replace(
    S1, fqdn="n1.contoso.test", name="n1", cluster="cl-new.contoso.test", cluster_name="CL-NEW", cluster_max_parallel=1
)
N2 = replace(N1, fqdn="n2.contoso.test", name="n2")
O1 = replace(N1, fqdn="o1.contoso.test", name="o1", cluster="cl-old.contoso.test", cluster_name="CL-OLD")


def proposal(vm=VM, source=S1, destination=S2, kind=Kind.LIVE, **kw):
    return Proposal(vm=vm, source=source, destination=destination, kind=kind, shares=SHARES, **kw)


def rules_of(p, severity=None):
    return {f.rule for f in evaluate(p) if severity is None or f.severity == severity}


def test_it_finds_nothing_for_a_clean_live_move():
    assert evaluate(proposal()) == []


def test_every_rule_id_is_stable():
    assert [r.__name__.replace("_", "-") for r in RULES] == [
        "path-not-allowed",
        "smb-path-not-fqdn",
        "share-reachability-unknown",
        "shared-vhdx-not-movable",
        "compat-vector-restart-required",
        "config-version-unsupported",
        "ha-lost-during-move",
        "vm-not-running",
        "migration-disabled",
        "no-migration-network",
        "insufficient-memory",
        "vswitch-missing",
        "processor-incompatible",
        "kerberos-delegation-missing",
        "clustered-vm-storage-move",
        "host-migration-limit",
        "cluster-parallel-limit",
        "vm-already-moving",
        "host-unreachable",
        "dvd-iso-local-path",
        "checkpoint-files-local",
        "smart-paging-local",
        "passthrough-disk",
        "virtual-fibre-channel",
        "hyper-v-replica",
        "not-possible-owner",
        "guest-cluster-same-host",
    ]


SHORT_VM = replace(VM, config_path="\\\\fs01\\vmstore2\\web01", disks=(DiskFacts("\\\\fs01\\vmstore2\\web01\\a.vhdx"),))


@pytest.mark.parametrize(
    ("p", "flagged"),
    [
        (proposal(kind=Kind.LIVE_VSM, storage_path="\\\\fs01\\vmstore2\\web01"), True),
        (proposal(kind=Kind.LIVE_VSM, storage_path="\\\\10.0.0.5\\vms"), True),
        (proposal(kind=Kind.LIVE_VSM, storage_path=SHARE + "\\web01"), False),
        (proposal(kind=Kind.LIVE_VSM, storage_path="D:\\Hyper-V"), False),
        (proposal(vm=SHORT_VM, kind=Kind.LIVE), True),  # files stay on a short-name share
        (proposal(vm=SHORT_VM, kind=Kind.LIVE_VSM, storage_path="D:\\Hyper-V"), False),  # they leave it
        (proposal(kind=Kind.STORAGE, destination=S1, vhds=((VM.disks[0].path, "\\\\fs01\\vmstore2\\x.vhdx"),)), True),
    ],
)
def test_smb_path_not_fqdn(p, flagged):
    assert ("smb-path-not-fqdn" in rules_of(p, "block")) is flagged


def test_smb_path_not_fqdn_reports_each_path_once():
    findings = [f for f in evaluate(proposal(vm=SHORT_VM)) if f.rule == "smb-path-not-fqdn"]
    assert len(findings) == 2  # the folder and the disk, each once


@pytest.mark.parametrize(
    ("p", "flagged"),
    [
        (proposal(kind=Kind.LIVE_VSM, storage_path="D:\\VMs\\..\\..\\Windows\\System32"), True),
        (proposal(kind=Kind.LIVE_VSM, storage_path="C:\\Windows\\System32"), True),
        (proposal(kind=Kind.STORAGE, destination=S1, storage_path="C:\\Program Files\\VMs"), True),
        (proposal(kind=Kind.STORAGE, destination=S1, vhds=((VM.disks[0].path, "C:\\Windows\\web01.vhdx"),)), True),
        (proposal(kind=Kind.STORAGE, destination=S1, vhds=((VM.disks[0].path, SHARE + "\\..\\web01.vhdx"),)), True),
        (proposal(kind=Kind.LIVE_VSM, storage_path="D:\\Hyper-V\\web01"), False),
        (proposal(kind=Kind.STORAGE, destination=S1, vhds=((VM.disks[0].path, "E:\\Fast\\web01.vhdx"),)), False),
    ],
)
def test_path_not_allowed(p, flagged):
    assert ("path-not-allowed" in rules_of(p, "block")) is flagged


def test_path_not_allowed_says_why_and_what_to_do_in_english_and_german():
    from django.utils import translation

    from utilities.texts import localized

    finding = next(
        f for f in evaluate(proposal(kind=Kind.LIVE_VSM, storage_path="D:\\VMs\\..\\x")) if f.rule == "path-not-allowed"
    )
    assert finding.message == (
        "The destination D:\\VMs\\..\\x contains . or .. segments, which Windows resolves to another folder than "
        "the one shown."
    )
    assert finding.remedy.startswith("Choose a folder for VM files outside the Windows system folders")
    with translation.override("de"):
        assert "Abschnitte" in localized(finding.message) and "Systemordner" in localized(finding.remedy)


SHARED = DiskFacts("C:\\ClusterStorage\\Volume1\\sql\\quorum.vhdx", shared=True)
GUEST = replace(VM, name="sql-fc1", disks=(DiskFacts("D:\\sql-fc1\\os.vhdx"), SHARED))


@pytest.mark.parametrize(
    ("p", "flagged"),
    [
        (proposal(vm=GUEST, kind=Kind.STORAGE, destination=S1, storage_path="E:\\VMs"), True),  # whole VM
        (proposal(vm=GUEST, kind=Kind.LIVE_VSM, storage_path="D:\\Hyper-V"), True),
        (proposal(vm=GUEST, kind=Kind.STORAGE, destination=S1, vhds=((SHARED.path, "E:\\q.vhdx"),)), True),
        (proposal(vm=GUEST, kind=Kind.STORAGE, destination=S1, vhds=(("D:\\sql-fc1\\os.vhdx", "E:\\os.vhdx"),)), False),
        (proposal(vm=GUEST, kind=Kind.LIVE), False),  # files stay in place
    ],
)
def test_shared_vhdx_not_movable(p, flagged):
    findings = [f for f in evaluate(p) if f.rule == "shared-vhdx-not-movable"]
    assert bool(findings) is flagged
    if flagged:
        assert "Shut down the VMs sharing the disk" in findings[0].remedy


STALE = replace(VM, compat_vector_stale=True, clustered=True, config_path="C:\\ClusterStorage\\Volume1\\x", disks=())


@pytest.mark.parametrize(
    ("p", "flagged"),
    [
        (proposal(vm=STALE, source=N1, destination=N2), True),
        (proposal(vm=replace(STALE, compat_vector_stale=False), source=N1, destination=N2), False),
        (proposal(vm=STALE, source=N1, destination=O1, kind=Kind.LIVE_VSM, storage_path="D:\\x"), False),
    ],
)
def test_compat_vector_restart_required(p, flagged):
    findings = [f for f in evaluate(p) if f.rule == "compat-vector-restart-required"]
    assert bool(findings) is flagged
    if flagged:
        assert "Restart the VM" in findings[0].remedy and "CL-NEW" in findings[0].message


@pytest.mark.parametrize(
    ("version", "supported", "flagged"),
    [
        ("10.0", ("8.0", "9.0"), True),
        ("12.0", ("8.0", "10.0"), True),
        ("9.0", ("8.0", "9.0"), False),
        ("9.0", (), False),
    ],
)
def test_config_version_unsupported(version, supported, flagged):
    p = proposal(vm=replace(VM, config_version=version), destination=replace(S2, supported_config_versions=supported))
    assert ("config-version-unsupported" in rules_of(p, "block")) is flagged


@pytest.mark.parametrize(
    ("vm", "source", "destination", "flagged"),
    [
        (replace(VM, clustered=True), N1, O1, True),
        (replace(VM, clustered=True), N1, S2, True),
        (replace(VM, clustered=True), N1, N2, False),
        (VM, S1, S2, False),
    ],
)
def test_ha_lost_during_move(vm, source, destination, flagged):
    findings = [
        f for f in evaluate(proposal(vm=vm, source=source, destination=destination)) if f.rule == "ha-lost-during-move"
    ]
    assert bool(findings) is flagged
    if flagged:
        assert findings[0].severity == "warn" and "High availability is lost" in findings[0].message


@pytest.mark.parametrize(
    ("state", "kind", "severity"),
    [
        ("off", Kind.LIVE, "block"),
        ("saved", Kind.LIVE_VSM, "block"),
        ("off", Kind.NETWORK, "info"),
        ("running", Kind.LIVE, None),
    ],
)
def test_vm_not_running(state, kind, severity):
    findings = [f for f in evaluate(proposal(vm=replace(VM, state=state), kind=kind)) if f.rule == "vm-not-running"]
    assert [f.severity for f in findings] == ([severity] if severity else [])


@pytest.mark.parametrize(
    ("source", "destination", "kind", "count"),
    [
        (replace(S1, migration_enabled=False), S2, Kind.LIVE, 1),
        (S1, replace(S2, migration_enabled=False), Kind.LIVE, 1),
        (replace(S1, migration_enabled=False), replace(S2, migration_enabled=False), Kind.LIVE_VSM, 2),
        (replace(S1, migration_enabled=False), replace(S1, migration_enabled=False), Kind.STORAGE, 0),
        (S1, S2, Kind.LIVE, 0),
    ],
)
def test_migration_disabled(source, destination, kind, count):
    p = proposal(source=source, destination=destination, kind=kind, storage_path="D:\\x" if kind != Kind.LIVE else "")
    assert [f.rule for f in evaluate(p)].count("migration-disabled") == count


@pytest.mark.parametrize(
    ("destination", "flagged"),
    [
        (replace(S2, migration_networks=()), True),
        (replace(S2, migration_networks=(), use_any_network=True), False),
        (S2, False),
    ],
)
def test_no_migration_network(destination, flagged):
    assert ("no-migration-network" in rules_of(proposal(destination=destination))) is flagged


@pytest.mark.parametrize(
    ("free", "state", "flagged"), [(4 * GIB, "running", True), (8 * GIB, "running", False), (1 * GIB, "off", False)]
)
def test_insufficient_memory(free, state, flagged):
    p = proposal(
        vm=replace(VM, state=state),
        destination=replace(S2, memory_available_bytes=free),
        kind=Kind.NETWORK if state == "off" else Kind.LIVE,
    )
    findings = [f for f in evaluate(p) if f.rule == "insufficient-memory"]
    assert bool(findings) is flagged
    if flagged:
        assert "0x800705AA" in findings[0].message


@pytest.mark.parametrize(
    ("switches", "present", "missing"),
    [
        (("LAN",), ("LAN",), []),
        (("LAN",), ("lan",), []),  # switch names compare case-insensitively
        (("LAN", "Storage"), ("LAN",), ["Storage"]),
        (("LAN", "LAN"), (), ["LAN"]),  # two adapters on one switch: one finding
    ],
)
def test_vswitch_missing(switches, present, missing):
    p = proposal(vm=replace(VM, switch_names=switches), destination=replace(S2, virtual_switches=present))
    found = [f.message for f in evaluate(p) if f.rule == "vswitch-missing"]
    assert len(found) == len(missing)
    assert all(name in msg for name, msg in zip(missing, found, strict=True))


@pytest.mark.parametrize(
    ("family", "compat", "kind", "flagged"),
    [
        ("Intel Xeon Gold 6248R", False, Kind.LIVE, True),  # another generation of the same vendor
        ("Intel Xeon Gold 6248R", True, Kind.LIVE, False),  # processor compatibility bridges it
        ("Intel Xeon Gold 6248R", False, Kind.QUICK, True),  # the saved state restores on the new processor
        ("Intel Xeon Gold 6248R", False, Kind.NETWORK, False),  # the VM is off
        ("AMD EPYC 7763", False, Kind.LIVE, True),
        ("AMD EPYC 7763", True, Kind.LIVE, True),  # compatibility mode never crosses vendors
        ("AMD EPYC 7763", True, Kind.LIVE_VSM, True),
        ("AMD EPYC 7763", True, Kind.QUICK, True),
        ("AMD EPYC 7763", False, Kind.NETWORK, False),  # only an offline move of a VM that is off
        ("Intel Xeon Gold 6338", False, Kind.LIVE, False),
    ],
)
def test_processor_incompatible(family, compat, kind, flagged):
    # Every case with the running VM's (or, offline, the stopped VM's) state of its kind.
    p = proposal(
        vm=replace(VM, processor_compatibility=compat, state="running" if kind != Kind.NETWORK else "off"),
        destination=replace(S2, processor_family=family),
        kind=kind,
    )
    assert ("processor-incompatible" in rules_of(p)) is flagged


def test_processor_incompatible_blocks_a_saved_vm_across_vendors_offline_too():
    amd = replace(S2, processor_family="AMD EPYC 7763")
    saved = proposal(vm=replace(VM, state="saved"), destination=amd, kind=Kind.NETWORK)
    [finding] = [f for f in evaluate(saved) if f.rule == "processor-incompatible"]
    assert finding.severity == "block" and "different vendors" in finding.message
    assert "offline" in finding.remedy


@pytest.mark.parametrize(
    ("source", "destination", "codes"),
    [
        (S1, S2, []),
        (replace(S1, delegation="missing"), S2, [("block", "0x8009030E")]),
        (S1, replace(S2, auth_type="credssp"), [("block", "0x8009030D")]),
        (
            replace(S1, delegation="missing"),
            replace(S2, delegation="missing"),
            [("block", "0x8009030E"), ("block", "0x8009030E")],
        ),
        # Nobody recorded it: the console cannot know (Active Directory holds it), so it warns.
        (replace(S1, delegation="unknown"), S2, [("warn", "0x8009030E")]),
        (
            replace(S1, delegation="unknown"),
            replace(S2, delegation="missing"),
            [("block", "0x8009030E"), ("warn", "0x8009030E")],  # blocking findings first
        ),
    ],
)
def test_kerberos_delegation_missing(source, destination, codes):
    found = [
        f for f in evaluate(proposal(source=source, destination=destination)) if f.rule == "kerberos-delegation-missing"
    ]
    assert [(f.severity, next(c for c in ("0x8009030E", "0x8009030D") if c in f.message)) for f in found] == codes


def test_kerberos_delegation_remedy_says_use_any_authentication_protocol():
    [finding] = [
        f
        for f in evaluate(proposal(source=replace(S1, delegation="unknown")))
        if f.rule == "kerberos-delegation-missing"
    ]
    remedy = str(finding.remedy)
    assert "Use any authentication protocol" in remedy and "not Kerberos only" in remedy
    assert "cifs" in remedy and "Microsoft Virtual System Migration Service" in remedy and "both hosts" in remedy


HA_CSV = replace(VM, clustered=True, config_path="C:\\ClusterStorage\\Volume1\\x", disks=())
UNPREPARED = {"delegation": "missing", "auth_type": "credssp", "migration_enabled": False, "migration_networks": ()}


@pytest.mark.parametrize("kind", [Kind.LIVE, Kind.QUICK])
def test_a_move_inside_a_cluster_needs_no_delegation_nor_hyperv_migration_settings(kind):
    # The cluster moves its own role with its own account and networks (hyperv.md section 9).
    p = proposal(vm=HA_CSV, source=replace(N1, **UNPREPARED), destination=replace(N2, **UNPREPARED), kind=kind)
    assert not rules_of(p) & {"kerberos-delegation-missing", "migration-disabled", "no-migration-network"}


def test_a_move_between_clusters_or_of_a_vm_that_is_not_ha_still_needs_them():
    unprepared = replace(N2, **UNPREPARED)
    across = proposal(vm=HA_CSV, source=N1, destination=replace(O1, **UNPREPARED), kind=Kind.LIVE_VSM)
    not_ha = proposal(vm=VM, source=N1, destination=unprepared)
    for p in (across, not_ha):
        assert {"kerberos-delegation-missing", "migration-disabled", "no-migration-network"} <= rules_of(p, "block")


@pytest.mark.parametrize(
    ("vm", "destination", "kind", "severity"),
    [
        (replace(VM, clustered=True), N2, Kind.LIVE_VSM, "block"),
        (replace(VM, clustered=True), O1, Kind.LIVE_VSM, "info"),  # cross-cluster: the role is removed first
        (replace(VM, clustered=True), N2, Kind.LIVE, None),
        (VM, S2, Kind.LIVE_VSM, None),
    ],
)
def test_clustered_vm_storage_move(vm, destination, kind, severity):
    p = proposal(
        vm=vm, source=N1, destination=destination, kind=kind, storage_path="D:\\x" if kind == Kind.LIVE_VSM else ""
    )
    found = [f.severity for f in evaluate(p) if f.rule == "clustered-vm-storage-move"]
    assert found == ([severity] if severity else [])


@pytest.mark.parametrize(
    ("source", "destination", "kind", "expected"),
    [
        (replace(S1, live_in_use=2), S2, Kind.LIVE, ["hv-s1"]),
        (S1, replace(S2, live_in_use=1), Kind.LIVE, []),
        (S1, replace(S2, live_in_use=2, queued=3), Kind.LIVE, ["hv-s2 behind 3"]),
        (replace(S1, storage_in_use=2), S2, Kind.LIVE, []),  # live needs no storage slot
        (replace(S1, storage_in_use=2), S2, Kind.LIVE_VSM, ["hv-s1"]),  # live VSM needs both
        (replace(N1, live_in_use=1), N2, Kind.LIVE, ["n1"]),  # the cluster's limit of 1 applies
    ],
)
def test_host_migration_limit(source, destination, kind, expected):
    p = proposal(
        source=source, destination=destination, kind=kind, storage_path="D:\\x" if kind == Kind.LIVE_VSM else ""
    )
    found = [f for f in evaluate(p) if f.rule == "host-migration-limit"]
    assert len(found) == len(expected)
    for f, text in zip(found, expected, strict=True):
        assert f.severity == "info" and "wait for a free slot on " + text.split()[0] in f.message
        assert text.split()[-1] in f.message


@pytest.mark.parametrize(
    ("source", "destination", "count"),
    [(N1, N2, 2), (S1, S2, 0), (replace(N1, max_live=1), replace(N2, max_live=1), 0), (S1, N2, 1)],
)
def test_cluster_parallel_limit(source, destination, count):
    found = [
        f for f in evaluate(proposal(source=source, destination=destination)) if f.rule == "cluster-parallel-limit"
    ]
    assert len(found) == count
    assert all(f.severity == "info" and "MaximumParallelMigrations" in f.message for f in found)


def test_vm_already_moving():
    found = [f for f in evaluate(proposal(vm=replace(VM, moving=True))) if f.rule == "vm-already-moving"]
    assert [f.severity for f in found] == ["block"]
    assert not [f for f in evaluate(proposal()) if f.rule == "vm-already-moving"]


def test_host_unreachable():
    p = proposal(destination=replace(S2, reachable=False, last_error="connection refused"))
    found = [f for f in evaluate(p) if f.rule == "host-unreachable"]
    assert [f.severity for f in found] == ["block"] and "connection refused" in found[0].message
    assert not [f for f in evaluate(proposal()) if f.rule == "host-unreachable"]


def test_blocking_findings_come_first():
    p = proposal(vm=replace(VM, clustered=True), source=N1, destination=replace(O1, migration_networks=()))
    severities = [f.severity for f in evaluate(p)]
    assert severities == sorted(severities, key=["block", "warn", "info"].index)
    assert severities[0] == "block"


@pytest.mark.parametrize(
    ("destination", "says"), [(O1, "made highly available again"), (S2, "without high availability")]
)
def test_a_clustered_vm_leaving_its_cluster_is_told_where_it_ends_without_ha(destination, says):
    p = proposal(vm=replace(VM, clustered=True), source=N1, destination=destination, kind=Kind.LIVE_VSM)
    [finding] = [f for f in evaluate(p) if f.rule == "clustered-vm-storage-move"]
    assert says in str(finding.message)


QUORUM = SHARE + "\\sql-fc\\quorum.vhdx"
NODE = replace(VM, name="sql-fc1", disks=(DiskFacts(SHARE + "\\sql-fc1\\os.vhdx"), DiskFacts(QUORUM, shared=True)))


@pytest.mark.parametrize(
    ("p", "partners"),
    [
        (proposal(vm=NODE, destination_shared=(("sql-fc2", QUORUM),)), ["sql-fc2"]),
        (proposal(vm=NODE, destination_shared=(("sql-fc2", QUORUM.upper()),)), ["sql-fc2"]),  # Windows paths
        (proposal(vm=NODE, kind=Kind.LIVE_VSM, destination_shared=(("sql-fc2", QUORUM),)), ["sql-fc2"]),
        (proposal(vm=NODE, destination_shared=(("other-fc", SHARE + "\\other\\quorum.vhdx"),)), []),
        (proposal(vm=NODE), []),  # the partner runs elsewhere
        (proposal(vm=replace(NODE, disks=NODE.disks[:1]), destination_shared=(("sql-fc2", QUORUM),)), []),
        (proposal(vm=NODE, destination=S1, kind=Kind.STORAGE, destination_shared=(("sql-fc2", QUORUM),)), []),
    ],
)
def test_guest_cluster_same_host(p, partners):
    from django.utils import translation

    from utilities.texts import localized

    found = [f for f in evaluate(p) if f.rule == "guest-cluster-same-host"]
    assert [f.message.params["partner"] for f in found] == partners
    # A real host takes the move (only VMM's placement and the cluster's failover keep the nodes apart):
    # a warning with the remedy, never a block.
    assert {f.severity for f in found} <= {"warn"}
    for f in found:
        assert "hv-s2" in f.message and "Choose a host where no other node" in f.remedy
        with translation.override("de"):
            assert "Gastcluster" in localized(f.message) and "Gastclusters" in localized(f.remedy)
