"""Job state changes and progress samples: written as JobEvent rows, then announced after commit.

Every change of a job goes through record(), so the event log is complete and the browsers hear of
a change only once it is in the database (architecture.md: correctness never depends on the
channel layer).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from migrations_ui.models import FINAL_STATES, Batch, JobEvent, JobState, MigrationJob
from notifications.emit import notify
from notifications.models import EventKind


class LeaseLost(Exception):
    """The job was claimed by another holder (recovery, an operator's decision) since this writer read
    it: the writer stops and writes nothing more."""


def save_fields(job: MigrationJob, **fields) -> None:
    """Write `fields` of the job, fenced: only while the row still has the lease this instance was
    read with. An update even with nothing to write, so the check holds the row's write lock (SQLite:
    the database's) until the caller's transaction ends; raises LeaseLost when the lease moved on."""
    written = MigrationJob.objects.filter(pk=job.pk, lease=job.lease).update(**(fields or {"lease": job.lease}))
    if not written:
        raise LeaseLost(f"job {job.pk}: lease {job.lease} was taken")
    for name, value in fields.items():
        setattr(job, name, value)


def record(job: MigrationJob, kind: str, data: dict | None = None, **fields) -> JobEvent:
    """Apply `fields` to the job (fenced, see save_fields) and append an event, in one transaction."""
    with transaction.atomic():
        if fields.get("state") in FINAL_STATES and not job.finished_at:
            fields["finished_at"] = timezone.now()
        save_fields(job, **fields)
        last = JobEvent.objects.filter(job=job).aggregate(n=Max("sequence"))["n"] or 0
        event = JobEvent.objects.create(job=job, sequence=last + 1, kind=kind, data=data or {})
        transaction.on_commit(lambda: announce(job.pk))
    return event


AUDITED_STATES = {
    JobState.RUNNING: "started",
    JobState.SUCCEEDED: "succeeded",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "cancelled",
    JobState.UNKNOWN: "unknown",
}


def change_state(job: MigrationJob, state: str, data: dict | None = None, **fields) -> JobEvent:
    with transaction.atomic():
        event = record(job, "state", {"state": state, **(data or {})}, state=state, **fields)
        if state in AUDITED_STATES:
            audit_job(job, AUDITED_STATES[state], actor=job.requested_by)
        if state in FINAL_STATES:
            notify_final(job)
    return event


def notify_final(job: MigrationJob) -> None:
    """Webhooks and e-mail (notifications): a job succeeded or failed; its batch finished. No URLs: a
    reverse() would load the URLconf, and with it the pages, into the worker."""
    facts = {
        "job": job.pk,
        "vm": job.vm_name,
        "transfer_type": job.kind,
        "state": job.state,
    }
    facts.update(source=job.source.fqdn, destination=job.destination.fqdn, batch=job.batch_id)
    if job.error_code:
        facts["error"] = {"code": job.error_code, "message": job.error_message}
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        notify(EventKind.JOB_SUCCEEDED if job.state == JobState.SUCCEEDED else EventKind.JOB_FAILED, facts)
    if job.batch_id is None:
        return
    # The batch's row lock orders two of its jobs ending at once: the later one sees the other ended.
    list(Batch.objects.select_for_update().filter(pk=job.batch_id).values_list("pk"))
    if not MigrationJob.objects.filter(batch_id=job.batch_id).exclude(state__in=FINAL_STATES).exists():
        counts = dict(
            MigrationJob.objects.filter(batch_id=job.batch_id).values_list("state").order_by().annotate(n=Count("pk"))
        )
        batch = {"batch": job.batch_id, "name": job.batch.name, "kind": job.batch.kind, "jobs": counts}
        notify(EventKind.BATCH_FINISHED, batch, key=f"batch-{job.batch_id}")


def audit_job(job: MigrationJob, what: str, actor=None, request=None, **details) -> None:
    """One audit event for a job, in the caller's transaction: migration.<what> or storage_move.<what>."""
    from audit.log import record as audit

    # Unknown: the console lost sight of the move (the host stopped answering), not a success.
    outcome = {"failed": "failure", "unknown": "failure"}.get(what, "success")
    facts = {
        "job": job.pk,
        "transfer_type": job.kind,
        "source": job.source.fqdn,
        "destination": job.destination.fqdn,
        "storage_path": job.storage_path,
        **details,
    }
    if job.error_code:
        facts["error"] = {"code": job.error_code, "message": job.error_message}
    action = ("storage_move." if job.kind == "storage" else "migration.") + what
    audit(action, actor=actor, request=request, target=job.vm, details=facts, outcome=outcome)


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="announce")
_pending: set[int] = set()
_pending_lock = threading.Lock()


def announce(job_id: int) -> None:
    """Tell every open browser (migrations_ui.jobs.emit). In the background, coalesced per job: sending
    must not delay the worker's next step (a freed slot is handed on within milliseconds); a dropped
    announcement costs nothing, browsers get the state from the database on (re)connect."""
    if not settings.ANNOUNCE_IN_BACKGROUND:
        _send(job_id)
        return
    with _pending_lock:
        if job_id in _pending:
            return
        _pending.add(job_id)
    _executor.submit(_send, job_id, True)


def flush(timeout: float = 5.0) -> None:
    """Wait until the announcements made so far are sent (a command about to exit calls this)."""
    # A slow layer must not hold a command up for long, nor fail it: give up after the timeout.
    with contextlib.suppress(TimeoutError):
        _executor.submit(lambda: None).result(timeout)


def _send(job_id: int, background: bool = False) -> None:
    from migrations_ui.jobs.emit import exiting, send_job_update

    if background:
        with _pending_lock:
            _pending.discard(job_id)
        if exiting():
            # Nothing can be sent any more: reading the job first would only hold the exit up.
            return
    send_job_update(job_id)


__all__ = ["JobState", "LeaseLost", "announce", "change_state", "record", "save_fields"]
