"""manage.py move_storage VM --to-path P [--vhd SRC=DST ...]: move a VM's files on its own host."""

from django.core.management.base import BaseCommand, CommandError

from access import Perm
from fabric.hyperv.host_values import renamed_vhd
from migrations_ui.cli import acting_user, add_user_argument, submit
from migrations_ui.jobs.operations import create_job
from migrations_ui.lookup import NotFound, find_vm
from utilities.commands import NoSystemChecks


def _pair(text: str) -> tuple[str, str]:
    src, sep, dst = text.partition("=")
    if not sep or not src or not dst:
        raise CommandError(f"--vhd {text!r}: write SOURCE=DESTINATION", returncode=2)
    if problem := renamed_vhd(src, dst):
        # Move-VMStorage refuses it (its -Vhds help): refused here, before anything is recorded or sent.
        raise CommandError(f"--vhd {text!r}: {problem}. Give the same file name in another folder.", returncode=2)
    return src, dst


class Command(NoSystemChecks, BaseCommand):
    help = "Migrate a VM's storage on its host (the whole VM, or selected VHDs with --vhd SRC=DST)."

    def add_arguments(self, parser):
        parser.add_argument("vm", help="VM name or GUID")
        parser.add_argument("--to-path", required=True, help="destination folder (for the whole VM)")
        parser.add_argument("--vhd", action="append", default=[], help="move only this disk: SOURCE=DESTINATION")
        parser.add_argument(
            "--add-default-location", action="store_true", help="add the folder to the host's locations"
        )
        parser.add_argument("--wait", action="store_true", help="wait for the end, printing progress")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the job as JSON")
        add_user_argument(parser)

    def handle(self, *args, vm, to_path, vhd, add_default_location, wait, as_json, user, **options):
        actor = acting_user(user, Perm.MIGRATE)
        try:
            machine = find_vm(vm)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        vhds = tuple(_pair(v) for v in vhd)
        make = lambda: create_job(  # noqa: E731
            machine,
            machine.host,
            storage_path="" if vhds else to_path,
            vhds=vhds,
            add_location=to_path if add_default_location else "",
            user=actor,
        )
        submit(self, make, wait=wait, as_json=as_json)
