"""`manage.py serve`: set up and run the whole embedded console with one command."""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from console import env as env_module
from console.processes import Supervisor, console_children

READY_TIMEOUT_S = 60


def _port_type(raw: str) -> int:
    port = int(raw)
    if not 1 <= port <= 65535:
        raise ValueError(raw)
    return port


def _web_processes_type(raw: str) -> int:
    processes = int(raw)
    if processes < 1:
        raise ValueError(raw)
    return processes


def _workers_type(raw: str) -> int:
    workers = int(raw)
    if workers < 0:
        raise ValueError(raw)
    return workers


class Command(BaseCommand):
    """Prepare the database and start the web server and task workers as child processes.

    On every start: apply migrations (the "default" database and, with the SQLite channel layer, the
    "channels" one); seed the demo fabric when the inventory has no hosts; create a first superuser
    when there is none (its generated password is printed once, or DJANGO_SUPERUSER_PASSWORD is used).
    Then start the web server (console.webserver: uvicorn on console.asgi_static:application, static
    files included; with --web-processes N, N of them on one listening socket that serve binds) and N
    `job_worker` processes, print the URL, and supervise: Ctrl-C / SIGTERM stops everything and exits 0; a child
    dying on its own stops the rest and exits 1. The emulator stops last, once the workers have ended
    (a move must not be failed by its host vanishing under the worker that follows it). Static files
    are served from the finders, so no collectstatic step is needed.
    """

    help = "Migrate, seed the demo fabric, create the first admin, then run the web server and task workers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument("--port", type=_port_type, default=8000, help="TCP port (default 8000).")
        parser.add_argument(
            "--workers",
            type=_workers_type,
            default=4,
            help="Job worker processes: migrations that can run at once (default 4; 0 for none).",
        )
        parser.add_argument(
            "--web-processes",
            type=_web_processes_type,
            default=1,
            help="Web server processes sharing the port: each serves a share of the browsers (default 1).",
        )
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=10.0,
            help="Seconds children get to stop after SIGTERM before they are killed (default 10).",
        )

    def handle(self, *args, host, port, workers, web_processes, stop_timeout, verbosity, **options):
        self.verbosity = verbosity
        # The children inherit it; settings set it too, this says so where serve starts.
        env_module.private_files()
        # One web process binds the port itself; several share the socket serve binds and listens on.
        listener = self._listen(host, port) if web_processes > 1 else None
        if listener is None:
            self._check_port_free(host, port)
        try:
            env_module.tighten(Path(settings.DATA_DIR))
            self._migrate()
            result = self._run(host, port, workers, web_processes, listener, stop_timeout)
        finally:
            if listener is not None:
                listener.close()
        if result:
            raise CommandError("stopped because a child process exited unexpectedly", returncode=result)

    def _run(self, host, port, workers, web_processes, listener, stop_timeout) -> int:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        ready_file = self._emulator_ready_file()
        children = console_children(
            host,
            port,
            workers,
            emulator_ready=ready_file and str(ready_file),
            web_fd=listener and listener.fileno(),
            web_processes=web_processes,
        )
        supervisor = Supervisor(children, stop_timeout=stop_timeout, out=self.stdout, env=env)
        supervisor.install_signal_handlers()
        try:
            # The emulated hosts first: seeding and the inventory sync reach them over WinRM.
            result = self._start_emulator(supervisor, ready_file) if ready_file else None
            if result is None:
                self._seed()
                self._first_admin()
                supervisor.start()
                result = supervisor.wait(until=self._ready_check(host, port, answered=listener is not None))
            if result is None:
                self.say(f"Console running at {self._url(host, port)}  (Ctrl-C to stop)")
                result = supervisor.wait()
        finally:
            # An exception in here must not leave children behind.
            if any(p.poll() is None for p in supervisor.procs.values()):
                supervisor.stop_all()
        return result

    def say(self, message: str) -> None:
        self.stdout.write(message)
        self.stdout.flush()

    def _check_port_free(self, host: str, port: int) -> None:
        self._bind(host, port, *self._address(host, port)).close()

    def _listen(self, host: str, port: int) -> socket.socket:
        """The listening socket the web processes share."""
        sock = self._bind(host, port, *self._address(host, port))
        sock.listen(2048)  # uvicorn's backlog, as when it binds
        return sock

    @staticmethod
    def _address(host: str, port: int) -> tuple[int, tuple]:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise CommandError(f"--host {host!r} does not resolve: {exc}") from None
        family, _, _, _, address = infos[0]
        return family, address

    @staticmethod
    def _bind(host: str, port: int, family: int, address: tuple) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        # Same option the server sets, so a port in TIME_WAIT from a previous run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        return sock

    def _migrate(self) -> None:
        inner = max(self.verbosity - 1, 0)
        for alias in ("default", "channels"):
            if alias in settings.DATABASES:
                self.say(f"Applying migrations to the {alias!r} database...")
                call_command("migrate", database=alias, interactive=False, verbosity=inner)

    def _emulator_ready_file(self) -> Path | None:
        """Where the emulator child announces it listens; None when serve runs no emulator."""
        if settings.HYPERV_DRIVER != "psrp" or not getattr(settings, "HYPERV_EMULATOR", False):
            return None
        ready = Path(settings.DATA_DIR) / "emulator.ready"
        ready.unlink(missing_ok=True)
        return ready

    def _start_emulator(self, supervisor: Supervisor, ready_file: Path) -> int | None:
        """Start the Hyper-V host emulator and wait until it listens; the exit code if it (or serve) stopped."""
        self.say("Starting the Hyper-V host emulator...")
        supervisor.start(only={"emulator"})
        deadline = time.monotonic() + READY_TIMEOUT_S

        def listening() -> bool:
            if time.monotonic() > deadline:
                raise CommandError(f"the Hyper-V emulator did not start within {READY_TIMEOUT_S} s")
            return ready_file.exists()

        result = supervisor.wait(until=listening)
        if result is None:
            self._register_emulated_addresses()
        return result

    def _register_emulated_addresses(self) -> None:
        """Hosts already in the inventory follow the addresses the emulator serves them on now."""
        from fabric.driver import sim_store
        from fabric.models import Host

        store = sim_store()
        try:
            with store.session() as fabric:
                connections = fabric.connections()
        finally:
            store.close()
        for conn in connections:
            Host.objects.filter(fqdn=conn.fqdn).exclude(address=conn.address, port=conn.port).update(
                address=conn.address, port=conn.port, transport=conn.transport
            )

    def _seed(self) -> None:
        from fabric.models import Host

        if Host.objects.exists():
            return
        if "seed_demo" not in get_commands():
            self.say("The inventory is empty and this build has no seed_demo command: starting without demo data.")
            return
        self.say("The inventory is empty: seeding the demo fabric (seed_demo)...")
        try:
            call_command("seed_demo")
        except ImportError as exc:
            # The demo fabric is optional for running the console; a build whose seed_demo cannot load
            # yet still serves the console, with an empty inventory.
            self.stderr.write(f"seed_demo is not usable in this build ({exc}): starting without demo data.")

    def _first_admin(self) -> None:
        user_model = get_user_model()
        if user_model._default_manager.filter(is_superuser=True).exists():
            return
        # The variables Django's `createsuperuser --noinput` reads.
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            self.say(f"No superuser, and a user {username!r} exists already: run `manage.py createsuperuser`.")
            return
        if password:
            user_model._default_manager.create_superuser(username, email, password)
            self.say(f"Created superuser {username!r} with the password from DJANGO_SUPERUSER_PASSWORD.")
            return
        password = secrets.token_urlsafe(16)
        user_model._default_manager.create_superuser(username, email, password)
        self.say(f"Created superuser {username!r} with password: {password}")
        self.say("  (shown only this once: note it, or change it after logging in)")

    def _ready_check(self, host: str, port: int, answered: bool = False):
        """A check that the web server is up: it accepts a connection or, when serve listens for it
        (`answered`: the kernel completes connections before any web process is up), answers one."""
        address = self._connect_host(host)
        deadline = time.monotonic() + READY_TIMEOUT_S
        told = False

        def ready() -> bool:
            # "Console running at" only once it is true: a slow web server is said to be so, and waited for.
            nonlocal told
            try:
                with socket.create_connection((address, port), timeout=0.5) as sock:
                    if answered:
                        sock.settimeout(1)
                        sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
                        return bool(sock.recv(1))
                    return True
            except OSError:
                if not told and time.monotonic() > deadline:
                    self.say(f"The web server is not answering yet after {READY_TIMEOUT_S} s; still waiting.")
                    told = True
                return False

        return ready

    @staticmethod
    def _connect_host(host: str) -> str:
        # A wildcard bind is reached on loopback.
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104

    def _url(self, host: str, port: int) -> str:
        shown = self._connect_host(host)
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}/"
