"""Maintenance windows: an evacuation, a selection or a move back started at a set time, and a
deadline after which a batch starts no more moves.

Both are the workers' supervisor's work (every tick, whichever worker ticks first), so they need no
process of their own and survive restarts: the window is a row, due when its time has come. A
window whose deadline passed before any worker could start it (the workers were down through the
whole window) is not started late: it says so. At a batch's deadline its queued moves end
cancelled with the reason; moves already starting or running finish.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from fabric.models import VirtualMachine
from migrations_ui.jobs.batches import (
    BatchRefused,
    evacuation_start_refusal,
    start_batch,
    start_evacuation,
    start_move_back,
)
from migrations_ui.jobs.events import change_state
from migrations_ui.models import BatchKind, JobState, MaintenanceWindow, MigrationJob, WindowState
from migrations_ui.planning.inventory import evacuation, selection_plan
from notifications.emit import notify
from notifications.models import EventKind
from utilities.db import serialize_writers
from utilities.texts import Msg

log = logging.getLogger(__name__)

NOT_STARTED = gettext_noop("Not started: the maintenance window's deadline passed before a slot was free.")
NOT_STARTED_REMEDY = gettext_noop("Schedule it again, or move it by hand.")


def tick(now: datetime | None = None) -> None:
    start_due_windows(now)
    stop_at_deadlines(now)


def start_due_windows(now: datetime | None = None) -> list[MaintenanceWindow]:
    """Start every scheduled window whose time has come; returns those handled."""
    now = now or timezone.now()
    handled = []
    with transaction.atomic():
        serialize_writers("maintenance-windows")  # several workers' supervisors start a window once
        due = MaintenanceWindow.objects.filter(state=WindowState.SCHEDULED, starts_at__lte=now)
        for window in due.select_related("host", "destination", "evacuation__host", "created_by"):
            _start(window, now)
            handled.append(window)
    return handled


def _start(window: MaintenanceWindow, now: datetime) -> None:
    from audit.log import record

    if window.deadline is not None and window.deadline <= now:
        deadline = window.deadline.isoformat(timespec="minutes")
        refused = Msg("The deadline (%(deadline)s) passed before a worker could start the window.", deadline=deadline)
        return _refused(window, refused, record)
    try:
        batch = _start_batch(window)
    except BatchRefused as exc:
        return _refused(window, exc.args[0], record)
    if batch is not None and window.deadline is not None:
        batch.deadline = window.deadline
        batch.save(update_fields=["deadline"])
    window.state, window.batch = WindowState.STARTED, batch
    window.save(update_fields=["state", "batch"])
    details = {"window": window.pk, "batch": batch.pk if batch else None}
    record("window.started", actor=window.created_by, target_type="window", target_id=str(window.pk), details=details)
    notify(EventKind.WINDOW_STARTING, {**details, "name": window.name, "kind": window.kind})  # webhooks, e-mail


def _start_batch(window: MaintenanceWindow):
    user = window.created_by
    if window.kind == BatchKind.EVACUATION:
        if refusal := evacuation_start_refusal(window.host):
            raise BatchRefused(refusal)
        # What the pre-maintenance report last chose for each VM (its kept default) is carried out.
        _report, chosen = evacuation(window.host, move_stopped=window.move_stopped)
        return start_evacuation(window.host, chosen, move_stopped=window.move_stopped, user=user)
    if window.kind == BatchKind.MOVE_BACK:
        return start_move_back(window.evacuation, user=user)
    vms = list(VirtualMachine.objects.filter(guid__in=window.vm_ids, removed=False).select_related("host"))
    plan = selection_plan(vms, window.destination, move_stopped=window.move_stopped)
    return start_batch(plan, BatchKind.SELECTION, window.name, move_stopped=window.move_stopped, user=user)


def _refused(window: MaintenanceWindow, reason, record) -> None:
    window.state, window.outcome = WindowState.REFUSED, {"reason": str(reason)}
    if isinstance(reason, Msg):  # so that the page can say it in its reader's language (finding_text)
        window.outcome["i18n"] = {"reason": reason.as_stored()}
    window.save(update_fields=["state", "outcome"])
    log.warning("maintenance window %s not started: %s", window.pk, reason)
    details = {"window": window.pk, "reason": str(reason)}
    record(
        "window.refused",
        actor=window.created_by,
        target_type="window",
        target_id=str(window.pk),
        details=details,
        outcome="failure",
    )


def stop_at_deadlines(now: datetime | None = None) -> int:
    """End the queued moves of every batch whose deadline passed; returns how many."""
    now = now or timezone.now()
    stopped = 0
    late = MigrationJob.objects.filter(batch__deadline__lte=now, state=JobState.QUEUED)
    for job in late.select_related("batch", "vm", "source", "destination", "requested_by"):
        with transaction.atomic():
            # Only if it is still queued: a worker may have admitted it meanwhile (then it runs).
            if MigrationJob.objects.filter(pk=job.pk, state=JobState.QUEUED).update(state=JobState.CANCELLED):
                fields = {"error_code": "deadline", "error_message": NOT_STARTED, "error_remedy": NOT_STARTED_REMEDY}
                change_state(job, JobState.CANCELLED, {"deadline": job.batch.deadline.isoformat()}, **fields)
                stopped += 1
    return stopped
