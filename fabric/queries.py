"""Read-side queries of the inventory pages, shaped so their cost does not grow with the number of VMs."""

from django.db.models import Count, Q

from fabric.models import Cluster, Host, VirtualMachine

# What a row of the host tree shows; the JSON columns (networks, switches, versions) stay unread.
HOST_ROW_FIELDS = (
    "fqdn", "name", "cluster_id", "os_version", "reachable", "last_error", "last_sync",
    "memory_total_bytes", "memory_available_bytes", "performance_option",
    "max_live_migrations", "max_storage_migrations", "maintenance", "queue_paused",
)  # fmt: skip


def host_tree() -> tuple[list[Cluster], list[Host]]:
    """Clusters (each with .node_list) and standalone hosts; each host carries vm_count and migrating_count.

    Three queries whatever the size of the fabric. The VM counts come from one aggregate over the
    VM table's (host, removed) index rather than a join-and-group on the hosts, which costs twice
    as much on 20,000 VMs.
    """
    counts = {
        row["host_id"]: row
        for row in VirtualMachine.objects.filter(removed=False)
        .values("host_id")
        .annotate(vms=Count("pk"), migrating=Count("pk", filter=Q(migrating=True)))
        .order_by()
    }
    clusters = {cluster.pk: cluster for cluster in Cluster.objects.order_by("name", "pk")}
    for cluster in clusters.values():
        cluster.node_list = []
    standalone = []
    for host in Host.objects.only(*HOST_ROW_FIELDS).order_by("name", "fqdn"):
        row = counts.get(host.pk, {})
        host.vm_count, host.migrating_count = row.get("vms", 0), row.get("migrating", 0)
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
