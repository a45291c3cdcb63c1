"""The drift guard: live-migration settings that disagree where they should agree (pure).

Nodes of one cluster should share performance option, authentication, limits and whether live
migration is enabled; a cluster's MaximumParallelMigrations below its nodes' own limit silently
caps them ("my hosts keep going back to 1", hyperv.md section 3); a standalone host whose
performance option differs from the rest of the fabric is worth a look too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from utilities.texts import Msg

# Reasons are Msg texts: the drift command prints them in English, the hosts page translates them.
LABELS = {
    "performance_option": Msg("performance option"),
    "auth_type": Msg("authentication"),
    "max_live_migrations": Msg("simultaneous live migrations"),
    "max_storage_migrations": Msg("simultaneous storage migrations"),
    "migration_enabled": Msg("live migration enabled"),
}
SHOWN = {
    "tcpip": "TCP/IP",
    "compression": Msg("Compression"),
    "smb": "SMB",
    "kerberos": "Kerberos",
    "credssp": "CredSSP",
}


@dataclass(frozen=True)
class HostSettingsView:
    fqdn: str
    name: str
    cluster: str | None
    cluster_max_parallel: int | None
    performance_option: str
    auth_type: str
    max_live_migrations: int
    max_storage_migrations: int
    migration_enabled: bool


def _show(value) -> str:
    if isinstance(value, bool):
        return Msg("yes") if value else Msg("no")
    return SHOWN.get(value, str(value))


def find_drift(hosts: list[HostSettingsView]) -> dict[str, list[str]]:
    """Host FQDN -> reasons, for every flagged host."""
    flags: dict[str, list[str]] = {}
    clusters: dict[str, list[HostSettingsView]] = {}
    for host in hosts:
        if host.cluster:
            clusters.setdefault(host.cluster, []).append(host)
    for cluster, nodes in sorted(clusters.items()):
        for field, label in LABELS.items():
            values = Counter(getattr(n, field) for n in nodes)
            if len(values) > 1:
                summary = tuple(Msg("%(value)s on %(count)s", value=_show(v), count=c) for v, c in values.most_common())
                for node in nodes:
                    flags.setdefault(node.fqdn, []).append(
                        Msg(
                            "nodes of %(cluster)s differ in %(setting)s: %(summary)s",
                            cluster=cluster,
                            setting=label,
                            summary=summary,
                        )
                    )
        for node in nodes:
            cap = node.cluster_max_parallel
            if cap is not None and cap < node.max_live_migrations:
                flags.setdefault(node.fqdn, []).append(
                    Msg(
                        "cluster %(cluster)s caps live migrations at %(cap)s (MaximumParallelMigrations) "
                        "while %(host)s is set to %(limit)s",
                        cluster=cluster,
                        cap=cap,
                        host=node.name,
                        limit=node.max_live_migrations,
                    )
                )
    standalone = [h for h in hosts if not h.cluster]
    usual = Counter(h.performance_option for h in hosts).most_common(1)
    if usual and len(hosts) > 2:
        common, count = usual[0]
        for host in standalone:
            if host.performance_option != common:
                flags.setdefault(host.fqdn, []).append(
                    Msg(
                        "performance option %(option)s differs from the rest of the fabric "
                        "(%(common)s on %(count)s hosts)",
                        option=_show(host.performance_option),
                        common=_show(common),
                        count=count,
                    )
                )
    return flags
