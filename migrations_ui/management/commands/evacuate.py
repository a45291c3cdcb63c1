"""manage.py evacuate HOST: plan moving every VM off a host (maintenance), and run the plan.

--plan-only prints the plan (architecture.md's evacuation plan JSON, with the pre-maintenance report
under "report": the VMs that cannot move live, why, their choices and defaults); otherwise the moves
are queued in plan order, and --wait follows them to the end. --choice VM=CHOICE (repeatable) decides
for a VM of the report (save_move, shut_down_move, shut_down_stay, leave_running; move_offline or stay
when off or saved); a VM not named gets its kept default. Exit 0 done (or queued), 1 a move failed,
2 bad arguments."""

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError

from access import Perm
from migrations_ui.cli import acting_user, add_user_argument
from migrations_ui.jobs.batches import BatchRefused, evacuation_start_refusal, start_evacuation
from migrations_ui.jobs.events import flush
from migrations_ui.lookup import NotFound, find_host
from migrations_ui.models import FINAL_STATES, JobState, MigrationJob
from migrations_ui.planning.inventory import evacuation
from migrations_ui.planning.report import CHOICES
from migrations_ui.serializers import job_json
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "Plan (and run) the evacuation of a host: every VM to another host, within every host's slots."

    def add_arguments(self, parser):
        parser.add_argument("host", help="host FQDN or short name")
        parser.add_argument("--plan-only", action="store_true", help="print the plan, move nothing")
        parser.add_argument("--move-stopped", action="store_true", help="copy stopped and saved VMs offline too")
        parser.add_argument(
            "--choice",
            action="append",
            default=[],
            metavar="VM=CHOICE",
            help="what happens to a VM that cannot move live (repeatable): " + ", ".join(CHOICES),
        )
        parser.add_argument("--wait", action="store_true", help="follow the moves to the end")
        parser.add_argument("--json", action="store_true", dest="as_json")
        add_user_argument(parser)

    def handle(self, *args, host, plan_only, move_stopped, choice, wait, as_json, user, **options):
        try:
            source = find_host(host)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        asked = dict(_pair(text) for text in choice)
        actor = None if plan_only else acting_user(user, Perm.EVACUATE)
        report, chosen = evacuation(source, move_stopped=move_stopped, choices=asked)
        if wrong := report.refused(report.by_id(asked)):
            raise CommandError(" ".join(wrong.values()), returncode=2)
        plan = chosen.plan
        data = plan.as_json()
        if plan_only:
            from audit.log import record

            summary = {"moves": len(plan.moves), "left": len(plan.left), "makespan_s": data["makespan_s"]}
            record("evacuation.planned", target=source, target_type="host", details=summary)
            data["report"] = report.as_json()
            self.stdout.write(json.dumps(data, indent=2) if as_json else _describe(data) + _describe_report(report))
            return
        if refusal := evacuation_start_refusal(source):
            raise CommandError(refusal, returncode=1)
        # The same service as the Evacuate page: a batch, the host in maintenance, jobs in plan order.
        try:
            batch = start_evacuation(source, chosen, move_stopped=move_stopped, user=actor)
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


def _pair(text: str) -> tuple[str, str]:
    vm, _, choice = text.partition("=")
    if not vm or choice not in CHOICES:
        raise CommandError(f"--choice {text}: give VM=CHOICE, CHOICE one of {', '.join(CHOICES)}", returncode=2)
    return vm, choice


def _describe_report(report) -> str:
    """The pre-maintenance report as the printable page words it, in English."""
    if not report.rows:
        return "\nevery VM can move live: nothing to choose"
    lines = ["", f"cannot move live ({len(report.rows)}):"]
    for row in report.rows:
        why = "; ".join(f"{f.rule}: {f.message} Remedy: {f.remedy}" for f in row.findings)
        kept = " (kept)" if row.kept else ""
        lines.append(f"  {row.vm.name} ({row.vm.state}): {why}")
        lines.append(f"    choice {row.default}{kept}; possible: {', '.join(row.choices)}")
        lines += [f"    not possible: {c}: {why}" for c, why in row.unavailable]
    return "\n".join(lines)


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
