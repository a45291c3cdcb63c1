"""Readiness at a glance: whether each host could be emptied now and how long it would take, whether
each cluster is N+1, which VMs stand in the way; refreshed by the workers after syncs and moves."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override
from django_tasks_db.models import DBTaskResult

from fabric.models import Cluster, Host, VirtualMachine, VmState
from migrations_ui.jobs.tasks import READINESS_EVERY, enqueue_readiness_if_stale, refresh_readiness_task
from migrations_ui.planning.readiness import refresh_readiness

pytestmark = pytest.mark.django_db(transaction=True)


def readiness(name):
    return Host.objects.get(name=name).readiness


def test_each_host_says_whether_it_could_be_emptied_and_what_stands_in_the_way(demo_fabric):
    assert refresh_readiness() == Host.objects.count()

    new1 = readiness("hv-new1")
    assert new1["ready"] is False
    blockers = {b["vm"]: b["reason"] for b in new1["blockers"]}
    assert set(blockers) == {"erp-app01", "ckpt-new01"}
    assert "older cluster version" in blockers["erp-app01"]
    s2 = readiness("hv-s2")
    assert s2["ready"] is True and s2["blockers"] == [] and s2["moves"] > 0 and s2["estimate_s"] > 0


def test_a_vm_that_is_off_does_not_stand_in_the_way(demo_fabric):
    VirtualMachine.objects.filter(name__in=["erp-app01", "ckpt-new01"]).update(state=VmState.OFF)
    refresh_readiness()
    assert readiness("hv-new1")["ready"] is True


def test_a_cluster_is_n_plus_one_when_every_node_empties_into_the_others(demo_fabric):
    refresh_readiness()
    new, old = Cluster.objects.get(name="CL-NEW").readiness, Cluster.objects.get(name="CL-OLD").readiness
    assert new["n_plus_one"] is False and old["n_plus_one"] is True
    assert [b["vm"] for b in new["nodes"]["hv-new1.contoso.test"]["blockers"]] == ["erp-app01", "ckpt-new01"]
    assert new["nodes"]["hv-new2.contoso.test"]["ready"] is True
    # Within the cluster only: no node of CL-NEW is counted on a standalone host.
    assert set(new["nodes"]) == {"hv-new1.contoso.test", "hv-new2.contoso.test", "hv-new3.contoso.test"}


def test_an_unreachable_host_has_no_readiness(demo_fabric):
    refresh_readiness()
    Host.objects.filter(name="hv-s4").update(reachable=False)
    refresh_readiness()
    assert readiness("hv-s4") is None


def test_the_refresh_is_enqueued_after_a_sync_or_a_finished_move_one_at_a_time(demo_fabric):
    now = timezone.now()
    assert enqueue_readiness_if_stale(now) is True  # never assessed, hosts were read (seed_demo)
    assert enqueue_readiness_if_stale(now) is False  # one waits already
    refreshes = DBTaskResult.objects.filter(task_path=refresh_readiness_task.module_path)
    refreshes.update(status="SUCCESSFUL", enqueued_at=now)
    later = now + READINESS_EVERY + timedelta(seconds=1)
    assert enqueue_readiness_if_stale(later) is False  # nothing changed since
    Host.objects.filter(name="hv-s1").update(last_sync=now + timedelta(seconds=5))
    assert enqueue_readiness_if_stale(now + timedelta(seconds=10)) is False  # too soon after the last
    assert enqueue_readiness_if_stale(later) is True
    assert refreshes.count() == 2


def test_the_pages_show_it_in_english_and_german(viewer_client, demo_fabric):
    refresh_readiness()
    hosts = viewer_client.get(reverse("fabric:hosts")).content.decode()
    assert "2 VMs in the way" in hosts and "Not N+1" in hosts and ">N+1</span>" in hosts
    assert "Can be emptied in ~" in hosts
    host = viewer_client.get(Host.objects.get(name="hv-new1").get_absolute_url()).content.decode()
    assert 'id="readiness"' in host and "Cannot be emptied now: 2 running VMs cannot move live." in host
    assert "<strong>erp-app01</strong>: No host can take it." in host
    cluster = viewer_client.get(Cluster.objects.get(name="CL-NEW").get_absolute_url()).content.decode()
    assert "Not every node could be emptied into the cluster's other nodes now" in cluster
    with override("de"):
        german = viewer_client.get(reverse("fabric:hosts"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "2 VMs im Weg" in german
