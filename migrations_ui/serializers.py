"""The JSON form of a job, shared by the CLI (and later the API). Keys are a stable interface."""

from migrations_ui.models import MigrationJob


def _time(value):
    return value.isoformat() if value else None


def job_json(job: MigrationJob) -> dict:
    error = None
    if job.error_code or job.error_message:
        error = {"code": job.error_code, "message": job.error_message, "remedy": job.error_remedy}
    return {
        "id": job.pk,
        "vm": job.vm_name,
        "vm_id": str(job.vm.guid),
        "transfer_type": job.kind,
        "source": job.source.fqdn,
        "destination": job.destination.fqdn,
        "storage_path": job.storage_path,
        "vhds": job.vhds,
        "performance_option": job.performance_option or None,
        "state": job.state,
        "step": job.step or None,
        "percent": job.percent,
        "bytes_sent": job.bytes_sent,
        "bytes_remaining": job.bytes_remaining,
        "pass_number": job.pass_number,
        "transfer_rate_mbps": job.transfer_rate_mbps,
        "dirty_rate_mbps": job.dirty_rate_mbps,
        "blackout_ms": job.blackout_ms,
        "error": error,
        "findings": job.findings,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
    }
