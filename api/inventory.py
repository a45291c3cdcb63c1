"""Clusters, hosts, shares and VMs: lists with filters and cursor pages, and details. Read-only, for
every role. The VM filters are the VM list page's (fabric.filters), strict here: a value the
inventory does not know is a 400 naming it, not a notice."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch
from django.http import Http404
from ninja import Query, Router, Schema

from api.errors import ERRORS, ApiError
from api.pagination import keyset
from api.schemas import (
    ClusterOut,
    ClusterPage,
    HostOut,
    HostPage,
    Id,
    Limit,
    ShareOut,
    SharePage,
    Text,
    VmDetailOut,
    VmPage,
)
from fabric.filters import filter_vms, parse_vm_filter
from fabric.models import Cluster, Host, SmbShare, VirtualDisk, VirtualMachine, VmState

router = Router(tags=["inventory"])


def cluster_json(c: Cluster) -> dict:
    return {
        "name": c.name,
        "fqdn": c.fqdn,
        "functional_level": c.functional_level,
        "max_parallel_migrations": c.max_parallel_migrations,
        "nodes": [h.fqdn for h in c.nodes.all()],
        "last_sync": c.last_sync,
        "readiness": _readiness(c.readiness),
    }


def _readiness(data: dict | None) -> dict | None:
    """Stored readiness without the pages' translation data (blockers' "i18n")."""
    if not data:
        return None
    if "nodes" in data:
        return {**data, "nodes": {fqdn: _readiness(node | {"at": data["at"]}) for fqdn, node in data["nodes"].items()}}
    blockers = [{k: b[k] for k in ("vm", "vm_id", "reason")} for b in data.get("blockers", [])]
    return {**data, "blockers": blockers}


HOST_FIELDS = (
    "fqdn", "name", "os_version", "reachable", "last_error", "last_sync", "maintenance", "queue_paused",
    "memory_total_bytes", "memory_available_bytes", "logical_processors", "cpu_load_percent", "processor_family",
    "migration_enabled", "max_live_migrations", "max_storage_migrations", "performance_option", "auth_type",
    "use_any_network", "migration_networks", "virtual_switches", "vm_path", "vhd_path",
)  # fmt: skip


def host_json(h: Host) -> dict:
    # Credentials live in another table and never appear here.
    data = {name: getattr(h, name) for name in HOST_FIELDS}
    data["cluster"] = h.cluster.fqdn if h.cluster else None
    data["effective_max_live_migrations"] = h.effective_max_live_migrations
    data["readiness"] = _readiness(h.readiness)
    return data


def share_json(s: SmbShare) -> dict:
    return {
        "id": s.pk,
        "unc_path": s.unc_path,
        "file_server": s.file_server,
        "file_server_fqdn": s.file_server_fqdn,
        "hosts": [h.fqdn for h in s.hosts.all()],
    }


def vm_json(vm: VirtualMachine, detail: bool = False) -> dict:
    data = {
        "id": str(vm.guid),
        "name": vm.name,
        "host": vm.host.fqdn,
        "cluster": vm.host.cluster.fqdn if vm.host.cluster else None,
        "state": vm.state,
        "memory_assigned_bytes": vm.memory_assigned_bytes,
        "config_version": vm.config_version,
        "is_clustered": vm.is_clustered,
        "migrating": vm.migrating,
        "removed": vm.removed,
        "share": vm.share.unc_path if vm.share else None,
        "last_seen": vm.last_seen,
    }
    if detail:
        data.update(
            config_path=vm.config_path,
            switch_names=vm.switch_names,
            processor_compatibility=vm.processor_compatibility,
            processor_count=vm.processor_count,
            compat_vector_stale=vm.compat_vector_stale,
            disks=[
                {f: getattr(d, f) for f in ("path", "size_bytes", "shared", "vhd_type", "max_size_bytes")}
                for d in vm.disks.all()
            ],
        )
    return data


class ClusterFilter(Schema):
    q: Text = ""
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/clusters", response={200: ClusterPage, **ERRORS}, summary="List clusters")
def clusters(request, filters: Query[ClusterFilter]):
    rows = Cluster.objects.prefetch_related("nodes")
    if filters.q:
        rows = rows.filter(name__icontains=filters.q)
    items, cursor = keyset(rows, filters.cursor, filters.limit, key=(("name", str), ("pk", int)))
    return {"items": [cluster_json(c) for c in items], "next_cursor": cursor}


@router.get("/clusters/{fqdn}", response={200: ClusterOut, **ERRORS}, summary="One cluster")
def cluster(request, fqdn: str):
    found = None if not _a_name(fqdn) else Cluster.objects.prefetch_related("nodes").filter(fqdn__iexact=fqdn).first()
    if found is None:
        raise Http404(f"There is no cluster {fqdn[:255]!r}.")
    return cluster_json(found)


class HostFilter(Schema):
    q: Text = ""
    cluster: Text = ""
    reachable: bool | None = None
    maintenance: bool | None = None
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/hosts", response={200: HostPage, **ERRORS}, summary="List hosts")
def hosts(request, filters: Query[HostFilter]):
    rows = Host.objects.select_related("cluster")
    if filters.q:
        rows = rows.filter(name__icontains=filters.q) | rows.filter(fqdn__icontains=filters.q)
    if filters.cluster:
        if not Cluster.objects.filter(name__iexact=filters.cluster).exists():
            raise ApiError(400, f"There is no cluster {filters.cluster!r}.", {"cluster": ["Unknown cluster."]})
        rows = rows.filter(cluster__name__iexact=filters.cluster)
    for name in ("reachable", "maintenance"):
        if getattr(filters, name) is not None:
            rows = rows.filter(**{name: getattr(filters, name)})
    items, cursor = keyset(rows, filters.cursor, filters.limit, key=(("fqdn", str),))
    return {"items": [host_json(h) for h in items], "next_cursor": cursor}


def _a_name(fqdn: str) -> bool:
    # A NUL cannot be in a name, and PostgreSQL refuses it in a query; no DNS name is longer than
    # 253 characters, and iexact is a LIKE on SQLite, whose patterns stop at 50,000: no such host.
    return "\x00" not in fqdn and len(fqdn) <= 255


def get_host(fqdn: str) -> Host:
    host = None if not _a_name(fqdn) else Host.objects.select_related("cluster").filter(fqdn__iexact=fqdn).first()
    if host is None:
        raise Http404(f"There is no host {fqdn[:255]!r}.")
    return host


@router.get("/hosts/{fqdn}", response={200: HostOut, **ERRORS}, summary="One host")
def host(request, fqdn: str):
    return host_json(get_host(fqdn))


class ShareFilter(Schema):
    host: Text = ""
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/shares", response={200: SharePage, **ERRORS}, summary="List SMB shares")
def shares(request, filters: Query[ShareFilter]):
    rows = SmbShare.objects.prefetch_related("hosts")
    if filters.host:
        rows = rows.filter(hosts__fqdn__iexact=filters.host)
    items, cursor = keyset(rows, filters.cursor, filters.limit)
    return {"items": [share_json(s) for s in items], "next_cursor": cursor}


@router.get("/shares/{share_id}", response={200: ShareOut, **ERRORS}, summary="One SMB share")
def share(request, share_id: Id):
    found = SmbShare.objects.prefetch_related("hosts").filter(pk=share_id).first()
    if found is None:
        raise Http404(f"There is no share {share_id}.")
    return share_json(found)


class VmFilter(Schema):
    q: Text = ""
    host: Text = ""
    cluster: Text = ""
    state: VmState | None = None
    removed: bool = False
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/vms", response={200: VmPage, **ERRORS}, summary="List VMs (by name)")
def vms(request, filters: Query[VmFilter]):
    params = {"q": filters.q, "host": filters.host, "cluster": filters.cluster, "state": filters.state or ""}
    params["removed"] = "1" if filters.removed else ""
    parsed = parse_vm_filter(params)
    if parsed.notices:
        raise ApiError(400, " ".join(parsed.notices), {"filters": parsed.notices})
    rows = filter_vms(parsed).select_related("host__cluster", "share")
    items, cursor = keyset(rows, filters.cursor, filters.limit, key=(("name", str), ("pk", int)))
    return {"items": [vm_json(vm) for vm in items], "next_cursor": cursor}


@router.get("/vms/{vm_id}", response={200: VmDetailOut, **ERRORS}, summary="One VM, with its disks")
def vm(request, vm_id: uuid.UUID):
    disks = Prefetch("disks", queryset=VirtualDisk.objects.order_by("path"))
    found = VirtualMachine.objects.select_related("host__cluster", "share").prefetch_related(disks)
    found = found.filter(guid=vm_id).first()
    if found is None:
        raise Http404(f"There is no VM {vm_id}.")
    return vm_json(found, detail=True)
