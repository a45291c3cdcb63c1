"""manage.py seed_demo: build the simulated demo fabric, register its hosts, sync the inventory."""

import argparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fabric.driver import get_driver, sim_store
from fabric.models import Host
from fabric.sim.demo import build_demo_fabric, host_connections
from fabric.sync import sync_inventory
from utilities.commands import NoSystemChecks


def _count(minimum: int):
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{raw} is below the minimum of {minimum}")
        return value

    return parse


class Command(NoSystemChecks, BaseCommand):
    help = (
        "Build the simulated Hyper-V fabric (demo by default, or --hosts N --vms M for benchmarks), "
        "register its hosts and sync the inventory. Idempotent: an existing fabric is reused."
    )

    def add_arguments(self, parser):
        parser.add_argument("--hosts", type=_count(1), help="generate a fabric of N hosts instead of the demo")
        parser.add_argument("--vms", type=_count(0), help="generate M VMs instead of the demo's")
        parser.add_argument("--seed", type=_count(0), help="random seed of the generated fabric (default 1)")
        parser.add_argument("--reset", action="store_true", help="replace an existing simulated fabric")

    def handle(self, *args, hosts, vms, seed, reset, **options):
        store = sim_store()
        custom = hosts is not None or vms is not None or seed is not None
        if store.exists() and not reset:
            if custom:
                raise CommandError("a simulated fabric exists already; add --reset to replace it with a new one")
            # Under serve, the host emulator has just built it: the demo, not something left over.
            self.stdout.write(f"Registering the hosts of the simulated fabric in {store.path} (--reset rebuilds it).")
        else:
            store.create(build_demo_fabric(seed=1 if seed is None else seed, hosts=hosts, vms=vms))
            self.stdout.write("Built the simulated fabric.")
        with store.session() as fabric:
            connections = host_connections(fabric)
        for conn in connections:
            Host.objects.update_or_create(
                fqdn=conn.fqdn,
                defaults={
                    "name": conn.fqdn.split(".")[0],
                    "address": conn.address,
                    "port": conn.port,
                    "transport": conn.transport,
                },
            )
        report = sync_inventory(get_driver())
        self.stdout.write(
            f"Registered {len(connections)} hosts; synced {len(report.synced)}, {report.vms_seen} VMs"
            + (f", {len(report.unreachable)} unreachable" if report.unreachable else "")
        )
        if report.unreachable and not report.synced and settings.HYPERV_DRIVER == "psrp":
            # With the psrp driver the demo hosts are the emulator's endpoints: nothing answers without it.
            self.stdout.write(
                "No emulated host answered: start the Hyper-V emulator (manage.py hyperv_emulator), or use "
                "manage.py serve, which starts it, then run manage.py sync_inventory."
            )
