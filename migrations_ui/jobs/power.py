"""Power for a maintenance, beyond a job's own: the VMs a pre-maintenance report chose to shut
down where they stay (the moves that save or shut down their VM do it in the runner)."""

from __future__ import annotations

import logging

from django.db import transaction

from audit.log import record
from audit.models import Outcome
from fabric.driver import get_driver
from fabric.hyperv.api import HyperVError
from fabric.models import VirtualMachine
from fabric.sync import connection_for, sync_inventory
from migrations_ui.jobs.emit import send_batch_update
from migrations_ui.models import Batch

log = logging.getLogger(__name__)


def shut_down_chosen(batch_id: int, driver=None) -> dict[str, str]:
    """Shut down the VMs an evacuation's report chose to shut down where they stay (Stop-VM -Force),
    one by one; record each outcome on the batch ("off", or the host's error) and in the audit trail,
    then refresh the host. Run by a worker; a run again after its worker died skips what is done."""
    batch = Batch.objects.select_related("host", "created_by").get(pk=batch_id)
    driver = driver or get_driver()
    conn = connection_for(batch.host)
    names = {
        str(g): n
        for g, n in VirtualMachine.objects.filter(guid__in=batch.plan["shut_down"]).values_list("guid", "name")
    }
    for vm_id in batch.plan["shut_down"]:
        if vm_id in batch.plan.get("shut_down_done", {}):
            continue
        try:
            driver.stop_vm(conn, vm_id)
            outcome = "off"
        except HyperVError as exc:
            outcome = exc.message
        with transaction.atomic():
            batch = Batch.objects.select_related("host", "created_by").select_for_update(of=("self",)).get(pk=batch_id)
            batch.plan.setdefault("shut_down_done", {})[vm_id] = outcome
            batch.save(update_fields=["plan"])
            record(
                "vm.shut_down",
                actor=batch.created_by,
                target_type="vm",
                target_id=vm_id,
                target_name=names.get(vm_id, vm_id),
                details={"batch": batch_id, "host": batch.host.fqdn, "outcome": outcome},
                outcome=Outcome.SUCCESS if outcome == "off" else Outcome.FAILURE,
            )
        transaction.on_commit(lambda: send_batch_update(batch_id))
    try:
        sync_inventory(driver, [batch.host])
    except Exception:  # the outcomes are recorded; the next sync shows the VMs off
        log.exception("batch %s: the inventory refresh after shutting VMs down failed", batch_id)
    return batch.plan["shut_down_done"]
