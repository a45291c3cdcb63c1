import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from audit.models import AuditEvent
from fabric.models import Cluster, Host, StorageLocation

pytestmark = pytest.mark.django_db


def drift_hosts():
    out = io.StringIO()
    call_command("drift", "--json", stdout=out)
    return {row["host"] for row in json.loads(out.getvalue())["hosts"]}


def test_an_administrator_sets_a_whole_cluster_and_the_host_reads_back(admin_client, demo_fabric):
    nodes = list(Host.objects.filter(cluster__name="CL-OLD").order_by("fqdn"))
    url = reverse("fabric:cluster_settings", args=["CL-OLD"])
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        url,
        {
            "hosts": [h.fqdn for h in nodes],
            "performance_option": "smb",
            "max_live_migrations": 2,
            "max_storage_migrations": 2,
        },
    )

    assert response.status_code == 200
    assert [r.ok for r in response.context["results"]] == [True] * len(nodes)
    with demo_fabric.session() as fabric:
        for node in nodes:
            simulated = fabric.hosts[node.fqdn]
            assert (simulated.performance_option, simulated.max_live_migrations) == ("smb", 2)
    assert set(Host.objects.filter(cluster__name="CL-OLD").values_list("performance_option", flat=True)) == {"smb"}
    changed = AuditEvent.objects.filter(action="host.settings_changed")
    assert changed.count() == len(nodes)
    assert changed.first().details["before"]["performance_option"] == "compression"
    assert changed.first().details["after"]["performance_option"] == "smb"


@pytest.mark.parametrize("field", ["max_live_migrations", "max_storage_migrations"])
def test_a_limit_of_0_is_refused_at_its_field_and_no_host_is_asked(admin_client, demo_fabric, field):
    # Hyper-V refuses a limit below 1; the form used to pass 0 on and show the host's raw error.
    host = Host.objects.get(name="hv-s1")
    response = admin_client.post(reverse("fabric:host_settings", args=[host.fqdn]), {"hosts": [host.fqdn], field: 0})

    assert response.status_code == 400
    assert response.context["form"].errors[field] == [
        "At least 1: Hyper-V refuses 0 (to stop migrations to and from a host, disable live migration)."
    ]
    body = response.content.decode()
    field_html = body[body.index(f'name="{field}"') :]
    assert field_html.index("At least 1: Hyper-V refuses 0") < field_html.index("</dd>")  # at the field
    assert "results" not in response.context
    assert Host.objects.get(pk=host.pk).max_live_migrations == 2
    assert not AuditEvent.objects.filter(action__startswith="host.settings").exists()


def test_the_result_table_reads_as_the_page_does_and_marks_only_changes(admin_client, demo_fabric):
    host = Host.objects.get(name="hv-s1")
    response = admin_client.post(
        reverse("fabric:host_settings", args=[host.fqdn]), {"hosts": [host.fqdn], "performance_option": "smb"}
    )
    body = response.content.decode()
    table = body[body.index("Result, as read back") : body.index("</table>", body.index("Result, as read back"))]
    assert "Compression → SMB" in table  # not "compression → smb"
    assert "tcpip" not in table and "compression →" not in table
    assert table.count("→") == 1  # "yes → yes" and the like are gone: only what changed
    assert "Kerberos" in table or "CredSSP" in table


def test_fixing_the_odd_host_clears_its_drift_flag(admin_client, demo_fabric):
    assert "hv-s3.contoso.test" in drift_hosts()
    admin_client.post(
        reverse("fabric:host_settings", args=["hv-s3.contoso.test"]),
        {"hosts": ["hv-s3.contoso.test"], "performance_option": "compression"},
    )
    assert "hv-s3.contoso.test" not in drift_hosts()


@pytest.mark.parametrize("persona", ["viewer_client", "operator_client"])
def test_only_administrators_open_the_page(request, demo_fabric, persona):
    client = request.getfixturevalue(persona)
    url = reverse("fabric:host_settings", args=["hv-s1.contoso.test"])
    assert client.get(url).status_code == 403
    data = {"hosts": ["hv-s1.contoso.test"], "max_live_migrations": 4}
    assert client.post(reverse("fabric:settings"), data).status_code == 403
    assert Host.objects.get(name="hv-s1").max_live_migrations == 2


def test_nothing_chosen_is_a_clear_error(admin_client, demo_fabric):
    response = admin_client.post(reverse("fabric:settings"), {"hosts": ["hv-s1.contoso.test"]})
    assert response.status_code == 400 and "Choose at least one setting" in response.content.decode()


def recorded(store):
    with store.session() as fabric:
        return list(fabric.record)


def run_cli(*args):
    out = io.StringIO()
    try:
        call_command("host_settings", *args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), ""


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("add_networks", "10.40.0.1/24", "has host bits set: the subnet is 10.40.0.0/24"),
        ("add_networks", "10.40.0.0", "CIDR form"),
        ("add_networks", "10.400.0.0/24", "not a valid IPv4 or IPv6 subnet"),
        ("vm_path", "Hyper-V\\VMs", "relative path"),
        ("vhd_path", "\\\\fs01\\vmstore2\\disks", "\\\\fs01.contoso.test\\vmstore2\\disks"),
        ("add_location", "\\\\10.0.0.5\\vms", "without its FQDN"),
    ],
)
def test_it_refuses_a_bad_value_before_asking_any_host(admin_client, demo_fabric, field, value, message):
    before = recorded(demo_fabric)

    response = admin_client.post(reverse("fabric:settings"), {"hosts": ["hv-s1.contoso.test"], field: value})

    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert recorded(demo_fabric) == before  # no host was asked anything
    assert not AuditEvent.objects.filter(action__startswith="host.").exists()
    assert not StorageLocation.objects.filter(added_by_user=True).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hv-s1", "--set", "performance=fast"], "expected one of tcpip|compression|smb"),
        (["hv-s1", "--set", "live_migrations=-1"], "expected a whole number"),
        (["hv-s1", "--set", "auth=ntlm", "live_migrations=3"], "expected one of kerberos|credssp"),
        (["hv-s1", "--set", "speed=3"], "unknown setting"),
        (["hv-s1", "--set", "enabled"], "write key=value"),
        (["hv-s1", "--set", "cluster_parallel=2"], "needs --cluster"),
        (["--cluster", "CL-NOPE", "--set", "live_migrations=3"], "no cluster of that name"),
        (["hv-nope", "--json"], "no host named"),
        (["--json"], "name one host"),
    ],
)
def test_the_command_refuses_bad_usage_with_exit_2_and_changes_nothing(admin_user, demo_fabric, args, message):
    before = recorded(demo_fabric)

    code, _, error = run_cli(*args)

    assert (code, message in error) == (2, True), error
    assert recorded(demo_fabric) == before
    assert not AuditEvent.objects.filter(action__startswith="host.").exists()


def test_the_simulator_driver_round_trips_networks_folders_and_the_cluster_cap(admin_client, demo_fabric):
    nodes = list(Host.objects.filter(cluster__name="CL-NEW").order_by("fqdn"))
    response = admin_client.post(
        reverse("fabric:cluster_settings", args=["CL-NEW"]),
        {
            "hosts": [h.fqdn for h in nodes],
            "cluster_max_parallel": 3,
            "add_networks": "10.60.0.0/24",
            "vm_path": "C:\\ClusterStorage\\Volume2\\VMs",
        },
    )

    assert response.context["cluster_result"].after == 3
    assert all(r.ok for r in response.context["results"])
    with demo_fabric.session() as fabric:
        assert fabric.clusters["CL-NEW"].max_parallel_migrations == 3
        for node in nodes:
            assert fabric.hosts[node.fqdn].migration_networks[-1] == "10.60.0.0/24"
            assert fabric.hosts[node.fqdn].vm_path == "C:\\ClusterStorage\\Volume2\\VMs"
    for node in Host.objects.filter(cluster__name="CL-NEW"):
        assert node.effective_max_live_migrations == 3 and "10.60.0.0/24" in node.migration_networks
        assert node.storage_locations.get(path="C:\\ClusterStorage\\Volume2\\VMs").is_default
    assert AuditEvent.objects.get(action="cluster.settings_changed").details["after"] == {"max_parallel_migrations": 3}


def test_a_cluster_without_maximum_parallel_migrations_offers_no_cap_to_set(admin_client, demo_fabric):
    # CL-OLD is a WS2019 cluster: no such property, no cluster cap; its nodes work to their own limit.
    cluster = Cluster.objects.get(name="CL-OLD")
    assert cluster.max_parallel_migrations is None
    assert {h.effective_max_live_migrations for h in cluster.nodes.all()} == {2}
    response = admin_client.get(reverse("fabric:cluster_settings", args=["CL-OLD"]))
    assert "cluster_max_parallel" not in response.context["form"].fields
    assert "none (no cluster cap)" in response.content.decode()


def test_a_host_s_default_folder_is_not_offered_for_removal(admin_client, demo_fabric):
    host = Host.objects.get(name="hv-s3")
    response = admin_client.post(
        reverse("fabric:host_settings", args=[host.fqdn]), {"hosts": [host.fqdn], "remove_locations": [host.vm_path]}
    )

    assert response.status_code == 400 and "not one of the available choices" in response.content.decode()
    assert host.storage_locations.filter(path=host.vm_path, is_default=True).exists()
