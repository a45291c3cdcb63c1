"""What move_vm and move_storage share: submit, optionally wait with progress lines, exit codes.

Exit codes (architecture.md): 0 success (or queued without --wait), 1 the job failed or was
cancelled, 2 bad arguments, 3 blocked by a pre-flight rule.
"""

import json
import sys
import time

from django.core.management.base import CommandError

from migrations_ui.jobs import Refused
from migrations_ui.models import FINAL_STATES, JobState, MigrationJob
from migrations_ui.serializers import job_json

WAIT_POLL_S = 0.5


def submit(command, make_job, *, wait: bool, as_json: bool) -> None:
    try:
        job = make_job()
    except Refused as exc:
        if all(f.rule == "invalid-input" for f in exc.findings):
            raise CommandError("; ".join(f.message for f in exc.findings), returncode=2) from None
        report = {"allowed": False, "findings": [f.as_dict() for f in exc.findings]}
        if as_json:
            command.stdout.write(json.dumps(report, indent=2))
        else:
            for f in exc.findings:
                command.stderr.write(
                    f"[{f.severity}] {f.rule}: {f.message}" + (f"\n  remedy: {f.remedy}" if f.remedy else "")
                )
        sys.exit(3)
    if wait:
        job = _wait(command, job.pk, quiet=as_json)
    data = job_json(job)
    command.stdout.write(json.dumps(data, indent=2) if as_json else _describe(data))
    if job.state in (JobState.FAILED, JobState.CANCELLED):
        sys.exit(1)


def _wait(command, job_id: int, quiet: bool) -> MigrationJob:
    """Follow the job in the database until it ends; progress lines go to stderr with --json."""
    out = command.stderr if quiet else command.stdout
    last = None
    while True:
        job = MigrationJob.objects.select_related("vm", "source", "destination").get(pk=job_id)
        line = f"job {job.pk}: {job.get_state_display().lower()} {job.step or ''} {job.percent}%".replace("  ", " ")
        if line != last:
            out.write(line)
            last = line
        if job.state in FINAL_STATES:
            return job
        time.sleep(WAIT_POLL_S)


def _describe(data: dict) -> str:
    text = (
        f"job {data['id']}: {data['transfer_type']} migration of {data['vm']} -> {data['destination']}: {data['state']}"
    )
    if data["error"]:
        text += f"\n  {data['error']['code']}: {data['error']['message']}\n  remedy: {data['error']['remedy']}"
    return text
