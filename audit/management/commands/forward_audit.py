"""manage.py forward_audit: send the audit trail to syslog (AUDIT_SYSLOG_URL) from where its cursor
stands. The job workers do this on their own; this is for a forwarder run apart from them, and for
catching up by hand (--once)."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.forward import Forwarder
from utilities.commands import NoSystemChecks


class Command(NoSystemChecks, BaseCommand):
    help = (
        "Forward the audit trail to syslog (AUDIT_SYSLOG_URL), in order, from the last event the receiver "
        "took. Runs until stopped; --once sends what is waiting and exits (1 when the receiver is unreachable)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is waiting, then exit")

    def handle(self, *args, once: bool = False, **options):
        if not settings.AUDIT_SYSLOG_URL:
            raise CommandError("AUDIT_SYSLOG_URL is not set: forwarding is off", returncode=2)
        forwarder = Forwarder(settings.AUDIT_SYSLOG_URL)
        if once:
            return self._once(forwarder)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        forwarder.run(stop)

    def _once(self, forwarder: Forwarder) -> None:
        sent = 0
        try:
            while batch := forwarder.forward_batch():
                sent += batch
        except OSError as exc:
            raise CommandError(f"{sent} events forwarded, then: {exc}", returncode=1) from None
        finally:
            forwarder.connection.close()
        self.stdout.write(f"{sent} events forwarded to {forwarder.destination.key}")
