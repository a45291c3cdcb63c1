"""Filters and pagination of the VM list, forgiving by design.

An operator pastes or edits URLs: a value the inventory does not know (a host that was renamed, a
typo in a state, a page past the end) is dropped with a notice instead of failing the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict

from fabric.models import Cluster, Host, VirtualMachine, VmState

PAGE_SIZE = 50
_TRUE = {"1", "on", "true", "yes"}


@dataclass
class VmFilter:
    q: str = ""
    host: str = ""
    cluster: str = ""
    state: str = ""
    removed: bool = False
    notices: list[str] = field(default_factory=list)
    host_choices: list[tuple[str, str]] = field(default_factory=list)
    cluster_choices: list[str] = field(default_factory=list)
    # Resolved from the choices, so the VM query filters on indexed foreign keys.
    host_id: int | None = None
    cluster_ids: list[int] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.q or self.host or self.cluster or self.state or self.removed)

    def querystring(self) -> str:
        """The current filters as a query string (for page links), without empty values."""
        params = {"q": self.q, "host": self.host, "cluster": self.cluster, "state": self.state}
        if self.removed:
            params["removed"] = "1"
        return urlencode({k: v for k, v in params.items() if v not in ("", None)})

    @property
    def page_query(self) -> str:
        """Prefix of a page link's query string: the template appends the page number."""
        current = self.querystring()
        return f"{current}&page=" if current else "page="


def parse_vm_filter(params: QueryDict) -> VmFilter:
    """Read q/host/cluster/state/removed from the query string, keeping only values that exist."""
    f = VmFilter(q=params.get("q", "").strip()[:255], removed=params.get("removed", "").lower() in _TRUE)
    # Two small queries, whatever the number of VMs: they also feed the filter controls.
    hosts = list(Host.objects.order_by("name", "fqdn").values_list("pk", "fqdn", "name"))
    clusters = list(Cluster.objects.order_by("name").values_list("pk", "name"))
    f.host_choices = [(fqdn, name) for _, fqdn, name in hosts]
    f.cluster_choices = sorted({name for _, name in clusters})

    state = params.get("state", "").strip()
    if state and state not in VmState.values:
        f.notices.append(f"Unknown state “{state[:60]}” ignored.")
    else:
        f.state = state
    host = params.get("host", "").strip()
    if host:
        found = [(pk, fqdn) for pk, fqdn, _ in hosts if fqdn.lower() == host.lower()]
        if found:
            f.host_id, f.host = found[0]
        else:
            f.notices.append(f"Unknown host “{host[:100]}” ignored.")
    cluster = params.get("cluster", "").strip()
    if cluster:
        found = [(pk, name) for pk, name in clusters if name.lower() == cluster.lower()]
        if found:
            f.cluster = found[0][1]
            f.cluster_ids = [pk for pk, _ in found]
        else:
            f.notices.append(f"Unknown cluster “{cluster[:100]}” ignored.")
    return f


def filter_vms(f: VmFilter) -> QuerySet[VirtualMachine]:
    vms = VirtualMachine.objects.select_related("host__cluster", "share")
    if not f.removed:
        vms = vms.filter(removed=False)
    if f.q:
        vms = vms.filter(name__icontains=f.q)
    if f.host_id is not None:
        vms = vms.filter(host_id=f.host_id)
    if f.cluster_ids:
        vms = vms.filter(host__cluster_id__in=f.cluster_ids)
    if f.state:
        vms = vms.filter(state=f.state)
    # Names repeat across hosts: the pk makes page boundaries stable.
    return vms.order_by("name", "pk")


def paginate(vms: QuerySet, raw_page: str | None, notices: list[str]) -> Page:
    """The requested page, or the nearest valid one with a notice."""
    paginator = Paginator(vms, PAGE_SIZE)
    number = 1
    if raw_page:
        try:
            number = int(raw_page)
        except ValueError:
            notices.append(f"Page “{raw_page[:20]}” is not a number; showing page 1.")
        else:
            if number < 1:
                notices.append(f"Page {number} does not exist; showing page 1.")
                number = 1
            elif number > paginator.num_pages:
                notices.append(f"Page {number} does not exist; showing page {paginator.num_pages}.")
                number = paginator.num_pages
    return paginator.page(number)
