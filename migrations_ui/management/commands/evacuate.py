"""manage.py evacuate HOST: plan moving every VM off a host (maintenance), and run the plan.

--plan-only prints the plan (architecture.md's evacuation plan JSON); otherwise the moves are queued
in plan order, and --wait follows them to the end. Exit 0 done (or queued), 1 a move failed,
2 bad arguments."""

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from access import Perm
from migrations_ui.cli import acting_user, add_user_argument
from migrations_ui.jobs.batches import BatchRefused, evacuation_start_refusal, start_batch
from migrations_ui.jobs.events import flush
from migrations_ui.lookup import NotFound, find_host
from migrations_ui.models import FINAL_STATES, BatchKind, JobState, MigrationJob
from migrations_ui.planning.inventory import evacuation_plan
from migrations_ui.serializers import job_json


class Command(BaseCommand):
    help = "Plan (and run) the evacuation of a host: every VM to another host, within every host's slots."

    def add_arguments(self, parser):
        parser.add_argument("host", help="host FQDN or short name")
        parser.add_argument("--plan-only", action="store_true", help="print the plan, move nothing")
        parser.add_argument("--move-stopped", action="store_true", help="copy stopped and saved VMs offline too")
        parser.add_argument("--wait", action="store_true", help="follow the moves to the end")
        parser.add_argument("--json", action="store_true", dest="as_json")
        add_user_argument(parser)

    def handle(self, *args, host, plan_only, move_stopped, wait, as_json, user, **options):
        try:
            source = find_host(host)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        actor = None if plan_only else acting_user(user, Perm.EVACUATE)
        plan = evacuation_plan(source, move_stopped=move_stopped)
        data = plan.as_json()
        if plan_only:
            from audit.log import record

            summary = {"moves": len(plan.moves), "left": len(plan.left), "makespan_s": data["makespan_s"]}
            record("evacuation.planned", target=source, target_type="host", details=summary)
            self.stdout.write(json.dumps(data, indent=2) if as_json else _describe(data))
            return
        if refusal := evacuation_start_refusal(source):
            raise CommandError(refusal, returncode=1)
        # The same service as the Evacuate page: a batch, the host in maintenance, jobs in plan order.
        try:
            batch = start_batch(
                plan,
                BatchKind.EVACUATION,
                f"Evacuate {source.name}",
                host=source,
                move_stopped=move_stopped,
                user=actor,
            )
        except BatchRefused as exc:
            raise CommandError(str(exc), returncode=1) from None
        jobs, refused = list(batch.jobs.order_by("pk")), batch.plan["refused"]
        flush()
        if wait:
            jobs = _follow(self, [j.pk for j in jobs], quiet=as_json)
        result = {"plan": data, "batch": batch.pk, "jobs": [job_json(j) for j in jobs], "refused": refused}
        self.stdout.write(json.dumps(result, indent=2) if as_json else _describe(data) + f"\nqueued {len(jobs)} moves")
        if any(j.state in (JobState.FAILED, JobState.CANCELLED) for j in jobs) or refused:
            sys.exit(1)


def _follow(command, ids: list[int], quiet: bool) -> list[MigrationJob]:
    out = command.stderr if quiet else command.stdout
    last = ""
    while True:
        jobs = list(MigrationJob.objects.filter(pk__in=ids).select_related("vm", "source", "destination"))
        counts = {s: sum(j.state == s for j in jobs) for s in JobState.values}
        line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        if line != last:
            out.write(line)
            last = line
        if all(j.state in FINAL_STATES for j in jobs):
            return sorted(jobs, key=lambda j: j.pk)
        time.sleep(0.5)


def _describe(data: dict) -> str:
    lines = [
        f"evacuate {data['host']}: {len(data['moves'])} moves, makespan {data['makespan_s']} s "
        f"(lower bound {data['lower_bound_s']} s)"
    ]
    for m in data["moves"]:
        lines.append(f"  {m['vm']} -> {m['destination']} ({m['transfer_type']}) {m['start_s']}-{m['end_s']} s")
    for left in data["left"]:
        lines.append(f"  left: {left['vm']}: {left['reason']}")
    for cap in data.get("link_caps", []):  # as the plan pages say it (planning.planner.LinkCap)
        lines.append(
            f"  link: {cap['host']} runs at most {cap['cap']} of these moves at once (limit {cap['limit']}): its "
            f"{cap['nic_gbps']:g} Gbit/s link is the bottleneck; a higher live-migration limit would not help"
        )
    return "\n".join(lines)
