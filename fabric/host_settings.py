"""Changing hosts' live-migration settings through the driver (Set-VMHost, Enable-/Disable-VMMigration).

The inventory keeps what the host reads back after the change, not what was asked: the page shows
the host's truth. Each host is one audited change with its values before and after; a host that
refuses keeps its values, and the refusal (Hyper-V's message) is the result shown for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction

from fabric.hyperv.api import HostSettings, HyperVError
from fabric.models import Host
from fabric.sync import connection_for

FIELDS = ("max_live_migrations", "max_storage_migrations", "performance_option", "auth_type", "migration_enabled")


@dataclass
class HostResult:
    host: Host
    ok: bool
    before: dict
    after: dict
    error: str = ""


def current(host: Host) -> dict:
    return {name: getattr(host, name) for name in FIELDS}


def apply_settings(driver, hosts: list[Host], wanted: HostSettings, *, user=None, request=None) -> list[HostResult]:
    """Apply the same settings to each host; one result per host, in order."""
    from audit.log import record

    changes = {k: v for k, v in asdict(wanted).items() if v is not None}
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
                setattr(host, name, getattr(info, name))
            host.save(update_fields=list(FIELDS))
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
