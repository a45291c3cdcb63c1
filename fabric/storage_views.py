"""The Clusters and Shares pages: what VMM users look for beside the host tree. Read only."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from fabric import move_timeouts
from fabric.models import Cluster, Host, SmbShare, VirtualDisk, VirtualMachine
from fabric.queries import HOST_ROW_FIELDS, cluster_rows, cluster_volumes, share_rows, vm_counts


@require_safe  # a read-only page: POST and the like are refused (405)
def cluster_list(request: HttpRequest) -> HttpResponse:
    return render(request, "fabric/clusters.html", {"clusters": cluster_rows()})


@require_safe
def cluster_detail(request: HttpRequest, cluster: str) -> HttpResponse:
    the_cluster = get_object_or_404(Cluster, name=cluster)
    nodes = list(Host.objects.filter(cluster=the_cluster).only(*HOST_ROW_FIELDS).order_by("name"))
    counts = vm_counts(nodes)
    for node in nodes:
        node.cluster = the_cluster  # effective_max_live_migrations reads it: no query per row
        node.vm_count, node.migrating_count = counts.get(node.pk, (0, 0))
    shares = share_rows(SmbShare.objects.filter(hosts__in=nodes).distinct())
    context = {"cluster": the_cluster, "nodes": nodes, "volumes": cluster_volumes(nodes), "shares": shares}
    context["move_timeouts"] = move_timeouts.summary(the_cluster)
    return render(request, "fabric/cluster_detail.html", context)


@require_safe
def share_list(request: HttpRequest) -> HttpResponse:
    return render(request, "fabric/shares.html", {"shares": share_rows()})


@require_safe
def share_detail(request: HttpRequest, pk: int) -> HttpResponse:
    found = share_rows(SmbShare.objects.filter(pk=pk))
    if not found:
        raise Http404(f"There is no share {pk}.")
    share = found[0]
    context = {
        "share": share,
        "hosts": share.hosts.select_related("cluster").order_by("name"),
        "vms": VirtualMachine.objects.filter(share=share, removed=False).select_related("host").order_by("name"),
        "disks": VirtualDisk.objects.filter(share=share).prefetch_related("vms").order_by("path"),
    }
    return render(request, "fabric/share_detail.html", context)
