"""manage.py hyperv_emulator: serve the simulated fabric as Hyper-V hosts over WinRM / PowerShell Remoting."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fabric.emulator import build_emulator
from fabric.sim.demo import build_demo_fabric
from fabric.sim.store import FabricStore
from utilities.commands import NoSystemChecks


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


class Command(NoSystemChecks, BaseCommand):
    """Start one WS-Management endpoint per host of the fabric file and serve until stopped.

    The fabric is the same SQLite file every process of the console uses (settings.SIM_FABRIC_PATH
    by default); when it holds no world yet, the demo fabric is built into it. Each host listens on
    its own address (127.0.0.11, .12, ... port 5985, or 5986 with --https or HYPERV_EMULATOR_HTTPS);
    where such an address cannot be bound the host gets a free port on 127.0.0.1 and the fabric
    records it. Stops on SIGTERM or Ctrl-C.
    """

    help = "Run the Hyper-V host emulator (WinRM + PowerShell Remoting) over the simulated fabric."

    def add_arguments(self, parser):
        parser.add_argument("--fabric", type=Path, help="fabric file (default: settings.SIM_FABRIC_PATH)")
        parser.add_argument(
            "--time-scale", type=_positive, help="simulated seconds per wall second (default: SIM_TIME_SCALE)"
        )
        parser.add_argument("--user", help="the hosts' account (default: HYPERV_EMULATOR_USER)")
        parser.add_argument("--password", help="its password (default: HYPERV_EMULATOR_PASSWORD)")
        parser.add_argument("--https", action="store_true", help="serve HTTPS with a generated certificate")
        parser.add_argument(
            "--allow-basic-http",
            action="store_true",
            default=None,
            help="accept Basic logons and unencrypted messages over HTTP (AllowUnencrypted; default: "
            "HYPERV_ALLOW_BASIC_HTTP)",
        )
        parser.add_argument("--cert-dir", type=Path, help="where the certificates go (default: DATA_DIR/emulator-tls)")
        parser.add_argument(
            "--progress-interval", type=_positive, default=1.0, help="seconds between progress records (default 1)"
        )
        parser.add_argument("--free-ports", action="store_true", help="serve every host on 127.0.0.1, free ports")
        parser.add_argument("--ready-file", type=Path, help="write this file (the endpoints, JSON) once serving")
        parser.add_argument("--host", action="append", dest="hosts", help="serve only this host FQDN (repeatable)")
        parser.add_argument(
            "--latency", type=float, default=0.0, help="seconds each cmdlet takes, like WMI on a real host (default 0)"
        )

    def handle(self, *args, **options):
        path = options["fabric"] or settings.SIM_FABRIC_PATH
        scale = options["time_scale"] or settings.SIM_TIME_SCALE
        user = options["user"] or getattr(settings, "HYPERV_EMULATOR_USER", "")
        password = options["password"] or getattr(settings, "HYPERV_EMULATOR_PASSWORD", "")
        if not user or not password:
            raise CommandError("give --user and --password (or HYPERV_EMULATOR_USER / HYPERV_EMULATOR_PASSWORD)")
        store = FabricStore(path, time_scale=scale)
        if not store.exists():
            store.create(build_demo_fabric())
            self.stdout.write(f"No fabric in {path}: built the demo fabric.")
        emulator = build_emulator(
            store,
            username=user,
            password=password,
            https=options["https"] or getattr(settings, "HYPERV_EMULATOR_HTTPS", False),
            allow_basic_http=bool(options["allow_basic_http"] or getattr(settings, "HYPERV_ALLOW_BASIC_HTTP", False)),
            cert_dir=options["cert_dir"] or settings.DATA_DIR / "emulator-tls",
            progress_interval=options["progress_interval"],
            free_ports=options["free_ports"],
            hosts=options["hosts"],
            latency=options["latency"],
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        ready = options["ready_file"]
        emulator.start()
        try:
            urls = {fqdn: endpoint.url for fqdn, endpoint in sorted(emulator.endpoints.items())}
            for fqdn, url in urls.items():
                self.stdout.write(f"{fqdn}: {url}")
            self.stdout.write(f"Hyper-V emulator serving {len(urls)} hosts (Ctrl-C to stop)")
            self.stdout.flush()
            if ready is not None:
                # Written whole, then renamed: a reader never sees half a file.
                partial = ready.with_suffix(".tmp")
                partial.write_text(json.dumps(urls))
                partial.replace(ready)
            stop.wait()
        finally:
            if ready is not None:
                ready.unlink(missing_ok=True)
            emulator.stop()
            store.close()
        self.stdout.write("Hyper-V emulator stopped.")
