"""Move timeouts per host and per cluster: seen by every role, changed by operators and administrators,
audited; bad input is answered at its field and changes nothing."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from fabric.models import Host
from fabric.move_timeouts import CLUSTER, DEFAULT, HOST, effective, limits, retries_with_compression
from tests.fabric.factories import make_cluster, make_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return make_host("hv-t1", cluster=make_cluster("CL-T"))


def test_a_host_inherits_its_clusters_values_else_the_default(node, settings):
    settings.MOVE_STALL_TIMEOUT_S, settings.MOVE_TIMEOUT_S_PER_GIB = 150, 800
    assert limits(node) == (150, 800) and effective(node, "move_stall_timeout_s").source == DEFAULT
    node.cluster.move_timeout_s_per_gib = 300
    node.move_stall_timeout_s = 0  # this host: never for a stall
    assert limits(node) == (0, 300)
    assert [effective(node, f).source for f in ("move_stall_timeout_s", "move_timeout_s_per_gib")] == [HOST, CLUSTER]


def test_an_operator_sets_a_hosts_timeouts_and_the_change_is_audited(node, operator_client):
    url = reverse("fabric:host_timeouts", args=[node.fqdn])
    page = operator_client.get(url).content.decode()
    assert "150 s" in page and "800 s" in page and "console default" in page and "<form" in page

    response = operator_client.post(url, {"move_stall_timeout_s": "60", "move_timeout_s_per_gib": ""})

    assert response.status_code == 302 and response["Location"] == url
    node.refresh_from_db()
    assert (node.move_stall_timeout_s, node.move_timeout_s_per_gib) == (60, None)
    event = AuditEvent.objects.get(action="host.move_timeouts_changed")
    assert event.username == "operator" and event.target_name == node.name
    assert event.details["before"]["move_stall_timeout_s"] is None
    assert event.details["after"] == {
        "move_stall_timeout_s": 60,
        "move_timeout_s_per_gib": None,
        "move_timeout_retry_compression": None,
    }
    host_page = operator_client.get(node.get_absolute_url()).content.decode()
    assert "no progress for 60 s" in host_page and "800 s per GiB" in host_page

    # Saving the same values again changes and records nothing.
    operator_client.post(url, {"move_stall_timeout_s": "60", "move_timeout_s_per_gib": ""})
    assert AuditEvent.objects.filter(action="host.move_timeouts_changed").count() == 1


def test_a_clusters_values_reach_its_nodes(node, admin_client):
    url = reverse("fabric:cluster_timeouts", args=[node.cluster.name])

    response = admin_client.post(url, {"move_stall_timeout_s": "", "move_timeout_s_per_gib": "400"})

    assert response.status_code == 302
    assert limits(Host.objects.select_related("cluster").get(pk=node.pk))[1] == 400
    assert AuditEvent.objects.filter(action="cluster.move_timeouts_changed", target_name="CL-T").exists()
    page = admin_client.get(reverse("fabric:host_timeouts", args=[node.fqdn])).content.decode()
    assert "cluster CL-T" in page and "400 s" in page


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "100000"])
def test_bad_input_is_answered_at_its_field_and_changes_nothing(node, operator_client, bad):
    Host.objects.filter(pk=node.pk).update(move_timeout_s_per_gib=500)
    url = reverse("fabric:host_timeouts", args=[node.fqdn])

    response = operator_client.post(url, {"move_stall_timeout_s": bad, "move_timeout_s_per_gib": "200"})

    assert response.status_code == 400
    page = response.content.decode()
    field = page.index('name="move_stall_timeout_s"')
    error = page.index("Give whole seconds from 0 (never) to 86400")
    assert field < error < page.index('name="move_timeout_s_per_gib"')  # beside the field it concerns
    assert "Nothing was changed" in page
    node.refresh_from_db()
    assert (node.move_stall_timeout_s, node.move_timeout_s_per_gib) == (None, 500)
    assert not AuditEvent.objects.filter(action="host.move_timeouts_changed").exists()


def test_a_viewer_sees_the_values_and_cannot_change_them(node, viewer_client):
    url = reverse("fabric:host_timeouts", args=[node.fqdn])
    page = viewer_client.get(url)
    assert page.status_code == 200
    assert "<form" not in page.content.decode().split('id="move-timeouts"')[1]
    assert "Operators and administrators change these values." in page.content.decode()
    assert "Details" in viewer_client.get(node.get_absolute_url()).content.decode()

    response = viewer_client.post(url, {"move_stall_timeout_s": "1"})

    assert response.status_code == 403
    node.refresh_from_db()
    assert node.move_stall_timeout_s is None
    assert AuditEvent.objects.filter(action="permission_denied", target_name=url).exists()


def test_it_reads_in_german(node, operator_client):
    operator_client.cookies["django_language"] = "de"
    page = operator_client.get(reverse("fabric:host_timeouts", args=[node.fqdn]), HTTP_ACCEPT_LANGUAGE="de")
    text = page.content.decode()
    assert "Zeitüberschreitung" in text and "Standard der Konsole" in text
    bad = operator_client.post(reverse("fabric:host_timeouts", args=[node.fqdn]), {"move_stall_timeout_s": "x"})
    assert "Ganze Sekunden von 0 (nie) bis 86400" in bad.content.decode()


def test_an_operator_turns_on_the_retry_with_compression(node, operator_client, settings):
    settings.MOVE_TIMEOUT_RETRY_COMPRESSION = False
    url = reverse("fabric:host_timeouts", args=[node.fqdn])
    data = {"move_stall_timeout_s": "", "move_timeout_s_per_gib": "", "move_timeout_retry_compression": "true"}

    assert operator_client.post(url, data).status_code == 302

    node.refresh_from_db()
    assert node.move_timeout_retry_compression is True and retries_with_compression(node)
    assert 'value="true" selected' in operator_client.get(url).content.decode()
    assert "retry with Compression" in operator_client.get(node.get_absolute_url()).content.decode()
    bad = operator_client.post(url, {**data, "move_timeout_retry_compression": "maybe"})
    assert bad.status_code == 400 and node.move_timeout_retry_compression is True
    operator_client.post(url, {**data, "move_timeout_retry_compression": ""})
    node.refresh_from_db()
    assert node.move_timeout_retry_compression is None and not retries_with_compression(node)
