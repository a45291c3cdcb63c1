"""Sessions of the pypsrp driver: one runspace pool per host, commands as cmdlets with typed parameters.

A command is a list of statements, each a pipeline of (cmdlet, parameters). Parameter values travel
as typed CLIXML values (pypsrp serializes them), never as script text: a VM named `x'; Remove-VM *`
reaches the host as that literal string. Errors come back two ways and both become HyperVError:
non-terminating error records (streams.error, the pipeline still completes) and failed pipelines
(pypsrp's had_errors). Transport failures become HostUnreachable (no answer) or HyperVError.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from django.utils.translation import gettext_noop
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import AuthenticationError, WinRMError, WinRMTransportError, WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import NAMESPACES, WSMan, WSManAction
from spnego.exceptions import SpnegoError

from fabric.hyperv import clixml
from fabric.hyperv.api import Connection, HostUnreachable, HyperVError
from fabric.hyperv.remedies import diagnose

log = logging.getLogger(__name__)
# pypsrp logs every pool and pipeline at INFO: noise in the console's log, unless asked for explicitly.
if logging.getLogger("pypsrp").level == logging.NOTSET:
    logging.getLogger("pypsrp").setLevel(logging.WARNING)

SWITCH = object()  # a switch parameter: sent by name only
AUTHS = ("negotiate", "kerberos", "credssp", "ntlm", "basic")
TIMED_OUT = 2150858793  # WS-Man: nothing to receive within OperationTimeout; poll again
UNKNOWN_SHELL = 2150858843  # WS-Man: no shell with that id (closed, or the service restarted)
# Cmdlets that "cannot be run remotely without CredSSP authentication on the server computer"
# (Microsoft's help for each, reference/powershell-docs/FailoverClusters): a second hop to the cluster.
NEEDS_CREDSSP = frozenset({"move-clustervirtualmachinerole", "add-clustervirtualmachinerole"})
# The inner logon of a CredSSP session opened for another credential: the account a Basic or NTLM
# credential names is checked with NTLM; otherwise Kerberos first (it needs the host's name, and
# CredSSP asks for HTTP/<the address dialled>), then NTLM, as Windows' CredSSP client does.
CREDSSP_MECHANISM = {"basic": "ntlm", "ntlm": "ntlm"}
# Remedies are stored in English with a job and translated where shown (remedies.py).
REMEDY_CREDSSP = gettext_noop(
    "On every cluster node run Enable-WSManCredSSP -Role Server; give the console's credential for these hosts "
    "a user name and password (any authentication: the console then logs on with CredSSP for the cluster "
    "cmdlets), or set its authentication to CredSSP"
)
REMEDY_CLUSTER_ACCESS = gettext_noop(
    "Log on with CredSSP for the cluster cmdlets (Enable-WSManCredSSP -Role Server on the nodes), and give the "
    "account full access to the cluster (Grant-ClusterAccess -Full)"
)

Statement = list[tuple[str, dict[str, Any]]]


class Script(str):
    """A constant script's text in a statement, sent as a script (its values still go as parameters)."""


@dataclass(frozen=True)
class PsrpOptions:
    """How the driver talks WinRM. Timeouts are seconds; read_timeout must exceed operation_timeout."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    operation_timeout: int = 20
    cert_validation: bool | str = True  # True: system CAs; a path: that CA bundle; False: no validation
    allow_basic_http: bool = False  # Basic over plain HTTP only when explicitly allowed
    max_runspaces: int = 8
    start_timeout: float = 60.0  # how long a move may take to show it started on the host
    command_timeout: float = 300.0  # how long any other command may run before it is stopped


class _WSMan(WSMan):
    """pypsrp's WSMan, except that a Receive is not retried five times on a read timeout.

    pypsrp retries Receive with growing back-off (up to a minute); a host that stopped answering
    must surface as HostUnreachable within the driver's timeouts instead.
    """

    def receive(self, resource_uri, resource, option_set=None, selector_set=None, timeout=None):
        res = self.invoke(WSManAction.RECEIVE, resource_uri, resource, option_set, selector_set, timeout)
        return res.find("s:Body", namespaces=NAMESPACES)


@dataclass
class Result:
    output: list[Any]
    errors: list[Any]  # pypsrp ErrorRecord objects (non-terminating)


class HostSession:
    """The runspace pool of one host, opened on first use and reused; one lock serializes its requests.

    NTLM/Kerberos contexts and message encryption in pypsrp are per session and not safe for
    concurrent requests, so calls to one host take turns; different hosts run in parallel.
    """

    def __init__(self, conn: Connection, options: PsrpOptions, credssp_for: str = ""):
        self.conn = conn
        self.options = options
        self.credssp_for = credssp_for  # the credential's own auth, when this is its CredSSP session
        self.lock = threading.RLock()
        self.pool: RunspacePool | None = None
        self.opened = 0  # pools opened so far (tests check reuse)
        # Whether the host had the FailoverClusters module when last asked (None: not asked since the
        # pool opened): the inventory then reads the cluster in its first request (PsrpDriver).
        self.cluster_module: bool | None = None

    # --- connection ------------------------------------------------------------------------------

    def _open(self) -> RunspacePool:
        conn, options = self.conn, self.options
        auth = conn.auth.lower()
        if auth not in AUTHS:
            raise HyperVError("InvalidParameter", f"Unknown WinRM authentication {conn.auth!r} for {conn.fqdn}")
        https = conn.transport.lower() == "https"
        if auth == "basic" and not https and not options.allow_basic_http:
            raise HyperVError(
                "InsecureTransport",
                f"{conn.fqdn}: Basic authentication over plain HTTP would send the password in clear text",
                "Use HTTPS (port 5986), or another authentication, or allow Basic over HTTP explicitly "
                "(HYPERV_ALLOW_BASIC_HTTP) for a lab",
            )
        wsman = _WSMan(
            conn.address or conn.fqdn,
            port=conn.port,
            username=conn.username or None,
            password=conn.password or None,
            ssl=https,
            auth=auth,
            cert_validation=options.cert_validation if https else False,
            connection_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            operation_timeout=options.operation_timeout,
            # Over HTTPS, TLS protects the messages; over HTTP only NTLM/Kerberos/CredSSP can encrypt them.
            encryption="never" if https or auth == "basic" else "auto",
            no_proxy=True,
            max_envelope_size=512000,
            # The name Kerberos asks a ticket for is the host's FQDN, whatever address is dialled, and
            # the service is HTTP, as Windows' WinRM client asks (HTTP/<fqdn>, which AD maps to HOST/).
            negotiate_hostname_override=conn.fqdn if auth in ("negotiate", "kerberos") else None,
            negotiate_service="HTTP",
            credssp_auth_mechanism=CREDSSP_MECHANISM.get(self.credssp_for, "auto"),
        )
        pool = RunspacePool(wsman, max_runspaces=options.max_runspaces)
        clixml.install(pool)
        pool.open()
        # no_proxy fixed the session's proxies when pypsrp built it; with trust_env requests would still
        # read the environment's proxy variables on every request (and use none): 7 % of a sync's CPU.
        session = getattr(wsman.transport, "session", None)
        if session is not None:
            session.trust_env = False
        self.opened += 1
        return pool

    @property
    def negotiated(self) -> str:
        """The logon the open pool actually made: basic, ntlm, kerberos or credssp ("" before it opened).
        Negotiate says which of NTLM and Kerberos it chose only after the handshake."""
        transport = getattr(getattr(self.pool, "connection", None), "transport", None)
        auth = getattr(getattr(transport, "session", None), "auth", None)
        if auth is None:
            return ""
        if auth.__class__.__name__ == "HttpCredSSPAuth":
            return "credssp"
        contexts = getattr(auth, "contexts", None)
        if contexts:
            return str(next(iter(contexts.values())).negotiated_protocol or "")
        return "basic" if isinstance(auth, requests.auth.HTTPBasicAuth) else ""

    def discard(self) -> None:
        """Forget a pool whose transport failed (closing it would wait on the same dead host)."""
        pool, self.pool, self.cluster_module = self.pool, None, None
        if pool is not None:
            with contextlib.suppress(Exception):  # best effort on a broken session
                pool.connection.close()

    def close(self) -> None:
        with self.lock:
            pool, self.pool = self.pool, None
            if pool is not None:
                # Closing is a courtesy to the host (its shell would time out anyway): never wait long on it.
                pool.connection.transport.connection_timeout = min(2, self.options.connect_timeout)
                pool.connection.transport.read_timeout = min(5, self.options.read_timeout)
                try:
                    pool.close()
                except Exception as exc:
                    log.debug("closing the session to %s: %s", self.conn.fqdn, exc)
                pool.connection.close()

    @contextmanager
    def use(self) -> Iterator[None]:
        """Hold the host's lock; transport failures become HostUnreachable / HyperVError (and drop the pool)."""
        with self.lock:
            try:
                yield
            except HyperVError:
                raise
            except Exception as exc:
                error = transport_error(self.conn, self.options, exc)
                if error is None:
                    raise
                self.discard()
                raise error from exc

    def _begin(self, statements: tuple[Statement, ...]) -> PowerShell:
        """Create the pipeline; a pool whose shell the host no longer knows (the host's WinRM service
        restarted) is reopened once: nothing ran, so sending the command again is safe."""
        for attempt in (1, 2):
            if self.pool is None:
                self.pool = self._open()
            try:
                ps = build(self.pool, statements)
                ps.begin_invoke()
                return ps
            except WSManFaultError as exc:
                if exc.code != UNKNOWN_SHELL or attempt == 2:
                    raise
                log.info("%s no longer knows our shell; opening a new one", self.conn.fqdn)
                self.discard()
        raise AssertionError("unreachable")

    # --- commands --------------------------------------------------------------------------------

    def run(self, *statements: Statement, gather: float = 0.0) -> Result:
        """Invoke the statements as one pipeline and wait for it; a failed pipeline raises HyperVError.

        gather: seconds to let output collect on the host between two Receives of a pipeline still
        running. The host answers a Receive with whatever output it has, waiting only while it has
        none (MS-WSMV 3.1.4.14: the timeout fault comes when no output came within OperationTimeout),
        so a pipeline of many statements (the inventory's 17) otherwise costs a request for nearly
        every statement. The wait grows with the pipeline's age up to gather.
        """
        with self.use():
            ps = self._begin(statements)
            started = time.monotonic()
            deadline = started + self.options.command_timeout
            while ps.state == PSInvocationState.RUNNING:
                if time.monotonic() > deadline:
                    close_quietly(ps)
                    raise HyperVError(
                        "Timeout",
                        f"{self.conn.fqdn} did not finish {statements[0][0][0]} "
                        f"within {self.options.command_timeout:g} s",
                        "Check the host's Hyper-V management service (vmms) and WinRM",
                    )
                poll(ps, 1)
                if gather and ps.state == PSInvocationState.RUNNING:
                    # No longer than the pipeline has run so far: a quick one is not held up by it.
                    time.sleep(min(gather, time.monotonic() - started))
            output, errors = list(ps.output), list(ps.streams.error)
            failed = ps.had_errors or ps.state == PSInvocationState.FAILED
            close_quietly(ps)
        if failed:
            raise to_error(errors[-1] if errors else None, self.conn.fqdn)
        return Result(output, errors)

    def start(self, *statements: Statement) -> PowerShell:
        """Begin a long pipeline (a move) and return it; the caller polls it under this session's lock."""
        with self.use():
            return self._begin(statements)

    def poll(self, ps: PowerShell, timeout: int = 1) -> None:
        with self.use():
            if ps.state == PSInvocationState.RUNNING:
                poll(ps, timeout)

    def wait_started(self, ps: PowerShell) -> None:
        """Until the move shows progress or ends; a move that writes an error is refused: wait for its end."""
        deadline = time.monotonic() + self.options.start_timeout
        while ps.state == PSInvocationState.RUNNING and (ps.streams.error or not ps.streams.progress):
            if time.monotonic() > deadline:
                raise HyperVError(
                    "Timeout",
                    f"{self.conn.fqdn} did not report the start of the move within {self.options.start_timeout:g} s",
                    "Look for the migration on the host (Msvm_MigrationJob) before trying again",
                )
            self.poll(ps, 1)


def needs_credssp(statements: tuple[Statement, ...] | list[Statement]) -> bool:
    return any(str(cmdlet).lower() in NEEDS_CREDSSP for statement in statements for cmdlet, _ in statement)


def credssp_connection(conn: Connection) -> Connection:
    """How cluster cmdlets reach the host: conn itself when it logs on with CredSSP, otherwise the same
    account over CredSSP; a HyperVError saying what to configure when the credential cannot delegate."""
    if conn.auth.lower() == "credssp":
        return conn
    if not conn.username or not conn.password:
        raise HyperVError(
            "CredSSPRequired",
            f"{conn.fqdn}: moving a clustered VM needs a CredSSP logon, and the {conn.auth} credential for this host "
            "has no password the console could delegate",
            REMEDY_CREDSSP,
        )
    return dataclasses.replace(conn, auth="credssp")


def build(pool: RunspacePool, statements: tuple[Statement, ...]) -> PowerShell:
    ps = PowerShell(pool)
    for i, statement in enumerate(statements):
        if i:
            ps.add_statement()
        for cmdlet, params in statement:
            if isinstance(cmdlet, Script):
                ps.add_script(str(cmdlet))
            else:
                ps.add_cmdlet(cmdlet)
            for name, value in params.items():
                if value is SWITCH:
                    ps.add_parameter(name)
                elif value is not None:
                    ps.add_parameter(name, value)
    return ps


def poll(ps: PowerShell, timeout: int) -> None:
    try:
        ps.poll_invoke(timeout=timeout)
    except WSManFaultError as exc:
        if exc.code != TIMED_OUT:
            raise


def close_quietly(ps: PowerShell) -> None:
    """Release the pipeline on the host (a Terminate signal); a move started by it goes on."""
    try:
        if ps.state == PSInvocationState.RUNNING:
            ps.stop()
        ps.close()
    except (WinRMError, requests.RequestException, ValueError) as exc:
        log.debug("closing a pipeline: %s", exc)


# --- errors ----------------------------------------------------------------------------------------


def record_text(record: Any) -> str:
    message = getattr(record, "details_message", None)
    if not message:
        exception = getattr(record, "exception", None)
        props = getattr(exception, "adapted_properties", None) or {}
        message = props.get("Message") or getattr(exception, "to_string", None)
    return str(message or getattr(record, "message", "") or record)


def error_id(record: Any) -> str:
    return str(getattr(record, "fq_error", "") or "").split(",")[0]


def to_error(record: Any, fqdn: str) -> HyperVError:
    """An error record as HyperVError: the most specific Hyper-V code in its message (anywhere in the
    text, as Hyper-V writes them) or the record's error id, the message, and the remedy the host
    recommends or the known one."""
    if record is None:
        return HyperVError("PipelineFailed", f"The command failed on {fqdn} without an error record")
    text = record_text(record).strip()
    code, message, remedy = diagnose(text, error_id(record) or "PowerShellError")
    action = str(getattr(record, "action", "") or "")
    if "administrative privileges on the cluster" in text:  # a cluster cmdlet without a second hop
        return HyperVError("ClusterAccessDenied", message, action or REMEDY_CLUSTER_ACCESS)
    return HyperVError(code, message, action or remedy)


def transport_error(conn: Connection, options: PsrpOptions, exc: BaseException) -> HyperVError | None:
    """A pypsrp / requests failure as the driver's error; None for anything that is not transport."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return HostUnreachable(conn.fqdn, f"no answer to connect within {options.connect_timeout:g} s")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return HostUnreachable(conn.fqdn, f"connected, but no answer within {options.read_timeout:g} s")
    if isinstance(exc, requests.exceptions.SSLError):
        return HyperVError(
            "CertificateError",
            f"The TLS certificate of {conn.fqdn} was not accepted: {_short(exc)}",
            "Install the CA that signed the host's WinRM certificate (HYPERV_CA_BUNDLE), or fix the certificate's name",
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        return HostUnreachable(conn.fqdn, connection_reason(exc))
    if conn.auth.lower() == "credssp" and "CredSSP being an available" in str(exc):
        return HyperVError(
            "CredSSPNotEnabled",
            f"{conn.fqdn} does not accept CredSSP logons, which the cluster cmdlets need from a remote console",
            REMEDY_CREDSSP,
        )
    if exc.__class__.__module__.split(".")[0] in ("krb5", "gssapi"):
        return HyperVError(
            "AccessDenied",
            f"{conn.fqdn}: no Kerberos ticket for the WinRM logon ({conn.auth}): {_short(exc)}",
            "Check the user (user@REALM) and its password or ticket (klist), the KDC, and the host's service "
            f"principal HTTP/{conn.fqdn}",
        )
    if isinstance(exc, AuthenticationError | SpnegoError) or exc.__class__.__name__ in (
        "AuthenticationException",
        "NTStatusException",
    ):
        return HyperVError(
            "AccessDenied",
            f"{conn.fqdn} refused the WinRM credentials ({conn.auth})",
            "Check the user and password stored for this host",
        )
    if isinstance(exc, WSManFaultError):
        return HyperVError(f"WSMan {exc.code}", f"{conn.fqdn}: {exc.reason}", "Check the WinRM service on the host")
    if isinstance(exc, WinRMTransportError):
        return HyperVError(f"HTTP {exc.code}", f"{conn.fqdn} answered HTTP {exc.code}", "Check the WinRM listener")
    if isinstance(exc, WinRMError):
        return HyperVError("WinRM", f"{conn.fqdn}: {exc}", "Check the WinRM service on the host")
    if isinstance(exc, ImportError):  # Kerberos needs python-gssapi, built only where MIT krb5 is installed
        return HyperVError(
            "NotInstalled",
            f"{conn.auth} authentication to {conn.fqdn} is not available here: {exc}",
            "Install libkrb5-dev and a C compiler, then pip install -r requirements-kerberos.txt (make setup does "
            "that when krb5-config is present)",
        )
    if exc.__class__.__name__ == "InvalidPSRPOperation":
        return HyperVError("PSRP", f"{conn.fqdn}: {exc}", "Check PowerShell Remoting on the host (Enable-PSRemoting)")
    return None


# What a failed connection's text says, in an operator's words (urllib3 wraps the socket's error in
# "HTTPSConnectionPool(host=..., port=...): Max retries exceeded ... (Caused by ...)").
_REASONS = (
    (("refused",), "connection refused"),
    (("aborted", "reset"), "connection reset (the WinRM service went away)"),
    (
        ("nameresolution", "name or service not known", "getaddrinfo", "nodename nor servname", "no address"),
        "the name does not resolve (DNS)",
    ),
    (("no route to host", "network is unreachable"), "no route to the host's address"),
    (("timed out",), "no answer (timed out)"),
)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def connection_reason(exc: BaseException) -> str:
    text = str(exc)
    lower = text.lower()
    for needles, reason in _REASONS:
        if any(n in lower for n in needles):
            return reason
    if found := _ERRNO.search(text):  # the socket's own words, without urllib3's wrapping
        return found.group(1).strip()
    return _short(exc)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."
