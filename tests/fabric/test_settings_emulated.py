"""Live-migration settings through the real path: the settings page and the host_settings command drive
the pypsrp driver, over WinRM, against the Hyper-V host emulator; the emulated hosts' world is checked."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from fabric.driver import get_driver
from fabric.hyperv.api import HostSettings, HyperVError
from fabric.hyperv.powershell import SET_CLUSTER_PARALLEL_MIGRATIONS
from fabric.models import Cluster, Host, StorageLocation
from fabric.sync import connection_for, sync_inventory
from tests.fabric.conftest import open_pool
from tests.fabric.hyperv.test_embedded_psrp import psrp_settings  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db
D = ".contoso.test"
NEW_NODES = ["hv-new1" + D, "hv-new2" + D, "hv-new3" + D]


@pytest.fixture
def synced(psrp_settings):  # noqa: F811
    report = sync_inventory(get_driver())
    assert len(report.synced) == 9
    return report


def world_host(store, fqdn):
    with store.session() as fabric:
        return fabric.hosts[fqdn]


def world_cap(store, name):
    with store.session() as fabric:
        return fabric.clusters[name].max_parallel_migrations


def commands(store):
    with store.session() as fabric:
        return [(r["cmdlet"], r["params"], r.get("result")) for r in fabric.record]


def drift_hosts():
    out = io.StringIO()
    call_command("drift", "--json", stdout=out)
    return {row["host"] for row in json.loads(out.getvalue())["hosts"]}


def test_it_round_trips_networks_and_default_folders_through_the_emulator(admin_client, synced, emu_store):
    fqdn = "hv-s1" + D
    url = reverse("fabric:host_settings", args=[fqdn])

    response = admin_client.post(
        url,
        {
            "hosts": [fqdn],
            "use_any_network": "false",
            "add_networks": "10.40.0.0/24, 10.50.0.0/16",
            "remove_networks": ["10.10.0.0/24"],
            "vm_path": "E:\\Hyper-V\\VMs",
            "vhd_path": "\\\\fs01.contoso.test\\vms\\Disks",
            "add_location": "F:\\Fast",
        },
    )

    assert response.status_code == 200
    result = response.context["results"][0]
    assert result.ok, result.error
    shown = response.content.decode().split('id="current-values"')[1]
    assert "10.40.0.0/24, 10.50.0.0/16" in shown and "F:\\Fast" in shown  # the page shows what was read back
    simulated = world_host(emu_store, fqdn)
    assert simulated.migration_networks == ["10.40.0.0/24", "10.50.0.0/16"]
    assert (simulated.vm_path, simulated.vhd_path) == ("E:\\Hyper-V\\VMs", "\\\\fs01.contoso.test\\vms\\Disks")
    host = Host.objects.get(fqdn=fqdn)  # the inventory holds what the host read back
    assert host.migration_networks == ["10.40.0.0/24", "10.50.0.0/16"] and host.use_any_network is False
    assert host.vm_path == "E:\\Hyper-V\\VMs"
    locations = dict(StorageLocation.objects.filter(host=host).values_list("path", "is_default"))
    assert locations["E:\\Hyper-V\\VMs"] is True and locations["F:\\Fast"] is False
    sent = [(c, p) for c, p, _ in commands(emu_store)[-4:]]
    assert ("Remove-VMMigrationNetwork", {"Subnet": "10.10.0.0/24"}) in sent
    assert ("Add-VMMigrationNetwork", {"Subnet": "10.50.0.0/16"}) in sent
    changed = AuditEvent.objects.get(action="host.settings_changed", target_name="hv-s1")
    assert changed.details["before"]["migration_networks"] == ["10.10.0.0/24"]
    assert changed.details["after"]["vhd_path"] == "\\\\fs01.contoso.test\\vms\\Disks"
    assert AuditEvent.objects.filter(action="host.storage_location_added", details__path="F:\\Fast").exists()

    # Removing the location again, and letting the host use any network.
    admin_client.post(url, {"hosts": [fqdn], "use_any_network": "true", "remove_locations": ["F:\\Fast"]})
    assert world_host(emu_store, fqdn).use_any_network is True
    assert not StorageLocation.objects.filter(host=host, path="F:\\Fast").exists()
    assert AuditEvent.objects.filter(action="host.storage_location_removed").count() == 1


def test_it_sets_a_cluster_s_parallel_migrations_through_the_known_script(admin_client, synced, emulator, emu_store):
    url = reverse("fabric:cluster_settings", args=["CL-NEW"])
    page = admin_client.get(url).content.decode()
    assert "Which one wins" in page and "capped by the cluster" in page

    response = admin_client.post(url, {"hosts": NEW_NODES, "cluster_max_parallel": 3})

    assert response.context["cluster_result"].ok
    assert world_cap(emu_store, "CL-NEW") == 3 and Cluster.objects.get(name="CL-NEW").max_parallel_migrations == 3
    script, params, result = commands(emu_store)[-1]
    assert script == "Set-ClusterMaximumParallelMigrations (script)"
    assert params == {"Cluster": "CL-NEW", "Value": 3} and result is None
    event = AuditEvent.objects.get(action="cluster.settings_changed")
    assert event.details["before"] == {"max_parallel_migrations": 1}
    assert event.details["after"] == {"max_parallel_migrations": 3}

    # Any other script text is refused by the host, even one that would do the same thing.
    with open_pool(emulator, "hv-new1" + D) as pool:
        from pypsrp.powershell import PowerShell

        ps = PowerShell(pool)
        ps.add_script("(Get-Cluster -Name CL-NEW).MaximumParallelMigrations = 5")
        ps.invoke()
        assert ps.had_errors
        assert "script text is refused" in str(ps.streams.error[0])
        known = PowerShell(pool)
        known.add_script(SET_CLUSTER_PARALLEL_MIGRATIONS)
        known.add_parameter("Cluster", "CL-NEW'; Remove-VM *")
        known.add_parameter("Value", 4)
        known.invoke()
        assert "was not found" in str(known.streams.error[0])  # the name stays a literal name
    assert world_cap(emu_store, "CL-NEW") == 3


def test_the_cluster_itself_refuses_a_limit_of_0_with_its_message(admin_client, synced, emu_store):
    # The form stops 0 first (tests/fabric/test_host_settings.py); what the cluster answers is shown
    # as it comes, for a case the form could not foresee.
    from fabric.host_settings import apply_cluster_cap

    result = apply_cluster_cap(get_driver(), Cluster.objects.get(name="CL-NEW"), 0)
    assert result.ok is False
    assert "Unable to save property changes for 'CL-NEW'. The parameter is incorrect" in result.error
    assert "0x80070057" in result.error
    assert world_cap(emu_store, "CL-NEW") == 1 and Cluster.objects.get(name="CL-NEW").max_parallel_migrations == 1
    assert AuditEvent.objects.filter(action="cluster.settings_refused", outcome="failure").count() == 1
    assert not AuditEvent.objects.filter(action="cluster.settings_changed").exists()


def test_it_shows_a_limit_the_host_rejects_with_hyper_v_s_message(admin_client, synced, emu_store):
    from fabric.host_settings import apply_settings

    fqdn = "hv-s2" + D
    [result] = apply_settings(get_driver(), [Host.objects.get(fqdn=fqdn)], HostSettings(max_storage_migrations=0))

    assert result.ok is False
    assert "Cannot validate argument on parameter 'MaximumStorageMigrations'" in result.error
    assert world_host(emu_store, fqdn).max_storage_migrations == 2
    assert Host.objects.get(fqdn=fqdn).max_storage_migrations == 2
    assert not AuditEvent.objects.filter(action="host.settings_changed").exists()
    assert AuditEvent.objects.get(action="host.settings_refused").details["asked"] == {"max_storage_migrations": 0}

    # The emulated host itself refuses what the console would have stopped first: a subnet with host bits.
    conn, bad = connection_for(Host.objects.get(fqdn=fqdn)), HostSettings(add_networks=("10.9.9.9/24",))
    with pytest.raises(HyperVError) as refused:
        get_driver().set_host_settings(conn, bad)
    assert refused.value.code == "InvalidParameter" and "has host bits set" in refused.value.message
    assert world_host(emu_store, fqdn).migration_networks == ["10.10.0.0/24"]


def test_it_flags_a_node_changed_on_the_host_after_the_next_sync(synced, emu_store):
    old_nodes = {"hv-old1" + D, "hv-old2" + D}
    assert not drift_hosts() & old_nodes
    with emu_store.session() as fabric:  # someone changes one node by hand, on the host
        fabric.set_host_settings("hv-old2" + D, auth_type="credssp")

    sync_inventory(get_driver())

    out = io.StringIO()
    call_command("drift", "--json", stdout=out)
    rows = {row["host"]: row["reasons"] for row in json.loads(out.getvalue())["hosts"]}
    assert old_nodes <= set(rows)
    assert "nodes of CL-OLD differ in authentication: Kerberos on 1, CredSSP on 1" in rows["hv-old1" + D]


def test_done_when_the_flags_clear_after_one_action_on_the_whole_cluster(admin_client, viewer_user, synced, emu_store):
    flagged = drift_hosts()
    assert "hv-s3" + D in flagged  # the host with the odd performance option
    assert set(NEW_NODES) <= flagged  # the cluster capped at 1 while its nodes say 2

    response = admin_client.post(
        reverse("fabric:cluster_settings", args=["CL-NEW"]),
        {
            "hosts": NEW_NODES,
            "performance_option": "smb",
            "max_live_migrations": 2,
            "max_storage_migrations": 2,
            "cluster_max_parallel": 2,
        },
    )

    assert response.context["cluster_result"].ok
    assert [r.ok for r in response.context["results"]] == [True, True, True]
    driver = get_driver()
    for node in Host.objects.filter(fqdn__in=NEW_NODES):  # the emulated hosts report the new values
        inventory = driver.inventory(connection_for(node))
        assert (inventory.host.performance_option, inventory.host.max_live_migrations) == ("smb", 2)
        assert inventory.host.max_storage_migrations == 2 and inventory.cluster.max_parallel_migrations == 2
    assert not drift_hosts() & set(NEW_NODES)
    assert "hv-s3" + D in drift_hosts()  # untouched: still the odd one
    assert AuditEvent.objects.filter(action="host.settings_changed").count() == 3

    viewer = Client()
    viewer.force_login(viewer_user)
    assert viewer.get(reverse("fabric:cluster_settings", args=["CL-NEW"])).status_code == 403
    assert (
        viewer.post(reverse("fabric:cluster_settings", args=["CL-NEW"]), {"cluster_max_parallel": 5}).status_code == 403
    )
    assert world_cap(emu_store, "CL-NEW") == 2


def run_cli(*args):
    out = io.StringIO()
    try:
        call_command("host_settings", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


def test_the_command_sets_a_cluster_and_prints_what_the_hosts_read_back(admin_user, synced, emu_store):
    code, out, _ = run_cli(
        "--cluster", "CL-NEW", "--set", "performance=smb", "live_migrations=3", "cluster_parallel=2", "--json"
    )

    assert code == 0
    data = json.loads(out)
    assert data["cluster"] == {"name": "CL-NEW", "max_parallel_migrations": 2}
    assert [(r["host"], r["performance"], r["live_migrations"]) for r in data["hosts"]] == [
        (fqdn, "smb", 3) for fqdn in NEW_NODES
    ]
    assert {r["effective_live_migrations"] for r in data["hosts"]} == {2}  # the cluster's value wins
    assert world_host(emu_store, NEW_NODES[0]).performance_option == "smb" and world_cap(emu_store, "CL-NEW") == 2
    events = AuditEvent.objects.filter(action="host.settings_changed")
    assert events.count() == 3 and {e.username for e in events} == {"admin"}

    code, out, _ = run_cli("hv-new2", "--json")  # a read asks the host, changes nothing
    assert code == 0 and json.loads(out)["hosts"][0]["performance"] == "smb"


def test_the_command_reports_a_refusal_with_exit_1(admin_user, synced, emu_store):
    code, out, _ = run_cli("hv-s1", "--set", "live_migrations=0", "--json")

    assert code == 1
    row = json.loads(out)["hosts"][0]
    assert row["ok"] is False and "less than the minimum allowed range of 1" in row["error"]
    assert row["live_migrations"] == 2 and world_host(emu_store, "hv-s1" + D).max_live_migrations == 2


def test_the_command_refuses_a_viewer(viewer_user, synced, emu_store):
    code, _, error = run_cli("hv-s1", "--set", "live_migrations=3", "--user", viewer_user.username)

    assert code == 2 and "does not allow it" in error
    assert world_host(emu_store, "hv-s1" + D).max_live_migrations == 2
