import pytest

from fabric.hyperv.api import HyperVError, MoveRequest
from fabric.sim.demo import INJECTION_NAME, SHARE_FQDN, SHARE_SHORT, build_demo_fabric, host_connections
from fabric.sim.world import GIB, is_csv_path

D = ".contoso.test"


@pytest.fixture(scope="module")
def demo():
    return build_demo_fabric()


def fresh_vm(name):
    fabric = build_demo_fabric()
    return fabric, fabric.vm_by_name(name)


def attempt(name, destination, kind="live", **kw):
    fabric, vm = fresh_vm(name)
    return fabric, fabric.start_migration(MoveRequest(vm.id, vm.host, destination + D, kind, **kw))


def refused(name, destination, kind="live", **kw) -> HyperVError:
    with pytest.raises(HyperVError) as info:
        attempt(name, destination, kind, **kw)
    return info.value


def test_it_has_two_shares_on_one_file_server_one_registered_by_short_name(demo):
    shares = {s.unc_path: s for s in demo.shares.values()}

    assert set(shares) == {"\\\\fs01.contoso.test\\vms", "\\\\fs01\\vmstore2"}
    assert {s.file_server_fqdn for s in shares.values()} == {"fs01.contoso.test"}
    assert shares[SHARE_SHORT].file_server == "fs01"
    assert [v.name for v in demo.vms.values() if v.config_path.startswith(SHARE_SHORT)]


def test_it_has_an_older_and_a_newer_cluster(demo):
    old, new = demo.clusters["CL-OLD"], demo.clusters["CL-NEW"]

    assert old.functional_level < new.functional_level
    assert 2 <= len(old.nodes) <= 3 and 2 <= len(new.nodes) <= 3
    assert 1 in {old.max_parallel_migrations, new.max_parallel_migrations}
    assert {demo.hosts[n].os_version for n in old.nodes} == {"Windows Server 2019 Datacenter"}
    assert {demo.hosts[n].os_version for n in new.nodes} == {"Windows Server 2022 Datacenter"}
    old_vms = [v for v in demo.vms.values() if demo.hosts[v.host].cluster == "CL-OLD"]
    new_vms = [v for v in demo.vms.values() if demo.hosts[v.host].cluster == "CL-NEW" and not v.compat_vector_stale]
    assert {v.config_version for v in old_vms} == {"9.0"}
    assert {v.config_version for v in new_vms} == {"10.0"}
    for vm in old_vms + new_vms:
        assert vm.is_clustered
        assert is_csv_path(vm.config_path) or vm.config_path.startswith(SHARE_FQDN)
    for cluster in (old, new):
        assert any(SHARE_FQDN in demo.hosts[n].shares for n in cluster.nodes)


def test_it_allows_a_cross_cluster_live_move_with_shared_storage():
    fabric, migration_id = attempt("erp-web01", "hv-new1")
    fabric.advance(600)
    vm = fabric.vm_by_name("erp-web01")

    assert fabric.migrations[migration_id].state == "completed"
    assert vm.host == "hv-new1" + D
    assert vm.is_clustered  # re-added to CL-NEW
    assert vm.compat_vector_stale  # came from the older cluster


def test_it_has_three_standalone_hosts_two_on_the_share_one_local(demo):
    s1, s2, s3 = (demo.hosts[f"hv-s{i}{D}"] for i in (1, 2, 3))

    assert not (s1.cluster or s2.cluster or s3.cluster)
    assert SHARE_FQDN in s1.shares and SHARE_FQDN in s2.shares
    assert s3.shares == [] and s3.vm_path == "D:\\Hyper-V"
    for host in (s1, s2):
        assert any(v.config_path.startswith(SHARE_FQDN) for v in demo.vms.values() if v.host == host.fqdn)
    options = [h.performance_option for h in demo.hosts.values()]
    assert len(set(options)) == 2
    assert min(options.count(o) for o in set(options)) == 1


def test_it_has_a_standalone_host_without_the_failover_clusters_module(demo):
    without = [h for h in demo.hosts.values() if not h.failover_clustering_installed]

    assert [h.name for h in without] == ["hv-s4"]
    assert not without[0].cluster
    assert [v.name for v in demo.vms.values() if v.host == without[0].fqdn] == ["ops-s401"]
    assert all(demo.hosts[n].failover_clustering_installed for c in demo.clusters.values() for n in c.nodes)


def test_it_has_at_least_forty_varied_vms(demo):
    vms = list(demo.vms.values())

    assert len(vms) >= 40
    assert all(1 * GIB <= v.memory_bytes <= 64 * GIB for v in vms)
    assert {"off", "saved"} <= {v.state for v in vms}
    assert len({v.dirty_rate_mbps for v in vms}) > 20
    assert len({v.id for v in vms}) == len(vms)
    assert all(h.memory_available_bytes >= 0 for h in demo.hosts.values())


def test_it_has_a_guest_cluster_sharing_one_vhdx(demo):
    fc1, fc2 = demo.vm_by_name("sql-fc1"), demo.vm_by_name("sql-fc2")
    shared1 = [d for d in fc1.disks if d.shared]
    shared2 = [d for d in fc2.disks if d.shared]

    assert len(shared1) == len(shared2) == 1
    assert shared1[0].path == shared2[0].path
    assert sorted(shared1[0].attached) == sorted([fc1.id, fc2.id])
    assert refused("sql-fc1", "hv-s1", kind="storage", storage_path="D:\\VMs\\sql-fc1").code == "OperationFailed"


def test_it_has_a_vm_with_the_old_compatibility_vector_in_the_new_cluster(demo):
    vm = demo.vm_by_name("erp-app01")

    assert vm.compat_vector_stale
    assert demo.hosts[vm.host].cluster == "CL-NEW"
    assert refused("erp-app01", "hv-new2").code == "21502"


def test_it_has_a_vm_whose_name_is_an_injection_attempt(demo):
    vm = demo.vm_by_name(INJECTION_NAME)

    assert all(part in vm.name for part in ("'", '"', "$(", ";"))
    fabric, migration_id = attempt(INJECTION_NAME, "hv-s2")
    assert [r["params"]["Name"] for r in fabric.record if r.get("migration_id") == migration_id] == [INJECTION_NAME]


def test_it_has_real_cases_for_the_refusals():
    assert refused("legacy-fax", "hv-new1").code == "33012"  # no vSwitch-Legacy in CL-NEW
    assert refused("web-dmz01", "hv-s3", kind="live_vsm").code == "10698"  # WS2019 cannot run 10.0
    assert refused("analytics01", "hv-s3", kind="live_vsm").code == "0x800705AA"
    assert refused("dev-s01", "hv-s2").code == "InvalidState"  # off
    assert refused("erp-db01", "hv-new1").code == "OperationFailed"  # CSV of another cluster
    fabric, _ = attempt("sql-prod01", "hv-new2")
    vm = fabric.vm_by_name("k8s-node02")
    with pytest.raises(HyperVError) as info:  # CL-NEW: MaximumParallelMigrations = 1
        fabric.start_migration(MoveRequest(vm.id, vm.host, "hv-new1" + D, "live"))
    assert info.value.code == "21501"


def test_it_serves_every_host_on_a_loopback_address(demo):
    connections = host_connections(demo)

    assert len(connections) == len(demo.hosts) == 9
    assert sorted(c.address for c in connections) == [f"127.0.0.{n}" for n in range(11, 20)]
    assert {(c.port, c.transport) for c in connections} == {(5985, "http")}
    assert all(c.fqdn.endswith(D) for c in connections)


def test_it_builds_the_same_world_for_a_seed():
    assert build_demo_fabric(seed=3).to_dict() == build_demo_fabric(seed=3).to_dict()
    assert build_demo_fabric(seed=3).to_dict() != build_demo_fabric(seed=4).to_dict()
    assert (
        build_demo_fabric(hosts=10, vms=300, seed=3).to_dict() == build_demo_fabric(hosts=10, vms=300, seed=3).to_dict()
    )


def test_it_generates_a_large_fabric():
    # How fast: bench/fabric.py.
    fabric = build_demo_fabric(hosts=100, vms=20_000)

    assert len(fabric.hosts) == 100
    assert len(fabric.vms) == 20_000
    assert fabric.clusters
    assert len({h.address for h in fabric.hosts.values()}) == 100
    assert all(h.memory_available_bytes > 0 for h in fabric.hosts.values())
    per_host = [sum(1 for v in fabric.vms.values() if v.host == h) for h in list(fabric.hosts)[:5]]
    assert per_host == [200] * 5
