"""Job state changes and progress samples: written as JobEvent rows, then announced after commit.

Every change of a job goes through record(), so the event log is complete and the browsers hear of
a change only once it is in the database (architecture.md: correctness never depends on the
channel layer).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from migrations_ui.models import FINAL_STATES, JobEvent, JobState, MigrationJob


def record(job: MigrationJob, kind: str, data: dict | None = None, **fields) -> JobEvent:
    """Apply `fields` to the job, save them and append an event, in one transaction."""
    with transaction.atomic():
        for name, value in fields.items():
            setattr(job, name, value)
        if fields.get("state") in FINAL_STATES and not job.finished_at:
            job.finished_at = timezone.now()
            fields["finished_at"] = job.finished_at
        if fields:
            job.save(update_fields=list(fields))
        last = JobEvent.objects.filter(job=job).aggregate(n=Max("sequence"))["n"] or 0
        event = JobEvent.objects.create(job=job, sequence=last + 1, kind=kind, data=data or {})
        transaction.on_commit(lambda: announce(job.pk))
    return event


def change_state(job: MigrationJob, state: str, data: dict | None = None, **fields) -> JobEvent:
    return record(job, "state", {"state": state, **(data or {})}, state=state, **fields)


def announce(job_id: int) -> None:
    """Tell every open browser; imported late so the worker needs channels only when it announces."""
    from migrations_ui.progress import send_job_update

    send_job_update(job_id)


__all__ = ["JobState", "announce", "change_state", "record"]
