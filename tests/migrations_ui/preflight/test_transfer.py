from dataclasses import replace

import pytest

from migrations_ui.preflight.facts import DiskFacts, Kind
from migrations_ui.preflight.transfer import assess, rating, transfer_type
from tests.migrations_ui.preflight.test_rules import GIB, N1, N2, O1, S1, S2, SHARE, VM, proposal

LOCAL = replace(S2, fqdn="hv-s3.contoso.test", name="hv-s3", shares=())
CSV_VM = replace(
    VM,
    clustered=True,
    config_path="C:\\ClusterStorage\\Volume1\\db",
    disks=(DiskFacts("C:\\ClusterStorage\\Volume1\\db\\db.vhdx"),),
)
O1_ON_SHARE = replace(O1, shares=(SHARE,))
O1_NO_SHARE = replace(O1, shares=())


@pytest.mark.parametrize(
    ("vm", "source", "destination", "storage", "expected"),
    [
        (VM, S1, S2, "", Kind.LIVE),  # both standalone hosts on the share
        (VM, S1, LOCAL, "", Kind.LIVE_VSM),  # destination cannot reach the share
        (VM, S1, S2, "D:\\Hyper-V", Kind.LIVE_VSM),  # a storage target was asked for
        (VM, S1, S1, "E:\\VMs", Kind.STORAGE),  # same host, new place
        (VM, S1, S1, "", None),  # same host, nothing to do
        (replace(VM, state="off"), S1, S2, "", Kind.NETWORK),
        (replace(VM, state="saved"), S1, LOCAL, "", Kind.NETWORK),
        (replace(VM, state="paused"), S1, S2, "", None),
        (CSV_VM, N1, N2, "", Kind.LIVE),  # inside the cluster the CSV is shared
        (CSV_VM, N1, O1_ON_SHARE, "", Kind.LIVE_VSM),  # the other cluster cannot see this CSV
        (replace(CSV_VM, config_path=SHARE + "\\db", disks=()), N1, O1_ON_SHARE, "", Kind.LIVE),  # shared storage
        (replace(CSV_VM, config_path=SHARE + "\\db", disks=()), N1, O1_NO_SHARE, "", Kind.LIVE_VSM),
    ],
)
def test_it_picks_the_transfer_type(vm, source, destination, storage, expected):
    assert (
        transfer_type(proposal(vm=vm, source=source, destination=destination, kind=None, storage_path=storage))
        == expected
    )


@pytest.mark.parametrize("family", ["AMD EPYC 7763", "Intel Xeon Gold 6248R"])
def test_it_does_not_fall_back_to_quick_when_the_processor_differs(family):
    # Quick restores the saved state on the other node's processor: what stops Live stops Quick (and
    # processor compatibility never bridges Intel and AMD).
    n2 = replace(N2, processor_family=family)
    result = assess(proposal(vm=CSV_VM, source=N1, destination=n2, kind=None))
    assert not result.allowed
    assert [f.rule for f in result.findings if f.severity == "block"] == ["processor-incompatible"]


def test_the_planner_and_the_simulator_agree_on_vendors():
    from fabric.hyperv.api import HyperVError, MoveRequest
    from fabric.sim.simulator import Fabric
    from fabric.sim.world import SimCluster, SimHost, SimVm

    fabric = Fabric()
    fabric.add_cluster(SimCluster("CL", "cl.test", 11))
    fabric.add_host(SimHost("n1.test", "n1", "127.0.0.1", cluster="CL"))
    fabric.add_host(SimHost("n2.test", "n2", "127.0.0.2", cluster="CL", processor_family="AMD EPYC 7763"))
    vm = fabric.add_vm(
        SimVm(
            "v1",
            "v1",
            "n1.test",
            config_path="C:\\ClusterStorage\\Volume1\\v1",
            is_clustered=True,
            processor_compat=True,
        )
    )
    for kind in ("live", "quick"):
        with pytest.raises(HyperVError) as info:
            fabric.start_migration(MoveRequest(vm.id, "n1.test", "n2.test", kind))
        assert info.value.code == "21502" and "different vendors" in info.value.message
    n1 = replace(N1, processor_family="Intel Xeon Gold 6338")
    amd = replace(N2, processor_family="AMD EPYC 7763")
    assert not assess(
        proposal(vm=replace(CSV_VM, processor_compatibility=True), source=n1, destination=amd, kind=None)
    ).allowed


def test_it_does_not_fall_back_to_quick_for_other_processor_features():
    # A saved state resumes only where the processor features match: Quick needs processor
    # compatibility as much as Live does (Microsoft, "Processor compatibility mode in Hyper-V").
    n2 = replace(N2, processor_family="Intel Xeon Platinum 8380 (Ice Lake)")
    result = assess(proposal(vm=CSV_VM, source=N1, destination=n2, kind=None))
    assert result.transfer_type == Kind.LIVE
    assert not result.allowed
    assert "processor-incompatible" in {f.rule for f in result.findings}


def test_it_does_not_fall_back_to_quick_across_clusters():
    o1 = replace(O1_ON_SHARE, processor_family="AMD EPYC 7763")
    vm = replace(CSV_VM, config_path=SHARE + "\\db", disks=())
    result = assess(proposal(vm=vm, source=N1, destination=o1, kind=None))
    assert result.transfer_type == Kind.LIVE and not result.allowed
    assert result.rating == 0


def test_it_blocks_with_a_reason_when_no_kind_fits():
    result = assess(proposal(source=S1, destination=S1, kind=None))
    assert result.transfer_type is None and not result.allowed
    assert result.findings[0].rule == "no-transfer-type"
    assert result.rating == 0 and "own host" in result.rating_reason


def test_it_reports_the_preflight_json():
    data = assess(proposal(kind=None)).as_json()
    assert data == {
        "vm": "web01",
        "destination": "hv-s2.contoso.test",
        "transfer_type": "live",
        "allowed": True,
        "rating": data["rating"],
        "findings": [],
    }
    assert 0.5 <= data["rating"] <= 5 and data["rating"] * 2 == int(data["rating"] * 2)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (replace(S2, memory_available_bytes=200 * GIB, cpu_load_percent=0), 5.0),
        (replace(S2, memory_available_bytes=200 * GIB, cpu_load_percent=100, live_in_use=2), 2.5),
        (replace(S2, memory_available_bytes=9 * GIB, cpu_load_percent=50, live_in_use=1), 1.5),
        (
            replace(S2, memory_available_bytes=8 * GIB, cpu_load_percent=100, live_in_use=2),
            0.5,
        ),  # never 0 unless blocked
    ],
)
def test_it_rates_in_half_stars(host, expected):
    stars, reason = rating(VM, host, [])
    assert stars == expected
    assert "memory free" in reason


def test_more_free_memory_rates_higher():
    low = assess(proposal(destination=replace(S2, memory_available_bytes=20 * GIB), kind=None))
    high = assess(proposal(destination=replace(S2, memory_available_bytes=120 * GIB), kind=None))
    assert high.rating > low.rating


def test_an_evacuation_does_not_send_a_running_vm_to_the_other_vendor():
    from migrations_ui.planning.placement import PlanOptions, place_evacuation

    amd = replace(N2, processor_family="AMD EPYC 7763")
    intel = replace(N2, fqdn="n3.contoso.test", name="n3", processor_family="Intel Xeon Gold 6338")
    vm = replace(CSV_VM, processor_compatibility=True)

    placed, left = place_evacuation(N1, [vm], [amd], {}, PlanOptions())
    assert not placed and "different vendors" in str(left[0].reason)

    placed, _ = place_evacuation(N1, [vm], [amd, intel], {}, PlanOptions())
    assert [p.destination.name for p in placed] == ["n3"]


def test_an_ha_vm_ranks_its_own_cluster_first_then_its_storage_then_the_rest():
    from migrations_ui.preflight.transfer import ELSEWHERE, SAME_CLUSTER, SAME_STORAGE

    on_share = replace(CSV_VM, config_path=SHARE + "\\db", disks=(DiskFacts(SHARE + "\\db\\db.vhdx"),))
    busy_node = replace(N2, memory_available_bytes=100 * GIB, cpu_load_percent=30)
    roomy = {"memory_available_bytes": 250 * GIB, "cpu_load_percent": 0}
    node = assess(proposal(vm=on_share, source=N1, destination=busy_node, kind=None))
    reaches = assess(proposal(vm=on_share, source=N1, destination=replace(S2, **roomy), kind=None))
    copies = assess(proposal(vm=on_share, source=N1, destination=replace(LOCAL, **roomy), kind=None))

    assert (node.transfer_type, reaches.transfer_type, copies.transfer_type) == ("live", "live", "live_vsm")
    assert (node.preference, reaches.preference, copies.preference) == (SAME_CLUSTER, SAME_STORAGE, ELSEWHERE)
    # Leaving the cluster drops high availability: an emptier standalone host does not outrate a node.
    assert reaches.rating == copies.rating == 3.0 < node.rating
    assert "it leaves its cluster: at most 3 stars" in copies.rating_reason


def test_a_plain_vm_rates_a_host_that_copies_its_files_below_one_that_reaches_them():
    from migrations_ui.preflight.transfer import ELSEWHERE, SAME_STORAGE

    roomy = {"memory_available_bytes": 250 * GIB, "cpu_load_percent": 0}
    reaches = assess(proposal(destination=replace(S2, **roomy), kind=None))
    copies = assess(proposal(destination=replace(LOCAL, **roomy), kind=None))

    assert (reaches.preference, copies.preference) == (SAME_STORAGE, ELSEWHERE)
    assert (reaches.rating, copies.rating) == (5.0, 4.0)
    assert "its files are copied: at most 4 stars" in copies.rating_reason
