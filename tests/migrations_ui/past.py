"""Finished jobs as the runner leaves them, for the history page and the measured links."""

from datetime import timedelta

from django.utils import timezone

from migrations_ui.models import MigrationJob

GIB = 1024**3


def finished_job(
    vm,
    source,
    destination,
    *,
    kind="live",
    state="succeeded",
    memory_gib=4,
    sent_gib=None,
    move_s=20.0,
    took_s=None,
    passes=3,
    blackout_ms=120,
    finished_at=None,
    user=None,
) -> MigrationJob:
    """A job that ended: Move-VM ran move_s (wall seconds), the whole job took_s (move_s + 4 by default)."""
    finished_at = finished_at or timezone.now()
    took_s = move_s + 4.0 if took_s is None else took_s
    started = finished_at - timedelta(seconds=took_s)
    requested = started + timedelta(seconds=2)
    return MigrationJob.objects.create(
        kind=kind,
        vm=vm,
        vm_name=vm.name,
        memory_bytes=memory_gib * GIB,
        source=source,
        destination=destination,
        state=state,
        percent=100 if state == "succeeded" else 40,
        bytes_sent=int((memory_gib if sent_gib is None else sent_gib) * GIB),
        pass_number=passes,
        blackout_ms=blackout_ms if state == "succeeded" else None,
        started_at=started,
        move_requested_at=requested,
        slots_released_at=requested + timedelta(seconds=move_s),
        finished_at=finished_at,
        requested_by=user,
        error_code="" if state == "succeeded" else "0x80070005",
        error_message="" if state == "succeeded" else "Access denied",
    )
