"""Forwarding the audit trail to syslog: a real receiver on 127.0.0.1 (TCP, and TLS with a certificate
made here) gets every event, in order, with RFC 5424 headers, and can verify the chain; a receiver
that is down, then up, loses nothing; two forwarders never send one event twice."""

import json
import os
import re
import socket
import ssl
from datetime import UTC, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from audit import forward, syslog
from audit.forward import Forwarder
from audit.log import record
from audit.models import AuditEvent, ForwardCursor
from fabric.emulator.tls import ensure_certificates, server_context
from tests.audit.siem import Receiver, verified
from tests.served import free_port

pytestmark = pytest.mark.django_db

HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>1) (?P<timestamp>\S+) (?P<hostname>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>-) (?P<msg>\{.*\})\Z",
    re.DOTALL,
)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def syslog_settings(settings):
    settings.AUDIT_SYSLOG_FACILITY = "authpriv"
    settings.AUDIT_SYSLOG_HOSTNAME = "console.contoso.test"
    settings.AUDIT_SYSLOG_CA_FILE = ""
    settings.AUDIT_SYSLOG_TLS_VERIFY = True
    settings.AUDIT_SYSLOG_CLIENT_CERT = ""
    return settings


def trail(count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        outcome = "denied" if n % 7 == 3 else "success"
        record("test.event", target_type="host", target_name=f"hv-{n:03d}", details={"n": n}, outcome=outcome)


def drain(forwarder: Forwarder) -> int:
    sent = 0
    while batch := forwarder.forward_batch():
        sent += batch
    return sent


def parsed(messages: list[bytes]) -> list[dict]:
    return [json.loads(HEADER.match(m)["msg"]) for m in messages]


def all_sequences() -> list[int]:
    return list(AuditEvent.objects.order_by("id").values_list("id", flat=True))


def test_a_receiver_gets_every_event_in_order(syslog_settings, receiver):
    trail(120)
    forwarder = Forwarder(f"tcp://127.0.0.1:{receiver.port}", batch=50)

    assert drain(forwarder) == AuditEvent.objects.count()

    records = parsed(receiver.wait_for(AuditEvent.objects.count()))
    assert [r["sequence"] for r in records] == all_sequences()
    assert verified(records)  # the SIEM can check the chain from what it received
    assert records[-1]["details"] == {"n": 119} and records[-1]["target_name"] == "hv-119"
    assert ForwardCursor.objects.get().last_sequence == all_sequences()[-1]


def test_each_message_is_rfc_5424_with_sequence_and_hash(syslog_settings, receiver):
    syslog_settings.AUDIT_SYSLOG_FACILITY = "local3"
    record("host.checked", target_name="hv-a")
    record("permission_denied", target_name="/jobs/1/cancel/", outcome="denied")
    drain(Forwarder(f"tcp://127.0.0.1:{receiver.port}"))

    messages = receiver.wait_for(2)
    events = list(AuditEvent.objects.order_by("id"))
    assert len(messages) == len(events)
    for raw, event in zip(messages, events, strict=True):
        header = HEADER.match(raw)
        severity = 5 if event.outcome == "success" else 4
        assert int(header["pri"]) == 19 * 8 + severity  # local3
        assert header["version"] == b"1"
        assert header["timestamp"].decode() == event.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert header["hostname"] == b"console.contoso.test"
        assert header["app"] == b"hvmc" and header["msgid"] == b"audit"
        assert header["procid"] == str(os.getpid()).encode()
        body = json.loads(header["msg"])
        assert (body["sequence"], body["hash"], body["prev_hash"]) == (event.pk, event.hash, event.prev_hash)
        assert body["action"] == event.action and body["outcome"] == event.outcome
        assert raw.isascii()


def test_octet_counting_frames_any_content():
    messages = [b"<85>1 - - hvmc - audit - {}", 'with "spaces",\nnewlines and ü'.encode()]  # bytes counted
    stream = b"".join(syslog.frame(m) for m in messages)
    assert stream.startswith(b"27 <85>1 ")
    assert syslog.unframe(stream) == (messages, b"")
    assert syslog.unframe(stream[:-3]) == (messages[:1], syslog.frame(messages[1])[:-3])


def test_a_receiver_that_is_down_then_up_loses_nothing_and_keeps_the_order(syslog_settings):
    port = free_port()
    forwarder = Forwarder(f"tcp://127.0.0.1:{port}", batch=10)
    trail(15)

    assert forwarder.step() == 1.0  # refused: tried again in 1 s, then 2, 4 ...
    assert forwarder.step() == 2.0
    cursor = ForwardCursor.objects.get()
    assert cursor.last_sequence == 0 and cursor.failed_since is not None and "refused" in cursor.last_error.lower()
    trail(10, start=15)  # audit rows are written while the receiver is away

    receiver = Receiver(port=port)
    try:
        while forwarder.step() == 0.0:
            pass
        records = parsed(receiver.wait_for(len(all_sequences())))
    finally:
        receiver.stop()
    assert [r["sequence"] for r in records] == all_sequences()
    cursor.refresh_from_db()
    assert cursor.failed_since is None and cursor.last_error == ""
    assert forwarder.failures == 0


def test_a_receiver_restarted_between_batches_loses_nothing(syslog_settings):
    first = Receiver()
    forwarder = Forwarder(f"tcp://127.0.0.1:{first.port}")
    trail(5)
    drain(forwarder)
    before = parsed(first.wait_for(len(all_sequences())))
    first.stop()  # the connection the forwarder holds is closed by the receiver

    trail(5, start=5)
    second = Receiver(port=first.port)
    try:
        drain(forwarder)
        after = parsed(second.wait_for(len(all_sequences()) - len(before)))
    finally:
        second.stop()
    assert [r["sequence"] for r in before + after] == all_sequences()


def test_recording_never_waits_for_the_network(syslog_settings, monkeypatch):
    syslog_settings.AUDIT_SYSLOG_URL = f"tcp://127.0.0.1:{free_port()}"

    def no_network(*args, **kwargs):
        raise AssertionError("record() touched the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    event = record("host.checked", target_name="hv-a")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.fixture
def certificates(tmp_path):
    return ensure_certificates(tmp_path / "tls", ["localhost"], ["127.0.0.1"])


@pytest.fixture
def tls_receiver(certificates):
    _, cert, key = certificates
    server = Receiver(context=server_context(cert, key))
    yield server
    server.stop()


def test_a_tls_receiver_gets_every_event_in_order(syslog_settings, certificates, tls_receiver):
    syslog_settings.AUDIT_SYSLOG_CA_FILE = str(certificates[0])
    trail(30)

    drain(Forwarder(f"tls://localhost:{tls_receiver.port}", batch=8))

    records = parsed(tls_receiver.wait_for(len(all_sequences())))
    assert [r["sequence"] for r in records] == all_sequences() and verified(records)


def test_a_tls_receiver_the_console_does_not_trust_gets_nothing(syslog_settings, tls_receiver):
    trail(3)  # no AUDIT_SYSLOG_CA_FILE: the system's CAs do not know the test's CA
    forwarder = Forwarder(f"tls://localhost:{tls_receiver.port}")

    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        forwarder.forward_batch()
    assert tls_receiver.wait_for(1, timeout=0.2) == []
    assert ForwardCursor.objects.get().last_sequence == 0


def test_tls_verification_can_be_turned_off_for_a_test_receiver(syslog_settings, tls_receiver):
    syslog_settings.AUDIT_SYSLOG_TLS_VERIFY = False
    trail(3)
    drain(Forwarder(f"tls://127.0.0.1:{tls_receiver.port}"))
    assert len(tls_receiver.wait_for(len(all_sequences()))) == len(all_sequences())


def test_a_tls_receiver_restarted_between_batches_loses_nothing(syslog_settings, certificates):
    syslog_settings.AUDIT_SYSLOG_CA_FILE = str(certificates[0])
    context = server_context(*certificates[1:])
    first = Receiver(context=context)
    forwarder = Forwarder(f"tls://localhost:{first.port}")
    trail(3)
    drain(forwarder)
    drain(forwarder)  # a TLS 1.3 session ticket to read is no closed connection: nothing is sent again
    before = parsed(first.wait_for(len(all_sequences())))
    first.stop()

    trail(3, start=3)
    second = Receiver(port=first.port, context=context)
    try:
        drain(forwarder)
        after = parsed(second.wait_for(len(all_sequences()) - len(before)))
    finally:
        second.stop()
    assert [r["sequence"] for r in before + after] == all_sequences()


@pytest.fixture
def client_certificate(tmp_path):
    """The console's own certificate, self-signed: the receiver trusts exactly this one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console.contoso.test")])
    now = timezone.now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "console-client.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pem


def test_a_receiver_that_wants_a_client_certificate_gets_nothing_without_one_and_all_with_it(
    syslog_settings, certificates, client_certificate
):
    syslog_settings.AUDIT_SYSLOG_CA_FILE = str(certificates[0])
    context = server_context(*certificates[1:])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_certificate)
    receiver = Receiver(context=context)
    try:
        trail(4)
        forwarder = Forwarder(f"tls://localhost:{receiver.port}")
        with pytest.raises(OSError):  # refused after the handshake (TLS 1.3): the batch is not lost in it
            forwarder.forward_batch()
        assert ForwardCursor.objects.get().last_sequence == 0

        syslog_settings.AUDIT_SYSLOG_CLIENT_CERT = str(client_certificate)
        drain(forwarder)
        records = parsed(receiver.wait_for(len(all_sequences())))
    finally:
        receiver.stop()
    assert [r["sequence"] for r in records] == all_sequences()


def test_two_forwarders_take_turns_and_never_send_an_event_twice(syslog_settings, receiver):
    url = f"tcp://127.0.0.1:{receiver.port}"
    one, other = Forwarder(url, owner="worker-1", batch=5), Forwarder(url, owner="worker-2", batch=5)
    trail(12)

    assert one.forward_batch() == 5
    assert other.forward_batch() == 0  # worker-1 holds the lease
    assert one.forward_batch() == 5
    ForwardCursor.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # worker-1 stopped
    drain(other)

    records = parsed(receiver.wait_for(len(all_sequences())))
    assert [r["sequence"] for r in records] == all_sequences()


def test_it_waits_longer_after_each_failure_up_to_a_minute(syslog_settings):
    forwarder = Forwarder(f"tcp://127.0.0.1:{free_port()}")
    trail(1)
    assert [forwarder.step() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_it_polls_when_idle_and_keeps_going_when_a_batch_was_full(syslog_settings, receiver):
    forwarder = Forwarder(f"tcp://127.0.0.1:{receiver.port}", batch=4)
    trail(6)
    assert forwarder.step() == 0.0  # a full batch: more may wait
    assert forwarder.step() == forward.POLL_S
    assert forwarder.step() == forward.POLL_S  # nothing pending


def test_forwarding_is_off_by_default(settings):
    settings.AUDIT_SYSLOG_URL = ""
    assert forward.start_forwarder(stop=None) is None
    with pytest.raises(CommandError, match="AUDIT_SYSLOG_URL"):
        call_command("forward_audit", "--once")


def test_forward_audit_once_catches_up_and_fails_when_the_receiver_is_down(syslog_settings, receiver, capsys):
    syslog_settings.AUDIT_SYSLOG_URL = f"tcp://127.0.0.1:{receiver.port}"
    trail(3)
    call_command("forward_audit", "--once")
    assert f"{len(all_sequences())} events forwarded" in capsys.readouterr().out
    assert [r["sequence"] for r in parsed(receiver.wait_for(len(all_sequences())))] == all_sequences()

    syslog_settings.AUDIT_SYSLOG_URL = f"tcp://127.0.0.1:{free_port()}"
    record("host.checked")
    with pytest.raises(CommandError, match="0 events forwarded, then") as refused:
        call_command("forward_audit", "--once")
    assert refused.value.returncode == 1


def test_the_audit_page_says_how_far_forwarding_got_and_since_when_it_fails(syslog_settings, viewer_client):
    port = free_port()
    syslog_settings.AUDIT_SYSLOG_URL = f"tcp://127.0.0.1:{port}"
    page = viewer_client.get(reverse("audit:list")).content.decode()
    waiting = AuditEvent.objects.count()
    assert f"Forwarded to syslog (tcp://127.0.0.1:{port}) through event 0; {waiting} waiting." in page

    Forwarder(syslog_settings.AUDIT_SYSLOG_URL).step()  # refused
    page = viewer_client.get(reverse("audit:list")).content.decode()
    assert f"Forwarding to syslog (tcp://127.0.0.1:{port}) fails since" in page
    assert f"It is tried again; {waiting} events after event 0 wait, none is lost." in page
    page = viewer_client.get(reverse("audit:list"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert f"Sie wird erneut versucht; {waiting} Ereignisse nach Ereignis 0 warten" in page


def test_the_audit_page_says_nothing_of_forwarding_when_it_is_off(settings, viewer_client):
    settings.AUDIT_SYSLOG_URL = ""
    assert "syslog" not in viewer_client.get(reverse("audit:list")).content.decode()
