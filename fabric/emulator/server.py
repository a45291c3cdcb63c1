"""The Hyper-V host emulator: one WS-Management endpoint per simulated host, all serving one shared fabric.

Each endpoint is an HTTP(S) server on the host's address and port (127.0.0.x; when such an address
cannot be bound, a free port on 127.0.0.1, written back into the fabric so every process finds it).
Clients log on as to a Windows host (auth.py: Negotiate, Kerberos, CredSSP, Basic over HTTPS or when
allowed), and each shell remembers how; the WS-Man actions PSRP uses (Create, Command, Send, Receive,
Signal, Delete, Get) drive psrpcore runspace pools, and the pipelines run the emulated cmdlets
against the FabricStore, so the world the emulator changes is the one web and workers read.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import errno
import logging
import socket
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fabric.emulator import auth, wsman
from fabric.emulator.binder import HostSide, run_pipeline
from fabric.emulator.cmdlets import CMDLETS, SCRIPTS
from fabric.emulator.double_hop import cmdlets_for
from fabric.emulator.shell import Shell
from fabric.sim.store import FabricStore

log = logging.getLogger(__name__)

# WinRM's MaxEnvelopeSizekb is 500 on current Windows: accept envelopes of that size and some more.
MAX_REQUEST_BYTES = 1024 * 1024
PSRP_RESOURCE = "http://schemas.microsoft.com/powershell/"
IDLE_TIMEOUT_S = 7200  # WinRM's default IdleTimeOut: a shell nobody used for this long is closed


class Endpoint(ThreadingHTTPServer):
    """The WinRM service of one emulated host."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, emulator: Emulator, fqdn: str, address: tuple[str, int]):
        self.emulator = emulator
        self.fqdn = fqdn
        self.shells: dict[str, Shell] = {}
        self.shells_lock = threading.Lock()
        self.connections: set[socket.socket] = set()  # open client connections (keep-alive)
        super().__init__(address, _Handler)
        self.thread: threading.Thread | None = None

    def authenticator(self) -> auth.Authenticator:
        """This host's logon rules as configured now (a test may change a host's WinRM service)."""
        emulator = self.emulator
        return auth.Authenticator(
            self.fqdn,
            emulator.username,
            emulator.password,
            emulator.service(self.fqdn),
            emulator.tls is not None,
            emulator.bindings,
        )

    @property
    def url(self) -> str:
        scheme = "https" if self.emulator.tls else "http"
        host, port = self.server_address[:2]
        return f"{scheme}://{host}:{port}/wsman"

    def start(self) -> None:
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self.thread.name = f"winrm-{self.fqdn}"
        self.thread.start()

    def stop(self) -> None:
        """Stop listening and drop every client connection, as a host going down would."""
        self.shutdown()
        self.server_close()
        with self.shells_lock:
            shells, self.shells = list(self.shells.values()), {}
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for shell in shells:
            shell.close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    # --- WS-Man actions ------------------------------------------------------------------------

    def dispatch(self, request: wsman.Request, user: str, client_ip: str, auth_mode: str = "basic") -> bytes:
        if request.action == "Create":
            return self._create(request, user, client_ip, auth_mode)
        shell = self._shell(request, user)
        body = request.body
        if request.action == "Command":
            command_id = body.get("CommandId") if body is not None else None
            command_id = (command_id or str(uuid.uuid4())).upper()
            args = body.find("rsp:Arguments", wsman.NS) if body is not None else None
            shell.create_pipeline(command_id, _b64(args.text if args is not None else ""))
            return wsman.command_response(request, command_id)
        if request.action == "Send":
            for stream in body.findall("rsp:Stream", wsman.NS) if body is not None else []:
                command_id = stream.get("CommandId")
                shell.feed(_b64(stream.text), uuid.UUID(command_id) if command_id else None)
            return wsman.simple_response(request, "SendResponse")
        if request.action == "Receive":
            desired = body.find("rsp:DesiredStream", wsman.NS) if body is not None else None
            command_id = desired.get("CommandId") if desired is not None else None
            # Base64 and the envelope around it must fit the client's MaxEnvelopeSize.
            limit = max(4096, (request.max_envelope_size - 4096) * 3 // 4)
            data, done = shell.receive(command_id, request.operation_timeout, limit)
            return wsman.receive_response(request, data, command_id, done)
        if request.action == "Signal":
            code = body.find("rsp:Code", wsman.NS) if body is not None else None
            shell.signal(body.get("CommandId", ""), (code.text or "").strip() if code is not None else "")
            return wsman.simple_response(request, "SignalResponse")
        if request.action == "Delete":
            with self.shells_lock:
                self.shells.pop(shell.id, None)
            shell.close()
            return wsman.simple_response(request, None)
        # Get: the shell's description (pypsrp's is_alive).
        return wsman.response(request, wsman.shell_element(shell.resource_uri, shell.id, shell.owner, shell.client_ip))

    def _create(self, request: wsman.Request, user: str, client_ip: str, auth_mode: str) -> bytes:
        if not request.resource_uri.startswith(PSRP_RESOURCE):
            raise wsman.WSManFault(2150858811, "w:InvalidResourceURI", "Only PowerShell Remoting shells are served")
        body = request.body
        if body is None or body.tag != wsman.q("rsp", "Shell"):
            raise wsman.WSManFault(2150858817, "w:SchemaValidationError", "A Create request needs an rsp:Shell")
        creation = body.find("pwsh:creationXml", wsman.NS)
        shell_id = (body.get("ShellId") or str(uuid.uuid4())).upper()
        runner = self.emulator.runner(self.fqdn, user, auth_mode)
        shell = Shell(shell_id, user, client_ip, request.resource_uri, runner, auth=auth_mode)
        with self.shells_lock:
            idle = [s for s in self.shells.values() if s.idle_for() > IDLE_TIMEOUT_S]
            for old in idle:
                del self.shells[old.id]
            self.shells[shell.id] = shell
        for old in idle:  # clients that went away without closing their pool
            old.close()
        shell.feed(_b64(creation.text if creation is not None else ""))
        return wsman.created(request, self.url, shell.id, user, client_ip)

    def _shell(self, request: wsman.Request, user: str) -> Shell:
        shell_id = request.selectors.get("ShellId", "").upper()
        with self.shells_lock:
            shell = self.shells.get(shell_id)
        if shell is None:
            raise wsman.unknown_shell(shell_id)
        shell.touch()
        if shell.owner.lower() != user.lower():
            raise wsman.WSManFault(5, "w:AccessDenied", "Access is denied.")
        return shell


def _b64(text: str | None) -> bytes:
    try:
        return base64.b64decode((text or "").strip())
    except binascii.Error:
        raise wsman.WSManFault(2150858817, "w:SchemaValidationError", "Stream data is not base64") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: pypsrp reuses its connection
    timeout = 600  # an idle client connection is dropped after this
    server: Endpoint

    def setup(self) -> None:
        # Small WS-Man answers must not wait for Nagle's algorithm (a 40 ms stall per round trip).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._raw = self.request
        with self.server.shells_lock:
            self.server.connections.add(self._raw)
        self.logon = auth.ConnectionAuth()  # a logon belongs to its connection, as with http.sys
        tls = self.server.emulator.tls
        if tls is not None:
            # The handshake runs in this request's thread, not in the accepting loop.
            self.request.settimeout(self.timeout)
            self.request = tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self) -> None:
        with self.server.shells_lock:
            self.server.connections.discard(self._raw)
        super().finish()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path.rstrip("/").lower() != "/wsman":
            self._drain(length)
            self._reply(404, b"", "text/plain")
            return
        if length > MAX_REQUEST_BYTES:
            self._drain(length)
            self._reply(413, b"", "text/plain")
            return
        data = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        outcome = self.server.authenticator().authenticate(
            self.logon, self.headers.get("Authorization"), content_type, data
        )
        if outcome.status != 200 or outcome.user is None:
            log.debug("%s: %s from %s", self.server.fqdn, outcome.error, self.client_address[0])
            self._reply(outcome.status, b"", "text/plain", outcome.headers)
            return
        if not outcome.body:  # the logon's own request (pypsrp sends an empty one before encrypting)
            self._reply(200, b"", "text/plain", outcome.headers)
            return
        request = None
        try:
            request = wsman.parse_request(outcome.body)
            status, payload = 200, self.server.dispatch(request, outcome.user, self.client_address[0], self.logon.mode)
        except wsman.WSManFault as fault:
            relates = request.message_id if request is not None else ""
            status, payload = fault.http_status, wsman.fault_envelope(fault, relates, self.server.fqdn)
        payload_type, payload = auth.Authenticator.wrap(self.logon, content_type, payload)
        self._reply(status, payload, payload_type, outcome.headers)

    def _drain(self, length: int) -> None:
        remaining = min(length, MAX_REQUEST_BYTES * 4)
        while remaining > 0:
            chunk = self.rfile.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)

    def _reply(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/soap+xml;charset=UTF-8",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Server", "Microsoft-HTTPAPI/2.0")
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.server.fqdn, format % args)


class Emulator:
    """Serves the hosts of the fabric in `store` over WS-Management / PowerShell Remoting.

    username/password: the one account every endpoint accepts (Basic, NTLM and CredSSP check the
    password; Kerberos trusts the KDC's ticket for a principal of that name). tls: an ssl.SSLContext
    for HTTPS (see tls.py), None for HTTP; tls_certificate: its certificate (DER), which Negotiate
    logons over HTTPS are bound to (channel binding). allow_basic_http: AllowUnencrypted on every host, so
    Basic (and unencrypted messages) work over plain HTTP: the demo's explicit allowance. winrm:
    per-host WinRM service settings (auth.WinRMService) that differ from the default.
    progress_interval: wall seconds between Move-VM progress records. hosts: serve only these FQDNs
    (default: every host of the fabric). fallback: when an address like 127.0.0.12 cannot be bound,
    serve on 127.0.0.1 with a free port instead (ports=0 always does that) and write the new address
    into the fabric. latency: seconds each cmdlet takes, as WMI does on a real host (benchmarks); 0
    by default.
    """

    def __init__(
        self,
        store: FabricStore,
        *,
        username: str,
        password: str,
        tls: ssl.SSLContext | None = None,
        tls_certificate: bytes | None = None,
        allow_basic_http: bool = False,
        winrm: dict[str, auth.WinRMService] | None = None,
        progress_interval: float = 1.0,
        hosts: list[str] | None = None,
        free_ports: bool = False,
        fallback: bool = True,
        log_size: int = 20_000,
        latency: float = 0.0,
    ):
        self.store = store
        self.username, self.password = username, password
        self.domains: list[str] = []  # the hosts' domains: the account is DOMAIN\\user and user@domain there too
        self.default_service = auth.WinRMService(allow_unencrypted=allow_basic_http)
        self.services: dict[str, auth.WinRMService] = dict(winrm or {})
        self.tls = tls
        self.bindings = auth.channel_bindings(tls_certificate) if tls is not None else None
        self.hosts = hosts
        self.free_ports = free_ports
        self.fallback = fallback
        self.endpoints: dict[str, Endpoint] = {}
        self.side = HostSide(store, progress_interval, self._on_command, latency)
        self.wire_log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._log_lock = threading.Lock()
        self._sequence = 0
        self._unsaved: list[dict[str, Any]] = []
        self._flush_lock = threading.Lock()
        self._log_due = threading.Event()
        self._stopping = threading.Event()
        self._log_thread: threading.Thread | None = None

    def service(self, fqdn: str) -> auth.WinRMService:
        return self.services.get(fqdn, self.default_service)

    def configure(self, fqdn: str, **settings: bool) -> None:
        """Change one host's WinRM service settings (e.g. credssp=False: Disable-WSManCredSSP -Role Server)."""
        self.services[fqdn] = dataclasses.replace(self.service(fqdn), **settings)

    def runner(self, fqdn: str, user: str, auth_mode: str = "basic") -> Callable[..., None]:
        cmdlets = cmdlets_for(auth_mode, CMDLETS)

        def run(pipeline_run, metadata) -> None:
            run_pipeline(self.side, fqdn, user, pipeline_run, metadata, cmdlets, SCRIPTS)

        return run

    def _on_command(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._sequence += 1
            self.wire_log.append({"seq": self._sequence, **entry})
            self._unsaved.append(entry)
        self._log_due.set()

    def _save_log(self) -> None:
        """Write the wire log to the fabric file in batches: one transaction per batch, not per command."""
        while not self._stopping.is_set():
            self._log_due.wait()
            self._stopping.wait(0.1)  # let a burst of commands gather
            self.flush_log()

    def flush_log(self) -> None:
        """Write what is pending; returns once every command received so far is in the fabric file."""
        with self._flush_lock:  # a flush in progress elsewhere finishes first
            with self._log_lock:
                entries, self._unsaved = self._unsaved, []
                self._log_due.clear()
            try:
                self.store.log_commands(entries)
            except Exception:  # the wire log must never break a command
                log.exception("could not write the command log")

    def commands(self, cmdlet: str | None = None) -> list[dict[str, Any]]:
        """Every command this emulator received (oldest first), optionally of one cmdlet."""
        with self._log_lock:
            entries = list(self.wire_log)
        return [e for e in entries if cmdlet is None or e["cmdlet"].lower() == cmdlet.lower()]

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        with self.store.session() as fabric:
            wanted = [h for h in fabric.hosts.values() if self.hosts is None or h.fqdn in self.hosts]
            self.domains = sorted({h.fqdn.split(".", 1)[1] for h in wanted if "." in h.fqdn})
            addresses = {h.fqdn: (h.address, 0 if self.free_ports else self._port(h.port)) for h in wanted}
        auth.register_account(self.username, self.password, self.domains)
        try:
            for fqdn, address in addresses.items():
                self.endpoints[fqdn] = self._bind(fqdn, address)
        except BaseException:
            self.stop()
            raise
        self._publish()
        self._stopping.clear()
        self._log_thread = threading.Thread(target=self._save_log, name="emulator-wire-log", daemon=True)
        self._log_thread.start()
        for endpoint in self.endpoints.values():
            endpoint.start()
        log.info("Hyper-V emulator serving %d hosts", len(self.endpoints))

    def _port(self, port: int) -> int:
        """WinRM's ports: 5985 for HTTP, 5986 for HTTPS; any other port stays as the fabric has it."""
        if self.tls is not None and port == 5985:
            return 5986
        if self.tls is None and port == 5986:
            return 5985
        return port

    def _bind(self, fqdn: str, address: tuple[str, int]) -> Endpoint:
        try:
            return Endpoint(self, fqdn, address)
        except OSError as exc:
            if not self.fallback or exc.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE, errno.EACCES):
                raise
            log.warning("%s: cannot bind %s:%s (%s); serving on 127.0.0.1", fqdn, *address, exc.strerror)
            return Endpoint(self, fqdn, ("127.0.0.1", 0))

    def _publish(self) -> None:
        """Write the addresses actually bound into the fabric, so the console registers the right ones."""
        with self.store.session() as fabric:
            for fqdn, endpoint in self.endpoints.items():
                host = fabric.hosts[fqdn]
                address, port = endpoint.server_address[:2]
                scheme = "https" if self.tls else "http"
                if (host.address, host.port, host.transport) != (address, port, scheme):
                    host.address, host.port, host.transport = address, port, scheme
                    fabric.touch()

    def address(self, fqdn: str) -> tuple[str, int]:
        return self.endpoints[fqdn].server_address[:2]

    def stop_host(self, fqdn: str) -> None:
        """Take one host's WinRM endpoint down (its address then refuses connections)."""
        endpoint = self.endpoints.pop(fqdn, None)
        if endpoint is not None:
            endpoint.stop()

    def start_host(self, fqdn: str, address: tuple[str, int]) -> None:
        endpoint = Endpoint(self, fqdn, address)
        self.endpoints[fqdn] = endpoint
        endpoint.start()

    def stop(self) -> None:
        # Each endpoint takes up to its poll interval to notice: stop them all at once.
        fqdns = list(self.endpoints)
        with ThreadPoolExecutor(max_workers=max(1, min(32, len(fqdns)))) as pool:
            list(pool.map(self.stop_host, fqdns))
        auth.unregister_account(self.username, self.password, self.domains)
        self._stopping.set()
        self._log_due.set()
        if self._log_thread is not None:
            self._log_thread.join(timeout=5)
            self._log_thread = None
        self.flush_log()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
