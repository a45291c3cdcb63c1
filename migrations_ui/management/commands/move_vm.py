"""manage.py move_vm VM --to HOST: queue a migration (pre-flight first), optionally wait for it."""

from django.core.management.base import BaseCommand, CommandError

from access import Perm
from fabric.models import PerformanceOption
from migrations_ui.cli import acting_user, add_user_argument, submit
from migrations_ui.jobs.operations import create_job
from migrations_ui.lookup import NotFound, find_host, find_vm
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "Migrate a VM to another host. Exit codes: 0 done/queued, 1 failed, 2 bad arguments, 3 blocked."

    def add_arguments(self, parser):
        parser.add_argument("vm", help="VM name or GUID")
        parser.add_argument("--to", required=True, help="destination host (FQDN or name)")
        parser.add_argument("--storage-path", default="", help="move the files too (Live VSM), to this folder")
        parser.add_argument(
            "--performance", choices=PerformanceOption.values, default="", help="transport for this move"
        )
        parser.add_argument("--priority", type=int, default=0, help="higher runs first among waiting jobs")
        parser.add_argument("--wait", action="store_true", help="wait for the end, printing progress")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the job as JSON")
        add_user_argument(parser)

    def handle(self, *args, vm, to, storage_path, performance, priority, wait, as_json, user, **options):
        actor = acting_user(user, Perm.MIGRATE)
        try:
            machine, destination = find_vm(vm), find_host(to)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        make = lambda: create_job(  # noqa: E731
            machine,
            destination,
            storage_path=storage_path,
            performance_option=performance,
            priority=priority,
            user=actor,
        )
        submit(self, make, wait=wait, as_json=as_json)
