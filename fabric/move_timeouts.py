"""Move timeouts of a host or a cluster: the console's own setting (not Hyper-V's), per host, per
cluster, with the global default from the console's settings (MOVE_STALL_TIMEOUT_S,
MOVE_TIMEOUT_S_PER_GIB). A move follows its source host's values (Move-VM runs there, and its
Msvm_MigrationJob lives there), else its cluster's, else the default. 0 turns a rule off; the
policy itself is migrations_ui/jobs/timeouts.py."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from fabric.models import Cluster, Host

FIELDS = ("move_stall_timeout_s", "move_timeout_s_per_gib", "move_timeout_retry_compression")
HOST, CLUSTER, DEFAULT = "host", "cluster", "default"
MAX_STALL_S = 24 * 3600  # a day without progress is no longer a timeout
MAX_PER_GIB_S = 3600  # an hour per GiB: about 0.3 MB/s


@dataclass(frozen=True)
class Effective:
    """The value that applies, and where it comes from (host | cluster | default)."""

    value: int
    source: str


def default(field: str) -> int | bool:
    return {
        "move_stall_timeout_s": settings.MOVE_STALL_TIMEOUT_S,
        "move_timeout_s_per_gib": settings.MOVE_TIMEOUT_S_PER_GIB,
        "move_timeout_retry_compression": settings.MOVE_TIMEOUT_RETRY_COMPRESSION,
    }[field]


def effective(host: Host, field: str) -> Effective:
    own = getattr(host, field)
    if own is not None:
        return Effective(own, HOST)
    if host.cluster_id is not None and (shared := getattr(host.cluster, field)) is not None:
        return Effective(shared, CLUSTER)
    return Effective(default(field), DEFAULT)


def effective_for_cluster(cluster: Cluster, field: str) -> Effective:
    own = getattr(cluster, field)
    return Effective(own, CLUSTER) if own is not None else Effective(default(field), DEFAULT)


def summary(target: Host | Cluster) -> list[dict]:
    """What the pages show: each rule's value that applies, where it comes from, the target's own."""
    find = effective_for_cluster if isinstance(target, Cluster) else effective
    return [
        {"field": f, "own": getattr(target, f), "effective": find(target, f), "default": default(f)} for f in FIELDS
    ]


def limits(host: Host) -> tuple[int, int]:
    """(stall seconds, seconds per GiB) for a move out of host; 0: that rule is off."""
    return tuple(effective(host, f).value for f in FIELDS[:2])


def retries_with_compression(host: Host) -> bool:
    """Whether a move out of host that ran into its completion limit is started once more with Compression."""
    return bool(effective(host, "move_timeout_retry_compression").value)


def change(target: Host | Cluster, values: dict, *, user=None, request=None) -> bool:
    """Set a host's or cluster's move timeouts (None: inherit); audited with before and after.
    False when nothing changed (and nothing is recorded)."""
    from audit.log import record

    before = {f: getattr(target, f) for f in FIELDS}
    after = {f: values.get(f) for f in FIELDS}
    if before == after:
        return False
    kind = "cluster" if isinstance(target, Cluster) else "host"
    with transaction.atomic():
        for field, value in after.items():
            setattr(target, field, value)
        target.save(update_fields=list(FIELDS))
        record(
            f"{kind}.move_timeouts_changed",
            request=request,
            actor=user,
            target=target,
            details={"before": before, "after": after},
        )
    return True
