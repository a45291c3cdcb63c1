"""manage.py drift: hosts whose live-migration settings disagree, with the reasons (fabric.drift)."""

import json

from django.core.management.base import BaseCommand

from fabric.drift import find_drift
from fabric.models import Host
from fabric.queries import settings_views
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "List hosts flagged by the drift guard (cluster nodes that differ, a cluster cap below the nodes' limit)."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, as_json, **options):
        flags = find_drift(settings_views())
        names = dict(Host.objects.filter(fqdn__in=flags).values_list("fqdn", "cluster__name"))
        rows = [
            {"host": fqdn, "cluster": names.get(fqdn), "reasons": reasons} for fqdn, reasons in sorted(flags.items())
        ]
        if as_json:
            self.stdout.write(json.dumps({"hosts": rows}, indent=2))
            return
        for row in rows:
            self.stdout.write(f"{row['host']}:")
            for reason in row["reasons"]:
                self.stdout.write(f"  - {reason}")
        if not rows:
            self.stdout.write("No drift.")
