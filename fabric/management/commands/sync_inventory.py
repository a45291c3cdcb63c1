"""manage.py sync_inventory: pull clusters, hosts, shares, VMs and disks from every managed host."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from fabric.driver import get_driver
from fabric.models import Host
from fabric.sync import sync_inventory
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = "Pull the inventory of every managed host (or the named ones) through the Hyper-V driver."

    def add_arguments(self, parser):
        parser.add_argument("hosts", nargs="*", help="host FQDNs or short names (default: all)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the result as JSON")

    def handle(self, *args, hosts, as_json, **options):
        selected = None
        if hosts:
            selected = list(Host.objects.filter(Q(fqdn__in=hosts) | Q(name__in=hosts)))
            unknown = set(hosts) - {h.fqdn for h in selected} - {h.name for h in selected}
            if unknown:
                raise CommandError(f"unknown host(s): {', '.join(sorted(unknown))}")
        report = sync_inventory(get_driver(), selected)
        if as_json:
            self.stdout.write(json.dumps(report.__dict__, indent=2, sort_keys=True))
            return
        self.stdout.write(f"synced {len(report.synced)} host(s), {report.vms_seen} VMs, {report.vms_removed} removed")
        for fqdn, reason in sorted(report.unreachable.items()):
            self.stdout.write(self.style.WARNING(f"unreachable: {fqdn}: {reason}"))
