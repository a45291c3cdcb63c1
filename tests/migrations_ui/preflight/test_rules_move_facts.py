"""The rules on what real moves fail on (hyperv.md section 9): a case that trips each, one just on
the other side, and the German texts."""

from dataclasses import replace

import pytest
from django.utils import translation

from migrations_ui.preflight.facts import DiskFacts, Kind
from migrations_ui.preflight.rules import BLOCK, WARN, evaluate
from migrations_ui.preflight.transfer import assess
from tests.migrations_ui.preflight.test_rules import N1, N2, O1, S1, S2, SHARE, VM, proposal
from utilities.texts import localized

LOCAL_ISO = "C:\\ISO\\setup.iso"
CSV = "C:\\ClusterStorage\\Volume1"
CLUSTERED = replace(VM, clustered=True, config_path=CSV + "\\web01", disks=(DiskFacts(CSV + "\\web01\\web01.vhdx"),))


def findings(p, rule):
    return [f for f in evaluate(p) if f.rule == rule]


# --- dvd-iso-local-path ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.LIVE, Kind.LIVE_VSM, Kind.NETWORK])
def test_an_iso_on_a_local_path_blocks_every_move_to_another_host(kind):
    [finding] = findings(proposal(vm=replace(VM, dvd_isos=(LOCAL_ISO,)), kind=kind), "dvd-iso-local-path")

    assert finding.severity == BLOCK
    assert LOCAL_ISO in finding.message and "hv-s2" in finding.message
    assert "Eject the ISO" in finding.remedy


def test_an_iso_on_a_share_the_destination_reaches_does_not_block():
    on_share = replace(VM, dvd_isos=(SHARE + "\\iso\\setup.iso",))
    assert findings(proposal(vm=on_share), "dvd-iso-local-path") == []
    # ... but a destination not connected to that share cannot open it.
    assert findings(proposal(vm=on_share, destination=replace(S2, shares=())), "dvd-iso-local-path")


def test_an_iso_does_not_matter_to_a_storage_move_on_its_host():
    assert (
        findings(
            proposal(vm=replace(VM, dvd_isos=(LOCAL_ISO,)), destination=S1, kind=Kind.STORAGE), "dvd-iso-local-path"
        )
        == []
    )


def test_an_iso_on_a_csv_is_reachable_from_the_nodes_of_its_cluster_only():
    vm = replace(CLUSTERED, dvd_isos=(CSV + "\\iso\\setup.iso",))
    assert findings(proposal(vm=vm, source=N1, destination=N2), "dvd-iso-local-path") == []
    assert findings(proposal(vm=vm, source=N1, destination=O1), "dvd-iso-local-path")


# --- checkpoint-files-local -----------------------------------------------------------------

WITH_CHECKPOINTS = replace(VM, checkpoints=2, snapshot_path="D:\\Checkpoints")


def test_local_checkpoints_block_a_move_that_leaves_them_behind():
    [finding] = findings(proposal(vm=WITH_CHECKPOINTS), "checkpoint-files-local")

    assert finding.severity == BLOCK
    assert "D:\\Checkpoints" in finding.message and "2 checkpoint" in finding.message


def test_local_checkpoints_move_with_the_whole_storage():
    p = proposal(vm=WITH_CHECKPOINTS, kind=Kind.LIVE_VSM, storage_path="D:\\VMs\\web01")
    assert findings(p, "checkpoint-files-local") == []


def test_local_checkpoints_stay_behind_in_a_per_disk_move():
    vhds = ((SHARE + "\\web01\\web01.vhdx", "D:\\VMs\\web01.vhdx"),)
    assert findings(proposal(vm=WITH_CHECKPOINTS, kind=Kind.LIVE_VSM, vhds=vhds), "checkpoint-files-local")


def test_a_checkpoint_folder_without_checkpoints_is_no_finding():
    assert findings(proposal(vm=replace(WITH_CHECKPOINTS, checkpoints=0)), "checkpoint-files-local") == []


def test_the_planner_moves_local_checkpoints_with_the_storage_instead_of_offering_live():
    # The checkpoints' folder is one of the files a Live move needs the destination to reach.
    assessment = assess(proposal(vm=WITH_CHECKPOINTS, kind=None))
    assert assessment.transfer_type == Kind.LIVE_VSM
    assert assess(proposal(vm=replace(WITH_CHECKPOINTS, checkpoints=0), kind=None)).transfer_type == Kind.LIVE


def test_local_checkpoints_block_a_move_inside_a_cluster():
    vm = replace(CLUSTERED, checkpoints=1, snapshot_path="D:\\Checkpoints")
    assert findings(proposal(vm=vm, source=N1, destination=N2, kind=Kind.QUICK), "checkpoint-files-local")
    on_csv = replace(vm, snapshot_path=CSV + "\\web01\\Snapshots")
    assert findings(proposal(vm=on_csv, source=N1, destination=N2, kind=Kind.QUICK), "checkpoint-files-local") == []


# --- smart-paging-local ---------------------------------------------------------------------


def test_a_local_smart_paging_folder_warns_when_it_stays_behind():
    vm = replace(VM, smart_paging_path="D:\\SmartPaging")
    [finding] = findings(proposal(vm=vm), "smart-paging-local")

    assert finding.severity == WARN
    assert "Set-VM -SmartPagingFilePath" in finding.remedy
    assert findings(proposal(vm=vm, kind=Kind.LIVE_VSM, storage_path="D:\\VMs"), "smart-paging-local") == []
    assert findings(proposal(vm=replace(vm, smart_paging_path=SHARE + "\\web01")), "smart-paging-local") == []


# --- passthrough-disk -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [Kind.LIVE, Kind.LIVE_VSM, Kind.NETWORK])
def test_a_passthrough_disk_blocks_a_move_outside_a_cluster(kind):
    [finding] = findings(proposal(vm=replace(VM, passthrough_disks=(3,)), kind=kind), "passthrough-disk")

    assert finding.severity == BLOCK
    assert "3" in finding.message and "VHDX" in finding.remedy


def test_a_passthrough_disk_moves_with_a_clustered_vm_inside_its_cluster_only():
    vm = replace(CLUSTERED, passthrough_disks=(3,))
    assert findings(proposal(vm=vm, source=N1, destination=N2, kind=Kind.LIVE), "passthrough-disk") == []
    assert findings(proposal(vm=vm, source=N1, destination=O1, kind=Kind.LIVE), "passthrough-disk")
    assert findings(proposal(vm=vm, source=N1, destination=S2, kind=Kind.LIVE), "passthrough-disk")


# --- virtual-fibre-channel ------------------------------------------------------------------


def test_virtual_fibre_channel_warns_with_the_san_to_check():
    [finding] = findings(proposal(vm=replace(VM, fc_sans=("SAN-Prod", "SAN-Prod"))), "virtual-fibre-channel")

    assert finding.severity == WARN
    assert "SAN-Prod" in finding.remedy and "hv-s2" in finding.remedy and "WWN" in finding.remedy
    assert findings(proposal(), "virtual-fibre-channel") == []


# --- hyper-v-replica ------------------------------------------------------------------------

PRIMARY = replace(
    VM, replication_mode="primary", replication_primary="hv-s1.contoso.test", replication_replica="hv-dr.contoso.test"
)


def test_moving_a_primary_warns_that_the_replica_server_must_accept_the_new_host():
    [finding] = findings(proposal(vm=PRIMARY), "hyper-v-replica")

    assert finding.severity == WARN
    assert "hv-dr.contoso.test" in finding.message
    assert "hv-s2" in finding.remedy and "Replica Broker" in finding.remedy


def test_moving_a_replica_vm_warns_that_replication_stops():
    replica = replace(PRIMARY, replication_mode="replica", state="off")
    [finding] = findings(proposal(vm=replica, kind=Kind.NETWORK), "hyper-v-replica")

    assert "Replica VM" in finding.message and "hv-s1.contoso.test" in finding.message


def test_replication_inside_a_cluster_follows_the_vm_through_the_replica_broker():
    vm = replace(CLUSTERED, replication_mode="primary", replication_replica="broker.contoso.test")
    assert findings(proposal(vm=vm, source=N1, destination=N2), "hyper-v-replica") == []
    assert findings(proposal(vm=vm, source=N1, destination=O1), "hyper-v-replica")


# --- not-possible-owner ---------------------------------------------------------------------


def test_a_node_that_is_not_a_possible_owner_blocks_the_cluster_move():
    vm = replace(CLUSTERED, possible_owners=("n1", "n3"))
    [finding] = findings(proposal(vm=vm, source=N1, destination=N2), "not-possible-owner")

    assert finding.severity == BLOCK
    assert "0x80071398" in finding.message and "n1, n3" in finding.message
    assert "possible owners" in finding.remedy and "n2" in finding.remedy


def test_possible_owners_allow_their_nodes_and_unknown_owners_block_nothing():
    assert (
        findings(
            proposal(vm=replace(CLUSTERED, possible_owners=("N1", "N2")), source=N1, destination=N2),
            "not-possible-owner",
        )
        == []
    )
    assert findings(proposal(vm=CLUSTERED, source=N1, destination=N2), "not-possible-owner") == []


def test_a_quick_move_is_no_way_around_a_possible_owner():
    vm = replace(CLUSTERED, possible_owners=("n1",), processor_compatibility=False)
    assessment = assess(proposal(vm=vm, source=N1, destination=replace(N2, processor_family="AMD EPYC"), kind=None))
    assert not assessment.allowed
    assert "not-possible-owner" in {f.rule for f in assessment.findings}


# --- German ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vm", "kwargs", "rule"),
    [
        (replace(VM, dvd_isos=(LOCAL_ISO,)), {}, "dvd-iso-local-path"),
        (WITH_CHECKPOINTS, {}, "checkpoint-files-local"),
        (replace(VM, smart_paging_path="D:\\SmartPaging"), {}, "smart-paging-local"),
        (replace(VM, passthrough_disks=(3,)), {}, "passthrough-disk"),
        (replace(VM, fc_sans=("SAN-Prod",)), {}, "virtual-fibre-channel"),
        (PRIMARY, {}, "hyper-v-replica"),
        (replace(PRIMARY, replication_mode="replica"), {}, "hyper-v-replica"),
        (replace(CLUSTERED, possible_owners=("n1",)), {"source": N1, "destination": N2}, "not-possible-owner"),
    ],
)
def test_each_new_finding_reads_in_german(vm, kwargs, rule):
    [finding] = findings(proposal(vm=vm, **kwargs), rule)
    with translation.override("de"):
        message, remedy = localized(finding.message), localized(finding.remedy)

    assert message != str(finding.message) and remedy != str(finding.remedy)
    for value in ("hv-s2", "n2", LOCAL_ISO, "SAN-Prod", "D:\\Checkpoints", "D:\\SmartPaging"):
        assert (value in message) == (value in str(finding.message))
