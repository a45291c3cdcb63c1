"""The periodic inventory sync: a worker task, enqueued by the job workers' supervisor when due.

Due when a host read before was last read INVENTORY_SYNC_INTERVAL seconds ago or more (a Refresh
or a job's own refresh counts), the last periodic sync was enqueued as long ago, and none is waiting
or running. utilities.db.enqueue_once decides under the database's writer lock, so several
workers' supervisors enqueue one sync, not one each.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from fabric.drift import find_drift
from fabric.models import Host
from fabric.queries import settings_views
from notifications.emit import drift_seen
from utilities.db import enqueue_once

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
    since = (now or timezone.now()) - timedelta(seconds=interval)

    def due(last: datetime | None) -> bool:
        return (last is None or last <= since) and Host.objects.read().filter(last_sync__lte=since).exists()

    return enqueue_once(sync_all_hosts, due)
