"""Changing hosts' and clusters' live-migration settings through the driver.

Hosts: Set-VMHost, Enable-/Disable-VMMigration, Add-/Remove-VMMigrationNetwork. Clusters: their
MaximumParallelMigrations (a constant script, see fabric.hyperv.powershell). The inventory keeps what
the host reads back after the change, not what was asked: the page shows the host's truth. Each host
(or cluster) is one audited change with its values before and after; one that refuses keeps its
values, and the refusal (Hyper-V's message) is the result shown for it.

Storage locations a user adds are the console's own list (the wizards offer them as destinations);
the host's default folders come from the host and change only through Set-VMHost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction

from fabric.hyperv.api import HostSettings, HyperVError
from fabric.hyperv.host_values import folder_problem, normal_subnet, server_not_fqdn, share_server, subnet_problem
from fabric.models import Cluster, Host, SmbShare, StorageLocation
from fabric.sync import connection_for, follow_default_locations
from utilities.texts import Msg

FIELDS = (
    "max_live_migrations",
    "max_storage_migrations",
    "performance_option",
    "auth_type",
    "migration_enabled",
    "use_any_network",
    "migration_networks",
    "vm_path",
    "vhd_path",
)


@dataclass
class HostResult:
    host: Host
    ok: bool
    before: dict
    after: dict
    error: str = ""


@dataclass
class ClusterResult:
    cluster: Cluster
    ok: bool
    before: int
    after: int
    error: str = ""


def current(host: Host) -> dict:
    return {name: list(v) if isinstance(v := getattr(host, name), (list, tuple)) else v for name in FIELDS}


def asked(wanted: HostSettings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(wanted).items() if v not in (None, ())}


# --- checking values before any host is asked --------------------------------------------------------


def subnets_problems(subnets: list[str]) -> list[str]:
    return [p for s in subnets if (p := subnet_problem(s))]


def normal_subnets(subnets: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normal_subnet(s) for s in subnets))


def path_problem(path: str) -> str | None:
    """Why a folder cannot be a host's default or a storage location: relative, or an SMB path that
    does not name its file server by FQDN (with the FQDN the inventory knows, when it knows one)."""
    if problem := folder_problem(path):
        return problem
    server = share_server(path)
    if server is None or not server_not_fqdn(server):
        return None
    known = (
        SmbShare.objects.filter(file_server__iexact=server)
        .exclude(file_server_fqdn="")
        .values_list("file_server_fqdn", flat=True)
        .first()
    )
    fix = f": write \\\\{known}\\{path[2:].split(chr(92), 1)[1]}" if known else ": write the file server's FQDN"
    return f"'{path}' names the file server '{server}' without its FQDN; Kerberos to the share would fail{fix}"


# --- hosts -------------------------------------------------------------------------------------------


def read_back(driver, host: Host) -> dict:
    """The host's settings as it reports them now (an empty change asks nothing and reads back)."""
    info = driver.set_host_settings(connection_for(host), HostSettings())
    return {name: list(v) if isinstance(v := getattr(info, name), tuple) else v for name in FIELDS}


def apply_settings(driver, hosts: list[Host], wanted: HostSettings, *, user=None, request=None) -> list[HostResult]:
    """Apply the same settings to each host; one result per host, in order."""
    from audit.log import record

    changes = asked(wanted)
    results = []
    for host in hosts:
        before = current(host)
        try:
            info = driver.set_host_settings(connection_for(host), wanted)
        except HyperVError as exc:
            with transaction.atomic():
                record(
                    "host.settings_refused",
                    request=request,
                    actor=user,
                    target=host,
                    details={"asked": changes, "code": exc.code, "message": exc.message},
                    outcome="failure",
                )
            results.append(HostResult(host, False, before, before, f"{exc.message} ({exc.code})"))
            continue
        with transaction.atomic():
            for name in FIELDS:
                value = getattr(info, name)
                setattr(host, name, list(value) if isinstance(value, tuple) else value)
            host.save(update_fields=list(FIELDS))
            follow_default_locations({host.pk: (host.vm_path, host.vhd_path)})
            after = current(host)
            record(
                "host.settings_changed",
                request=request,
                actor=user,
                target=host,
                details={"asked": changes, "before": before, "after": after},
            )
        results.append(HostResult(host, True, before, after))
    return results


# --- clusters ----------------------------------------------------------------------------------------


def apply_cluster_cap(driver, cluster: Cluster, value: int, *, user=None, request=None) -> ClusterResult:
    """Set a cluster's MaximumParallelMigrations through one of its reachable nodes; audited, read back."""
    from audit.log import record

    before = cluster.max_parallel_migrations
    node = cluster.nodes.filter(reachable=True).order_by("name").first()
    try:
        if node is None:
            raise HyperVError("unreachable", f"No node of {cluster.name} answered at the last sync")
        info = driver.set_cluster_parallel_migrations(connection_for(node), cluster.name, value)
    except HyperVError as exc:
        with transaction.atomic():
            record(
                "cluster.settings_refused",
                request=request,
                actor=user,
                target=cluster,
                details={"asked": {"max_parallel_migrations": value}, "code": exc.code, "message": exc.message},
                outcome="failure",
            )
        return ClusterResult(cluster, False, before, before, f"{exc.message} ({exc.code})")
    with transaction.atomic():
        cluster.max_parallel_migrations = info.max_parallel_migrations
        cluster.save(update_fields=["max_parallel_migrations"])
        record(
            "cluster.settings_changed",
            request=request,
            actor=user,
            target=cluster,
            details={
                "asked": {"max_parallel_migrations": value},
                "before": {"max_parallel_migrations": before},
                "after": {"max_parallel_migrations": cluster.max_parallel_migrations},
                "through": node.fqdn,
            },
        )
    return ClusterResult(cluster, True, before, cluster.max_parallel_migrations)


# --- storage locations (the console's list) ----------------------------------------------------------


def change_locations(hosts: list[Host], add: list[str], remove: list[str], *, user=None, request=None) -> list[str]:
    """Add or remove storage locations on each host (already checked with path_problem); what was done."""
    from audit.log import record

    done = []
    with transaction.atomic():
        for host in hosts:
            for path in add:
                location, created = StorageLocation.objects.get_or_create(
                    host=host, path=path, defaults={"added_by_user": True}
                )
                if created:
                    details = {"path": path}
                    record("host.storage_location_added", request=request, actor=user, target=host, details=details)
                    done.append(Msg("%(host)s: added %(path)s", host=host.name, path=path))
            for path in remove:
                # The host's own default folders are not the console's to remove: change them instead.
                gone = StorageLocation.objects.filter(host=host, path__iexact=path, is_default=False)
                for location in gone:
                    record(
                        "host.storage_location_removed",
                        request=request,
                        actor=user,
                        target=host,
                        details={"path": location.path},
                    )
                    done.append(Msg("%(host)s: removed %(path)s", host=host.name, path=location.path))
                gone.delete()
    return done
