"""Read-side queries of the inventory pages, shaped so their cost does not grow with the number of VMs."""

from django.db.models import Count, Q

from fabric.hyperv.host_values import CSV_ROOT, server_not_fqdn
from fabric.models import Cluster, Host, SmbShare, StorageLocation, VirtualMachine

# What a row of the host tree shows; the JSON columns (networks, switches, versions) stay unread.
HOST_ROW_FIELDS = (
    "fqdn", "name", "cluster_id", "os_version", "reachable", "last_error", "last_sync",
    "memory_total_bytes", "memory_available_bytes", "performance_option",
    "max_live_migrations", "max_storage_migrations", "maintenance", "queue_paused", "readiness",
)  # fmt: skip


def vm_counts(hosts=None) -> dict[int, tuple[int, int]]:
    """Host id -> (VMs, VMs migrating), from one aggregate over the VM table's (host, removed) index."""
    vms = VirtualMachine.objects.filter(removed=False)
    if hosts is not None:
        vms = vms.filter(host__in=hosts)
    rows = vms.values("host_id").annotate(vms=Count("pk"), migrating=Count("pk", filter=Q(migrating=True)))
    return {row["host_id"]: (row["vms"], row["migrating"]) for row in rows.order_by()}


def host_tree() -> tuple[list[Cluster], list[Host]]:
    """Clusters (each with .node_list) and standalone hosts; each host carries vm_count and migrating_count.

    Three queries whatever the size of the fabric. The VM counts come from one aggregate over the
    VM table's (host, removed) index rather than a join-and-group on the hosts, which costs twice
    as much on 20,000 VMs.
    """
    counts = vm_counts()
    clusters = {cluster.pk: cluster for cluster in Cluster.objects.order_by("name", "pk")}
    for cluster in clusters.values():
        cluster.node_list = []
    standalone = []
    for host in Host.objects.only(*HOST_ROW_FIELDS).order_by("name", "fqdn"):
        host.vm_count, host.migrating_count = counts.get(host.pk, (0, 0))
        if host.cluster_id in clusters:
            host.cluster = clusters[host.cluster_id]  # effective_max_live_migrations reads it: no query
            host.cluster.node_list.append(host)
        else:
            standalone.append(host)
    return list(clusters.values()), standalone


def settings_views():
    """Every host's live-migration settings as the drift guard reads them (one query)."""
    from fabric.drift import HostSettingsView

    rows = Host.objects.select_related("cluster").order_by("fqdn")
    return [
        HostSettingsView(
            fqdn=h.fqdn,
            name=h.name,
            cluster=h.cluster.name if h.cluster else None,
            cluster_max_parallel=h.cluster.max_parallel_migrations if h.cluster else None,
            performance_option=h.performance_option,
            auth_type=h.auth_type,
            max_live_migrations=h.max_live_migrations,
            max_storage_migrations=h.max_storage_migrations,
            migration_enabled=h.migration_enabled,
        )
        for h in rows
    ]


# --- clusters and shares ---------------------------------------------------------------------------


def csv_volume(path: str) -> str | None:
    """The Cluster Shared Volume a path is on (C:\\ClusterStorage\\Volume1), or None."""
    if not path.lower().startswith(CSV_ROOT):
        return None
    parts = path.split("\\")
    return "\\".join(parts[:3]) if len(parts) > 2 and parts[2] else None


def cluster_rows() -> list[Cluster]:
    """Every cluster with its node, reachable-node, VM and highly available VM counts (two queries)."""
    vms = (
        VirtualMachine.objects.filter(removed=False, host__cluster__isnull=False)
        .values("host__cluster_id")
        .annotate(vms=Count("pk"), ha=Count("pk", filter=Q(is_clustered=True)))
        .order_by()
    )
    by_cluster = {row["host__cluster_id"]: row for row in vms}
    clusters = Cluster.objects.annotate(
        node_count=Count("nodes", distinct=True),
        reachable_count=Count("nodes", filter=Q(nodes__reachable=True), distinct=True),
    ).order_by("name")
    for cluster in clusters:
        row = by_cluster.get(cluster.pk, {})
        cluster.vm_count, cluster.ha_count = row.get("vms", 0), row.get("ha", 0)
    return list(clusters)


def cluster_volumes(nodes: list[Host]) -> list[dict]:
    """The cluster's CSVs as its nodes' VMs and storage locations name them, with how many VMs use each."""
    volumes: dict[str, dict] = {}
    paths = VirtualMachine.objects.filter(removed=False, host__in=nodes).values_list("config_path", flat=True)
    for path in paths:
        if volume := csv_volume(path):
            volumes.setdefault(volume.lower(), {"path": volume, "vms": 0})["vms"] += 1
    for path in StorageLocation.objects.filter(host__in=nodes).values_list("path", flat=True):
        if volume := csv_volume(path):
            volumes.setdefault(volume.lower(), {"path": volume, "vms": 0})
    return sorted(volumes.values(), key=lambda v: v["path"].lower())


def share_rows(shares=None) -> list[SmbShare]:
    """Shares with the counts of hosts connected, VMs and disks stored there, and the short-name flag."""
    shares = SmbShare.objects.all() if shares is None else shares
    rows = shares.annotate(
        host_count=Count("hosts", distinct=True),
        vm_count=Count("vms", filter=Q(vms__removed=False), distinct=True),
        disk_count=Count("disks", distinct=True),
    ).order_by("unc_path")
    for share in rows:
        share.short_name = server_not_fqdn(share.file_server)
    return list(rows)
