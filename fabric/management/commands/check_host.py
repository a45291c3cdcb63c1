"""manage.py check_host HOST [--json]: every check a move depends on, against one host, read-only.

HOST is a host of the inventory (FQDN or short name): the check logs on with that host's stored
credential, as the console does. It changes nothing on the host or in the database except one
audit row (host.checked). Exit codes: 0 no check failed (warnings allowed), 1 a check failed,
2 the host is not in the inventory.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from fabric.host_check import TITLES
from fabric.host_probe import run_check
from fabric.models import Host
from utilities.commands import NoSystemChecks

MARKS = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "unknown": "?   "}


def find_host(text: str) -> Host:
    host = Host.objects.filter(fqdn__iexact=text).first() or Host.objects.filter(name__iexact=text).first()
    if host is None:
        raise CommandError(
            f"no host {text!r} in the inventory; register it first (the admin pages, or seed_demo for the "
            "emulated fabric), with its WinRM address and credential",
            returncode=2,
        )
    return host


class Command(NoSystemChecks, BaseCommand):
    help = "Check a host against what a move depends on (WinRM, TLS, authentication, cluster, settings), read-only."

    def add_arguments(self, parser):
        parser.add_argument("host", help="host FQDN or short name, as in the inventory")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, host, as_json, **options):
        report = run_check(find_host(host))
        if as_json:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self.stdout.write(describe(report))
        if not report.ok:
            raise CommandError("a check failed (see above)", returncode=1)


def describe(report) -> str:
    lines = [f"{report.host.fqdn}:"]
    for result in report.results:
        lines.append(f"  {MARKS[result.status]}  {TITLES.get(result.id, result.id)}: {result.message}")
        if result.remedy and result.status != "pass":
            lines.append(f"        -> {result.remedy}")
    counts = {s: sum(r.status == s for r in report.results) for s in MARKS}
    lines.append(
        f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed, {counts['unknown']} unknown"
    )
    return "\n".join(lines)
