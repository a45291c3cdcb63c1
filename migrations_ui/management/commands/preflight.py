"""manage.py preflight VM --to HOST: what kind of move, and what stands in the way.

Exit codes: 0 allowed, 3 blocked by a rule, 2 bad arguments.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from migrations_ui.lookup import NotFound, find_host, find_vm
from migrations_ui.preflight.assess import Preflight, vm_for_preflight
from migrations_ui.preflight.paths import path_problem
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "Run the pre-flight rules for moving a VM to a host (and optionally a storage path)."

    def add_arguments(self, parser):
        parser.add_argument("vm", help="VM name or GUID")
        parser.add_argument("--to", required=True, dest="to", help="destination host (FQDN or name)")
        parser.add_argument("--storage-path", default="", help="destination folder for the VM's files")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")

    def handle(self, *args, vm, to, storage_path, as_json, **options):
        try:
            machine = find_vm(vm, vm_for_preflight())
            destination = find_host(to)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        if storage_path and (problem := path_problem(storage_path)):
            raise CommandError(f"--storage-path: {problem}", returncode=2)
        result = Preflight(machine).assess_move(destination, storage_path=storage_path).as_json()
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self.stdout.write(_describe(result))
        if not result["allowed"]:
            sys.exit(3)


def _describe(result: dict) -> str:
    verdict = "allowed" if result["allowed"] else "BLOCKED"
    lines = [
        f"{result['vm']} -> {result['destination']}: {result['transfer_type'] or 'no transfer type'}, "
        f"{verdict}, {result['rating']} stars"
    ]
    for f in result["findings"]:
        lines.append(f"  [{f['severity']}] {f['rule']}: {f['message']}")
        if f["remedy"]:
            lines.append(f"      remedy: {f['remedy']}")
    return "\n".join(lines)
