"""Forwarding every audit event to syslog (AUDIT_SYSLOG_URL), in the chain's order, none lost.

The database is the write-ahead log: record() never touches the network. A forwarder (a thread in
each job worker, or manage.py forward_audit) reads the rows after its destination's cursor
(ForwardCursor), sends them over one TCP or TLS connection (audit/syslog.py formats them) and moves
the cursor only once they were sent; a failed send leaves the cursor where it was and is tried again
from the same row, waiting 1, 2, 4 ... up to 60 seconds in between.

Several forwarders take turns through a lease on the cursor row, taken and given back in short
transactions (on SQLite a transaction held across a send would hold the database's write lock, and
every audit row would wait for the receiver). A forwarder that stalls longer than the lease can have
its batch sent again by another: delivery is at least once, and the sequence names a repeat.

TCP confirms nothing to the sender: a receiver that closed the connection is noticed before the
next batch (the socket turns readable), not while bytes are in flight. A receiver that dies with
events in its buffers loses them; the SIEM sees the gap in the sequence and the chain (prev_hash),
and the JSON Lines export fills it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from audit import syslog
from audit.models import AuditEvent, ForwardCursor

log = logging.getLogger(__name__)

BATCH = 500
LEASE = timedelta(seconds=60)
TIMEOUT_S = 10.0  # connecting and each send; a batch takes far less than the lease
POLL_S = 1.0
REFUSAL_WAIT_S = 0.5
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class Destination:
    scheme: str  # tcp | tls
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Destination:
        parts = urlsplit(url)  # validated by the settings (console/env.py parse_syslog_url)
        return cls(parts.scheme, parts.hostname or "", parts.port or 0)

    @property
    def key(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def tls_context() -> ssl.SSLContext:
    """The receiver's certificate checked against AUDIT_SYSLOG_CA_FILE (else the system's CAs), name
    included, unless AUDIT_SYSLOG_TLS_VERIFY is off."""
    context = ssl.create_default_context(cafile=settings.AUDIT_SYSLOG_CA_FILE or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not settings.AUDIT_SYSLOG_TLS_VERIFY:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.AUDIT_SYSLOG_CLIENT_CERT:
        context.load_cert_chain(settings.AUDIT_SYSLOG_CLIENT_CERT)
    return context


class Connection:
    """One connection to the receiver, opened when needed and again after it broke."""

    def __init__(self, destination: Destination, timeout: float = TIMEOUT_S):
        self.destination = destination
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def send(self, data: bytes) -> None:
        if self.sock is not None and _closed_by_peer(self.sock, self.timeout):
            self.close()  # the receiver went away since the last batch: sending now would vanish
        try:
            if self.sock is None:
                self.sock = self._connect()
            self.sock.sendall(data)
        except (OSError, ValueError):
            self.close()
            raise

    def _connect(self) -> socket.socket:
        dest = self.destination
        sock = socket.create_connection((dest.host, dest.port), timeout=self.timeout)
        if dest.scheme == "tls":
            try:
                sock = tls_context().wrap_socket(sock, server_hostname=dest.host)
                _await_refusal(sock, self.timeout)
            except (OSError, ValueError):
                sock.close()
                raise
        return sock

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """A syslog receiver never writes: anything to read is its close (FIN, TLS close_notify or alert)."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False  # nothing (a TLS 1.3 session ticket is read and set aside by recv)
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)
    return True


def _await_refusal(sock: socket.socket, timeout: float) -> None:
    """With TLS 1.3 a receiver refuses the console's client certificate (or the lack of one) after
    the handshake has completed on this side: wait a moment for its alert, or the first batch would
    be written into a connection it is closing. The alert raises ssl.SSLError."""
    sock.settimeout(REFUSAL_WAIT_S)
    try:
        if sock.recv(1) == b"":
            raise ConnectionResetError("the receiver closed the connection after the TLS handshake")
        raise ConnectionError("the receiver sent data; a syslog receiver sends none")
    except TimeoutError:
        pass  # no word from the receiver: it accepted the connection
    finally:
        sock.settimeout(timeout)


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:255]


class Forwarder:
    """Sends the rows after the cursor, a batch at a time; step() is one turn of the loop."""

    def __init__(self, url: str, *, connection: Connection | None = None, owner: str = "", batch: int = BATCH):
        self.destination = Destination.from_url(url)
        self.connection = connection or Connection(self.destination)
        self.owner = owner or owner_name()
        self.batch = batch
        self.failures = 0

    def pending(self) -> bool:
        done = ForwardCursor.objects.filter(destination=self.destination.key).values_list("last_sequence", flat=True)
        return AuditEvent.objects.filter(id__gt=done.first() or 0).exists()

    def forward_batch(self) -> int:
        """Send the next batch, if this forwarder holds (or takes) the lease; how many were sent.
        Raises OSError when the receiver could not be reached: the cursor stays."""
        cursor = self._lease()
        if cursor is None:
            return 0
        events = list(AuditEvent.objects.filter(id__gt=cursor.last_sequence).order_by("id")[: self.batch])
        if not events:
            return 0
        data = b"".join(syslog.frame(self.format(event)) for event in events)
        try:
            self.connection.send(data)
        except (OSError, ValueError) as exc:
            self._failed(cursor, exc)
            raise OSError(f"{self.destination.key}: {exc}") from exc
        self._advance(cursor, events[-1].pk)
        return len(events)

    def format(self, event: AuditEvent) -> bytes:
        return syslog.message(
            event.as_record(),
            event.time,
            facility=settings.AUDIT_SYSLOG_FACILITY,
            hostname=settings.AUDIT_SYSLOG_HOSTNAME or socket.gethostname(),
            procid=str(os.getpid()),
        )

    def step(self) -> float:
        """One turn: send what is waiting; the seconds to wait before the next turn."""
        try:
            sent = self.forward_batch() if self.pending() else 0
        except OSError as exc:
            self.failures += 1
            delay = min(MAX_BACKOFF_S, 2.0 ** (self.failures - 1))
            log.warning("Forwarding the audit trail failed (%s); trying again in %.0f s", exc, delay)
            return delay
        self.failures = 0
        return 0.0 if sent == self.batch else POLL_S

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                close_old_connections()
                delay = self.step()
            except Exception:  # the database away, say: the loop must outlive it
                log.exception("The audit forwarder's turn failed; trying again")
                delay = MAX_BACKOFF_S / 4
            stop.wait(delay)
        self.connection.close()
        close_old_connections()

    def _lease(self) -> ForwardCursor | None:
        now = timezone.now()
        with transaction.atomic():
            cursor, _ = ForwardCursor.objects.select_for_update().get_or_create(destination=self.destination.key)
            held = cursor.lease_owner not in ("", self.owner) and cursor.lease_until and cursor.lease_until > now
            if held:
                return None
            cursor.lease_owner, cursor.lease_until = self.owner, now + LEASE
            cursor.save(update_fields=["lease_owner", "lease_until"])
        return cursor

    def _advance(self, cursor: ForwardCursor, last: int) -> None:
        now = timezone.now()
        moved = ForwardCursor.objects.filter(
            pk=cursor.pk, lease_owner=self.owner, last_sequence=cursor.last_sequence
        ).update(last_sequence=last, forwarded_at=now, lease_until=now + LEASE, last_error="", failed_since=None)
        if not moved:
            log.warning("The audit forwarder's lease ran out while sending: events up to %s may arrive twice", last)

    def _failed(self, cursor: ForwardCursor, exc: Exception) -> None:
        # The lease is given back: another worker (maybe on another machine) may reach the receiver.
        ForwardCursor.objects.filter(pk=cursor.pk, lease_owner=self.owner).update(
            lease_owner="",
            lease_until=None,
            last_error=str(exc)[:1000] or type(exc).__name__,
            failed_since=cursor.failed_since or timezone.now(),
        )


@dataclass(frozen=True)
class Status:
    destination: str
    forwarded_through: int
    waiting: int
    failed_since: object = None
    last_error: str = ""


def status() -> Status | None:
    """How far forwarding got, for the audit page; None when it is off."""
    if not settings.AUDIT_SYSLOG_URL:
        return None
    key = Destination.from_url(settings.AUDIT_SYSLOG_URL).key
    cursor = ForwardCursor.objects.filter(destination=key).first() or ForwardCursor(destination=key)
    waiting = AuditEvent.objects.filter(id__gt=cursor.last_sequence).count()
    return Status(key, cursor.last_sequence, waiting, cursor.failed_since, cursor.last_error)


def start_forwarder(stop: threading.Event) -> threading.Thread | None:
    """Run the forwarder in a daemon thread until `stop` is set; None when forwarding is off."""
    if not settings.AUDIT_SYSLOG_URL:
        return None
    thread = threading.Thread(
        target=Forwarder(settings.AUDIT_SYSLOG_URL).run, args=(stop,), name="audit-forwarder", daemon=True
    )
    thread.start()
    return thread
