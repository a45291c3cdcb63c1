"""What move_vm and move_storage share: submit, optionally wait with progress lines, exit codes.

Exit codes (architecture.md): 0 success (or queued without --wait), 1 the job failed or was
cancelled, 2 bad arguments, 3 blocked by a pre-flight rule.
"""

import json
import os
import sys
import time

from django.core.management.base import CommandError

from migrations_ui.jobs.events import flush
from migrations_ui.jobs.operations import Refused
from migrations_ui.models import FINAL_STATES, JobState, MigrationJob
from migrations_ui.serializers import job_json

WAIT_POLL_S = 0.5


def add_user_argument(parser) -> None:
    parser.add_argument(
        "--user",
        default=os.environ.get("CONSOLE_CLI_USER", ""),
        help="the console user this command acts as (audited); default $CONSOLE_CLI_USER, else the first administrator",
    )


def acting_user(name: str, perm: str):
    """The console user a command acts as; refused (audited) when unknown or without the permission.

    Without a name: the first active superuser, or None when there is none yet (a fresh install
    driven from the shell: whoever runs manage.py holds the database anyway; the audit trail names
    the shell user as cli:<login>)."""
    from django.contrib.auth import get_user_model

    from access import can
    from audit.log import record

    users = get_user_model().objects.filter(is_active=True)
    if not name:
        return users.filter(is_superuser=True).order_by("pk").first()
    user = users.filter(username=name).first()
    if user is None:
        raise CommandError(f"--user {name}: no active console user of that name", returncode=2)
    if not can(user, perm):
        command = sys.argv[1] if len(sys.argv) > 1 else ""
        details = {"permission": perm}
        record(
            "permission_denied",
            actor=user,
            target_type="command",
            target_name=command,
            details=details,
            outcome="denied",
        )
        raise CommandError(f"--user {name}: this user's role does not allow it ({perm})", returncode=2)
    return user


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
    flush()  # open pages hear of the new job before this process exits
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
