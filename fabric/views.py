import uuid

from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST, require_safe

from access import Perm, requires_always
from fabric import move_timeouts
from fabric.drift import find_drift
from fabric.filters import parse_vm_filter, vm_page
from fabric.host_probe import run_check
from fabric.models import Host, VirtualMachine, VmState
from fabric.page_sections import list_actions, page_sections
from fabric.queries import host_tree, settings_views
from utilities.http import page_or_fragment


@require_safe  # a read-only page: POST and the like are refused (405)
def hosts(request: HttpRequest) -> HttpResponse:
    clusters, standalone = host_tree()
    drift = find_drift(settings_views())
    flagged_only = request.GET.get("flagged") == "1"
    for host in [*standalone, *(h for c in clusters for h in c.node_list)]:
        host.drift = drift.get(host.fqdn, [])
    if flagged_only:
        standalone = [h for h in standalone if h.drift]
        for cluster in clusters:
            cluster.node_list = [h for h in cluster.node_list if h.drift]
        clusters = [c for c in clusters if c.node_list]
    context = {"clusters": clusters, "standalone": standalone, "flagged_only": flagged_only, "flagged": len(drift)}
    return render(request, "fabric/hosts.html", context)


@require_safe  # a read-only page: POST and the like are refused (405)
def host_detail(request: HttpRequest, fqdn: str) -> HttpResponse:
    return render(request, "fabric/host_detail.html", _host_context(request, fqdn))


def _host_context(request: HttpRequest, fqdn: str) -> dict:
    host = get_object_or_404(
        Host.objects.select_related("cluster").prefetch_related("storage_locations", "shares"), fqdn=fqdn
    )
    vms = list(host.vms.filter(removed=False).select_related("share").order_by("name", "pk"))
    migrating_count = sum(vm.migrating for vm in vms)
    sections = page_sections("host", request, host)
    drift = find_drift(settings_views()).get(host.fqdn, [])  # said on the page, not only on hover
    context = {"host": host, "vms": vms, "migrating_count": migrating_count, "sections": sections, "drift": drift}
    return {**context, "move_timeouts": move_timeouts.summary(host)}


@require_POST
@requires_always(Perm.MIGRATE)
def host_check(request: HttpRequest, fqdn: str) -> HttpResponse:
    """Run check_host against the host (read-only, audited). Whoever may start moves may check what
    they depend on; viewers may not (it logs on to the host with its stored credential).
    htmx: the results table; without JS, the host page with the results in place."""
    host = get_object_or_404(Host.objects.select_related("cluster"), fqdn=fqdn)
    report = run_check(host, request=request)
    context = {"report": report, "host": host}
    if not request.htmx:  # the page around the results: read only when it is sent
        context = {**_host_context(request, fqdn), **context}
    return page_or_fragment(request, "fabric/host_detail.html", "partials/host_check.html", context)


@require_safe  # a read-only page: POST and the like are refused (405)
def vm_list(request: HttpRequest) -> HttpResponse:
    vm_filter = parse_vm_filter(request.GET)
    page = vm_page(vm_filter, request.GET.get("page"))
    page_range = page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
    context = {"page": page, "page_range": page_range, "filter": vm_filter, "states": VmState.choices}
    context["actions"] = list_actions("vm", request.user)
    return page_or_fragment(request, "fabric/vm_list.html", "partials/vm_table.html", context)


@require_safe  # a read-only page: POST and the like are refused (405)
def vm_detail(request: HttpRequest, guid: uuid.UUID) -> HttpResponse:
    vm = get_object_or_404(VirtualMachine.objects.select_related("host__cluster", "share"), guid=guid)
    others = VirtualMachine.objects.exclude(pk=vm.pk).only("guid", "name", "removed")
    disks = vm.disks.prefetch_related(Prefetch("vms", queryset=others, to_attr="other_vms"))
    context = {"vm": vm, "disks": disks, "sections": page_sections("vm", request, vm)}
    return render(request, "fabric/vm_detail.html", context)
