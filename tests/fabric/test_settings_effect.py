"""What a settings change does to the moves after it: the wizard's host list names drift where it
affects the move, and admission, ratings and estimates read the new values from the next job on."""

import pytest
from django.urls import reverse

from fabric.models import Host, VirtualMachine
from migrations_ui.jobs.scheduler import host_limits
from migrations_ui.planning.inventory import evacuation_plan
from migrations_ui.preflight.assess import Preflight, host_facts, slot_usage, vm_for_preflight
from migrations_ui.slots import LIVE, STORAGE

pytestmark = pytest.mark.django_db
D = ".contoso.test"
NEW_NODES = ["hv-new1" + D, "hv-new2" + D, "hv-new3" + D]


def fix_cl_new(client, **extra):
    response = client.post(
        reverse("fabric:cluster_settings", args=["CL-NEW"]),
        {"hosts": NEW_NODES, "performance_option": "smb", "cluster_max_parallel": 2, **extra},
    )
    assert response.context["cluster_result"].ok
    return response


def running_vm_on(host_name):
    return VirtualMachine.objects.filter(host__name=host_name, state="running", removed=False).order_by("name").first()


def test_it_names_drift_in_the_wizard_s_host_list_until_it_is_fixed(admin_client, demo_fabric):
    vm = running_vm_on("hv-s1")
    url = reverse("migrations_ui:migrate_vm", args=[vm.guid])

    page = admin_client.get(url)

    rows = {host.fqdn: host.drift for host, _ in page.context["ranked"]}
    assert any("caps live migrations at 1" in str(r) for r in rows["hv-new2" + D])
    assert rows["hv-s2" + D] == []
    assert "Settings drift" in page.content.decode() and 'id="source-drift"' not in page.content.decode()

    fix_cl_new(admin_client)

    rows = {host.fqdn: host.drift for host, _ in admin_client.get(url).context["ranked"]}
    assert all(rows[fqdn] == [] for fqdn in NEW_NODES)


def test_it_tells_the_wizard_when_the_source_s_own_settings_drift(admin_client, demo_fabric):
    vm = running_vm_on("hv-s3")  # the host with the odd performance option

    page = admin_client.get(reverse("migrations_ui:migrate_vm", args=[vm.guid])).content.decode()

    assert 'id="source-drift"' in page
    assert "The move uses the settings of hv-s3" in page and "TCP/IP differs from the rest of the fabric" in page


def test_admission_counts_the_cluster_cap_from_the_next_decision_on(admin_client, demo_fabric):
    node = Host.objects.get(fqdn="hv-new1" + D)
    assert host_limits([node.pk]) == {(node.pk, LIVE): 1, (node.pk, STORAGE): 2}

    fix_cl_new(admin_client, max_storage_migrations=3)

    assert host_limits([node.pk]) == {(node.pk, LIVE): 2, (node.pk, STORAGE): 3}


def test_ratings_and_findings_read_the_new_cluster_cap(admin_client, demo_fabric):
    vm = running_vm_on("hv-new1")
    destination = Host.objects.get(fqdn="hv-new2" + D)

    def findings():
        fresh = vm_for_preflight().get(pk=vm.pk)
        return {f.rule for f in Preflight(fresh).assess(Host.objects.get(pk=destination.pk)).findings}

    assert "cluster-parallel-limit" in findings()
    fix_cl_new(admin_client)
    assert "cluster-parallel-limit" not in findings()
    facts = host_facts(Host.objects.select_related("cluster").get(pk=destination.pk), slot_usage())
    assert (facts.live_limit, facts.performance_option) == (2, "smb")


def test_estimates_plan_with_the_new_cap_and_performance_option(admin_client, demo_fabric):
    source = Host.objects.get(fqdn="hv-new1" + D)
    before = evacuation_plan(source)
    assert {m.spec.option for m in before.moves} == {"compression"}

    fix_cl_new(admin_client)

    after = evacuation_plan(Host.objects.get(pk=source.pk))
    assert {m.spec.option for m in after.moves} == {"smb"}
    assert after.as_json()["makespan_s"] < before.as_json()["makespan_s"]
