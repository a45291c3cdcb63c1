"""Inventory refresh: a button per host and per cluster (audited), the workers' periodic sync, and a
last sync that shows as stale once two periodic syncs were missed."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEvent
from fabric.models import Cluster, Host, VirtualMachine
from fabric.tasks import enqueue_sync_if_due, sync_all_hosts

pytestmark = pytest.mark.django_db(transaction=True)


def test_refresh_reads_a_host_again_and_is_audited(operator_client, demo_fabric):
    host = Host.objects.get(name="hv-s1")
    Host.objects.filter(pk=host.pk).update(last_sync=timezone.now() - timedelta(days=1), memory_available_bytes=1)
    answer = operator_client.post(reverse("fabric:host_refresh", args=[host.fqdn]), follow=True)
    assert "Read hv-s1 again:" in answer.content.decode()
    host.refresh_from_db()
    assert host.memory_available_bytes > 1 and timezone.now() - host.last_sync < timedelta(minutes=1)
    event = AuditEvent.objects.get(action="inventory.refreshed")
    assert event.target_name == host.fqdn and event.details["synced"] == [host.fqdn]


def test_refresh_of_a_cluster_reads_every_node(operator_client, demo_fabric):
    cluster = Cluster.objects.get(name="CL-NEW")
    answer = operator_client.post(reverse("fabric:cluster_refresh", args=[cluster.name]), follow=True)
    body = answer.content.decode()
    assert "Read hv-new1, hv-new2, hv-new3 again: 18 VMs." in body
    assert AuditEvent.objects.get(action="inventory.refreshed").details["unreachable"] == {}


def test_a_viewer_may_not_refresh(viewer_user, demo_fabric):
    viewer = Client()
    viewer.force_login(viewer_user)
    assert viewer.post(reverse("fabric:host_refresh", args=["hv-s1.contoso.test"])).status_code == 403
    assert not AuditEvent.objects.filter(action="inventory.refreshed").exists()


def test_the_periodic_sync_is_enqueued_once_when_due(demo_fabric, settings):
    settings.INVENTORY_SYNC_INTERVAL = 300
    now = timezone.now()
    assert enqueue_sync_if_due(now) is False  # seed_demo has just read every host
    later = now + timedelta(seconds=301)
    assert enqueue_sync_if_due(later) is True
    assert enqueue_sync_if_due(later) is False  # one waits already: another supervisor adds none
    assert DBTaskResult.objects.filter(task_path=sync_all_hosts.module_path).count() == 1
    settings.INVENTORY_SYNC_INTERVAL = 0
    DBTaskResult.objects.all().delete()
    assert enqueue_sync_if_due(later + timedelta(days=1)) is False  # 0: on demand only


def test_the_periodic_sync_reads_every_host(demo_fabric):
    VirtualMachine.objects.filter(name="dc01").update(memory_assigned_bytes=1)
    result = sync_all_hosts.call()
    assert result["unreachable"] == 0 and result["synced"] == Host.objects.count()
    assert VirtualMachine.objects.get(name="dc01").memory_assigned_bytes > 1


def test_a_last_sync_older_than_two_intervals_shows_as_stale(viewer_client, demo_fabric, settings):
    settings.INVENTORY_SYNC_INTERVAL = 300
    host = Host.objects.get(name="hv-s1")
    Host.objects.filter(pk=host.pk).update(last_sync=timezone.now() - timedelta(seconds=601))
    page = viewer_client.get(host.get_absolute_url()).content.decode()
    assert 'class="stale"' in page and ">stale</span>" in page
    fresh = viewer_client.get(Host.objects.get(name="hv-s2").get_absolute_url()).content.decode()
    assert 'class="stale"' not in fresh
