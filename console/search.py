"""The top bar's search: VMs, hosts, clusters, shares by name (or part of it), a VM by its GUID, a
job by its number. One match opens its page; several are listed by kind."""

from __future__ import annotations

import re
import uuid

from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.http import require_safe

from fabric.models import Cluster, Host, SmbShare, VirtualMachine
from migrations_ui.models import MigrationJob

SHOWN = 20  # per kind: a search is for finding one thing, the lists have filters for the rest
JOB_NUMBER = re.compile(r"^#?(\d{1,12})$")


def matches(q: str) -> dict[str, list]:
    """Each kind's matches for q, the best first."""
    vms = VirtualMachine.objects.select_related("host").order_by("removed", "name")
    try:
        vms = vms.filter(guid=uuid.UUID(q))
    except ValueError:
        vms = vms.filter(name__icontains=q)
    found = {
        "vms": list(vms[:SHOWN]),
        "hosts": list(Host.objects.filter(Q(name__icontains=q) | Q(fqdn__icontains=q)).order_by("name")[:SHOWN]),
        "clusters": list(Cluster.objects.filter(Q(name__icontains=q) | Q(fqdn__icontains=q)).order_by("name")[:SHOWN]),
        "shares": list(SmbShare.objects.filter(unc_path__icontains=q).order_by("unc_path")[:SHOWN]),
        "jobs": [],
    }
    if number := JOB_NUMBER.match(q):
        found["jobs"] = list(MigrationJob.objects.filter(pk=int(number.group(1))))
    return found


@require_safe  # read-only: POST and the like are refused (405)
def search(request):
    q = request.GET.get("q", "").strip()[:200]
    found = matches(q) if q else {}
    hits = [item for items in found.values() for item in items]
    if len(hits) == 1:
        return redirect(hits[0].get_absolute_url())
    return render(request, "search.html", {"q": q, "found": found, "count": len(hits)})
