"""The drift guard: live-migration settings that disagree where they should agree (pure).

Nodes of one cluster should share performance option, authentication, limits and whether live
migration is enabled; a cluster's MaximumParallelMigrations below its nodes' own limit silently
caps them ("my hosts keep going back to 1", hyperv.md section 3); a standalone host whose
performance option differs from the rest of the fabric is worth a look too.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

LABELS = {
    "performance_option": "performance option",
    "auth_type": "authentication",
    "max_live_migrations": "simultaneous live migrations",
    "max_storage_migrations": "simultaneous storage migrations",
    "migration_enabled": "live migration enabled",
}
SHOWN = {"tcpip": "TCP/IP", "compression": "Compression", "smb": "SMB", "kerberos": "Kerberos", "credssp": "CredSSP"}


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
        return "yes" if value else "no"
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
                summary = ", ".join(f"{_show(v)} on {c}" for v, c in values.most_common())
                for node in nodes:
                    flags.setdefault(node.fqdn, []).append(f"nodes of {cluster} differ in {label}: {summary}")
        for node in nodes:
            cap = node.cluster_max_parallel
            if cap is not None and cap < node.max_live_migrations:
                flags.setdefault(node.fqdn, []).append(
                    f"cluster {cluster} caps live migrations at {cap} (MaximumParallelMigrations) "
                    f"while {node.name} is set to {node.max_live_migrations}"
                )
    standalone = [h for h in hosts if not h.cluster]
    usual = Counter(h.performance_option for h in hosts).most_common(1)
    if usual and len(hosts) > 2:
        common, count = usual[0]
        for host in standalone:
            if host.performance_option != common:
                flags.setdefault(host.fqdn, []).append(
                    f"performance option {_show(host.performance_option)} differs from the rest of the fabric "
                    f"({_show(common)} on {count} hosts)"
                )
    return flags
