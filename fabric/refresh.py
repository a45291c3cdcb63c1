"""Refresh: read a host's or a cluster's nodes' inventory now, on an operator's request (audited).
What the periodic sync does for every host (fabric.tasks), for the hosts an operator is looking at."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from access import Perm, requires_always
from fabric.driver import get_driver
from fabric.models import Cluster, Host
from fabric.sync import sync_inventory
from utilities.http import redirect_back


def refresh(request: HttpRequest, hosts: list[Host], target: dict) -> None:
    """Sync these hosts, audit it, and tell the operator what came back."""
    from audit.log import record

    report = sync_inventory(get_driver(), hosts)
    details = {"synced": report.synced, "unreachable": report.unreachable, "vms": report.vms_seen}
    record("inventory.refreshed", request=request, details=details, **target)
    if report.synced:
        names = ", ".join(fqdn.split(".")[0] for fqdn in report.synced)
        text = _("Read %(hosts)s again: %(vms)s VMs.") % {"hosts": names, "vms": report.vms_seen}
        messages.success(request, text)
    for fqdn, reason in report.unreachable.items():
        messages.error(request, _("%(host)s did not answer: %(reason)s") % {"host": fqdn, "reason": reason})


@require_POST
@requires_always(Perm.MIGRATE)  # who may start moves may read what they depend on; viewers may not
def refresh_host(request: HttpRequest, fqdn: str) -> HttpResponse:
    host = get_object_or_404(Host, fqdn=fqdn)
    refresh(request, [host], {"target_type": "host", "target_id": str(host.pk), "target_name": host.fqdn})
    return redirect_back(request, host.get_absolute_url())


@require_POST
@requires_always(Perm.MIGRATE)
def refresh_cluster(request: HttpRequest, cluster: str) -> HttpResponse:
    the_cluster = get_object_or_404(Cluster, name=cluster)
    nodes = list(Host.objects.filter(cluster=the_cluster))
    target = {"target_type": "cluster", "target_id": str(the_cluster.pk), "target_name": the_cluster.fqdn}
    refresh(request, nodes, target)
    return redirect_back(request, the_cluster.get_absolute_url())
