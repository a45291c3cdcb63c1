"""Filters and pagination of the VM list, forgiving by design.

An operator pastes or edits URLs: a value the inventory does not know (a host that was renamed, a
typo in a state, a page past the end) is dropped with a notice instead of failing the page.

The list must cost the same with 100 VMs and with 20,000 (bench/inventory.py): the host and cluster
filters are resolved to host ids from the small host table, the page is chosen by an id-only query
that walks the (removed, name) index and stops after one page, and only those 50 rows are loaded
with their host, cluster and share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet, Value
from django.http import QueryDict
from django.utils.html import format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

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
    host_choices: list[str] = field(default_factory=list)
    cluster_choices: list[str] = field(default_factory=list)
    # The host and cluster filters as host ids (None: no such filter), so the VM queries need no join.
    host_ids: set[int] | None = None

    @property
    def active(self) -> bool:
        return bool(self.q or self.host or self.cluster or self.state or self.removed)

    def querystring(self) -> str:
        """The current filters as a query string (for page links), without empty values."""
        params = {"q": self.q, "host": self.host, "cluster": self.cluster, "state": self.state}
        if self.removed:
            params["removed"] = "1"
        return urlencode({k: v for k, v in params.items() if v})

    @property
    def page_query(self) -> str:
        """Prefix of a page link's query string: the template appends the page number."""
        current = self.querystring()
        return f"{current}&page=" if current else "page="

    # Built here rather than in a template loop: a fabric has hundreds of hosts, and rendering each
    # option through template variables cost about as much as the whole table of VMs.
    def host_options(self) -> SafeString:
        return _options(self.host_choices, self.host)

    def cluster_options(self) -> SafeString:
        return _options(self.cluster_choices, self.cluster)


def _options(values: list[str], selected: str) -> SafeString:
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        ((value, " selected" if value == selected else "", value) for value in values),
    )


def parse_vm_filter(params: QueryDict) -> VmFilter:
    """Read q/host/cluster/state/removed from the query string, keeping only values that exist."""
    f = VmFilter(q=params.get("q", "").strip()[:255], removed=params.get("removed", "").lower() in _TRUE)
    # Two small queries, whatever the number of VMs: they also feed the filter controls.
    hosts = list(Host.objects.order_by("fqdn").values_list("pk", "fqdn", "cluster_id"))
    clusters = list(Cluster.objects.order_by("name").values_list("pk", "name"))
    f.host_choices = [fqdn for _, fqdn, _ in hosts]
    f.cluster_choices = sorted({name for _, name in clusters})

    state = params.get("state", "").strip()
    if state and state not in VmState.values:
        f.notices.append(_("Unknown state “%(value)s” ignored.") % {"value": state[:60]})
    else:
        f.state = state
    host = params.get("host", "").strip()
    if host:
        found = [(pk, fqdn) for pk, fqdn, _ in hosts if fqdn.lower() == host.lower()]
        if found:
            f.host = found[0][1]
            f.host_ids = {found[0][0]}
        else:
            f.notices.append(_("Unknown host “%(value)s” ignored.") % {"value": host[:100]})
    cluster = params.get("cluster", "").strip()
    if cluster:
        cluster_ids = {pk for pk, name in clusters if name.lower() == cluster.lower()}
        if cluster_ids:
            f.cluster = next(name for pk, name in clusters if pk in cluster_ids)
            nodes = {pk for pk, _, cluster_id in hosts if cluster_id in cluster_ids}
            f.host_ids = nodes if f.host_ids is None else f.host_ids & nodes
        else:
            f.notices.append(_("Unknown cluster “%(value)s” ignored.") % {"value": cluster[:100]})
    return f


def filter_vms(f: VmFilter, not_removed=False) -> QuerySet[VirtualMachine]:
    vms = VirtualMachine.objects.all()
    if not f.removed:
        vms = vms.filter(removed=not_removed)
    if f.q:
        vms = vms.filter(name__icontains=f.q)
    if f.host_ids is not None:
        vms = vms.filter(host_id__in=f.host_ids)
    if f.state:
        vms = vms.filter(state=f.state)
    return vms


class _CountedPaginator(Paginator):
    def __init__(self, object_list, per_page, count_query: QuerySet):
        super().__init__(object_list, per_page)
        self.count_query = count_query

    @cached_property
    def count(self) -> int:
        return self.count_query.count()


def vm_page(f: VmFilter, raw_page: str | None) -> Page:
    """One page of the filtered VMs (host, cluster and share loaded), or the nearest valid page with a notice.

    SQLite compiles removed=False to `NOT removed`, which cannot seek the (removed, name) index: the
    id query says `removed = false` so it walks that index in name order and stops after a page. The
    count keeps `NOT removed`: once a state filter applies, a plain scan beats 20,000 index lookups.
    """
    ordered_ids = filter_vms(f, False if f.state else Value(False)).order_by("name", "pk").values_list("pk", flat=True)
    paginator = _CountedPaginator(ordered_ids, PAGE_SIZE, count_query=filter_vms(f))
    page = paginator.page(_page_number(paginator, raw_page, f.notices))
    ids = list(page.object_list)
    rows = VirtualMachine.objects.select_related("host__cluster", "share").in_bulk(ids)
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    return page


def _page_number(paginator: Paginator, raw_page: str | None, notices: list[str]) -> int:
    if not raw_page:
        return 1
    try:
        number = int(raw_page)
    except ValueError:
        notices.append(_("Page “%(value)s” is not a number; showing page 1.") % {"value": raw_page[:20]})
        return 1
    if number < 1:
        notices.append(_("Page %(number)s does not exist; showing page 1.") % {"number": number})
        return 1
    if number > paginator.num_pages:
        notices.append(f"Page {number} does not exist; showing page {paginator.num_pages}.")
        return paginator.num_pages
    return number
