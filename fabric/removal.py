"""Removing a host from the console: what an administrator does after adding a wrong one, or when a
host leaves service. Nothing is asked of the host; the console forgets it, its credential (the
secret goes with it) and its inventory (VMs, their disks no other VM uses, storage locations).

A host that migration jobs or batches name stays: jobs are the record of what moved, and their
foreign keys protect the hosts and VMs they name. Removing such a host is refused with that reason.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import ProtectedError

from fabric.models import Host, VirtualDisk, VirtualMachine
from utilities.texts import Msg


class CannotRemove(Exception):
    """Why the host stays; nothing was changed."""


def remove_host(host: Host, *, user=None, request=None) -> None:
    from audit.log import record

    try:
        with transaction.atomic():
            vms = VirtualMachine.objects.filter(host=host)
            details = {"address": host.address, "vms": vms.count(), "last_sync": str(host.last_sync or "")}
            disks = list(VirtualDisk.objects.filter(vms__host=host).values_list("pk", flat=True).distinct())
            # Django gathers what protects a row before it deletes anything: a refusal deletes nothing.
            vms.delete()
            VirtualDisk.objects.filter(pk__in=disks, vms=None).delete()
            fqdn, pk = host.fqdn, host.pk
            host.delete()
            record("host.remove", request=request, actor=user, target_type="host", target_id=str(pk),
                   target_name=fqdn, details=details)  # fmt: skip
    except ProtectedError as exc:
        raise CannotRemove(
            Msg(
                "%(host)s stays: %(n)s migration jobs or batches name it or its VMs, and they are the record of "
                "what moved. A host out of service that no longer answers shows as unreachable.",
                host=host.name,
                n=len(exc.protected_objects),
            )
        ) from exc
