import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import AuditEvent
from fabric.models import Host

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


def test_a_refused_change_shows_hyperv_s_message_and_changes_nothing(admin_client, demo_fabric):
    host = Host.objects.get(name="hv-s1")
    response = admin_client.post(
        reverse("fabric:host_settings", args=[host.fqdn]), {"hosts": [host.fqdn], "max_live_migrations": 0}
    )

    result = response.context["results"][0]
    assert result.ok is False and result.error
    assert Host.objects.get(pk=host.pk).max_live_migrations == 2
    assert AuditEvent.objects.filter(action="host.settings_refused", outcome="failure").exists()
    assert not AuditEvent.objects.filter(action="host.settings_changed").exists()


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
