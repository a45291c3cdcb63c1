"""The periodic inventory sync: a worker task, enqueued by the job workers' supervisor when due.

Due when a host read before was last read INVENTORY_SYNC_INTERVAL seconds ago or more (a Refresh
or a job's own refresh counts), the last periodic sync was enqueued as long ago, and none is waiting
or running. The decision is taken under the database's writer lock, so several workers'
supervisors enqueue one sync, not one each.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from fabric.drift import find_drift
from fabric.models import Host
from fabric.queries import settings_views
from notifications.emit import drift_seen
from utilities.db import serialize_writers

log = logging.getLogger(__name__)


@task()
def sync_all_hosts() -> dict:
    from fabric.driver import get_driver
    from fabric.sync import sync_inventory

    report = sync_inventory(get_driver())
    drift_seen(find_drift(settings_views()))  # told by webhook and e-mail when it changes (notifications)
    if report.unreachable:
        log.warning(
            "periodic sync: %d hosts did not answer: %s", len(report.unreachable), ", ".join(report.unreachable)
        )
    return {"synced": len(report.synced), "unreachable": len(report.unreachable), "vms": report.vms_seen}


def stale_after() -> timedelta:
    """How old a host's last sync may be before the pages mark it stale (two missed periodic syncs)."""
    interval = settings.INVENTORY_SYNC_INTERVAL
    return timedelta(seconds=2 * interval) if interval else timedelta(hours=1)


def enqueue_sync_if_due(now: datetime | None = None) -> bool:
    """Enqueue the periodic sync when it is due; True when this call enqueued it."""
    interval = settings.INVENTORY_SYNC_INTERVAL
    if not interval:
        return False
    now = now or timezone.now()
    with transaction.atomic():
        serialize_writers("inventory-sync")
        syncs = DBTaskResult.objects.filter(task_path=sync_all_hosts.module_path)
        if syncs.ready().exists() or syncs.running().exists():
            return False
        since = now - timedelta(seconds=interval)
        last = syncs.order_by("-enqueued_at").values_list("enqueued_at", flat=True).first()
        if last is not None and last > since:
            return False
        if not Host.objects.read().filter(last_sync__lte=since).exists():
            return False
        transaction.on_commit(sync_all_hosts.enqueue)
    return True
