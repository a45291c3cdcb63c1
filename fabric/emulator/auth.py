"""How an emulated host's WinRM service logs a client on, as Windows' WinRM service does.

Offered (winrm/config/service/auth): Negotiate (SPNEGO: Kerberos or NTLM), Kerberos, CredSSP, Basic.
Over plain HTTP every message after the logon is encrypted with the logon's security context
(MS-WSMV "HTTP-SPNEGO-session-encrypted", "HTTP-Kerberos-session-encrypted",
"HTTP-CredSSP-session-encrypted": a multipart body pypsrp's WinRMEncryption writes and reads, so the
server side reuses it with pyspnego's acceptor contexts). Basic, and anything else unencrypted, is
accepted over HTTP only when AllowUnencrypted is set (the demo's explicit allowance).

The security context belongs to the TCP connection (http.sys ties it there): one ConnectionAuth per
connection. A logon that fails is answered 401 with the offered schemes, as Windows does.

Acceptors: NTLM is pyspnego's own, which checks the client's response against NTLM_USER_FILE (a
file of accounts and their hashes this module keeps for every running emulator). Kerberos is
GSSAPI (python-gssapi over MIT krb5, only where it is installed) with the keytab KRB5_KTNAME names,
holding HTTP/<host fqdn>. CredSSP is pyspnego's acceptor: TLS inside the HTTP exchange with a
generated self-signed RSA certificate, as WinRM generates one for CredSSP, then SPNEGO inside it,
then the user's delegated password.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import hmac
import importlib.util
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import spnego
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pypsrp.encryption import WinRMEncryption
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

log = logging.getLogger(__name__)

NEGOTIATE, KERBEROS, CREDSSP, BASIC = "Negotiate", "Kerberos", "CredSSP", "Basic"
SCHEMES = {s.lower(): s for s in (NEGOTIATE, KERBEROS, CREDSSP, BASIC)}
ENCRYPTED_TYPES = ("multipart/encrypted", "multipart/x-multi-encrypted")
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_PROTOCOL = re.compile(r'protocol="?([^";]+)"?', re.I)


def kerberos_available() -> bool:
    """python-gssapi is installed (it builds only where MIT krb5's headers are: requirements-kerberos.txt)."""
    return importlib.util.find_spec("gssapi") is not None


@dataclass(frozen=True)
class WinRMService:
    """winrm/config/service of one host: the authentications it accepts and AllowUnencrypted.

    Defaults: a host prepared for this console (Enable-WSManCredSSP -Role Server done, so cluster
    cmdlets work remotely); Basic is on for the emulator's local account but, as on Windows, plain
    HTTP carries it only with allow_unencrypted.
    """

    negotiate: bool = True
    kerberos: bool = True
    credssp: bool = True
    basic: bool = True
    allow_unencrypted: bool = False

    def offered(self) -> list[str]:
        """WWW-Authenticate values of a 401, in Windows' order."""
        offers = []
        if self.negotiate:
            offers.append(NEGOTIATE)
        if self.kerberos and kerberos_available():
            offers.append(KERBEROS)
        if self.credssp:
            offers.append(CREDSSP)
        if self.basic:
            offers.append(f'{BASIC} realm="WSMAN"')
        return offers


@dataclass
class ConnectionAuth:
    """The logon of one client connection."""

    scheme: str = ""  # Negotiate, Kerberos, CredSSP or Basic as the client asked
    context: Any = None  # the pyspnego acceptor while (and after) a handshake runs
    user: str | None = None  # who logged on, once the logon is complete
    mode: str = ""  # what was actually used: ntlm, kerberos, credssp or basic

    @property
    def encrypts(self) -> bool:
        return self.context is not None and self.user is not None and self.scheme != BASIC


@dataclass
class Outcome:
    """What the server does with one request after authentication."""

    status: int = 200  # 401 when the logon is not (yet) complete
    headers: list[tuple[str, str]] = field(default_factory=list)
    user: str | None = None
    body: bytes | None = None  # the SOAP request, decrypted when it came encrypted
    error: str = ""  # why a request was refused (logged, never sent)


def channel_bindings(certificate_der: bytes | None) -> GssChannelBindings | None:
    """RFC 5929 tls-server-end-point of the HTTPS certificate: a Negotiate logon over HTTPS is bound to
    the TLS channel it came over, so one relayed from another TLS connection fails. As with WinRM's
    CbtHardeningLevel=Strict, an NTLM client that sends no bindings is refused too (the default,
    Relaxed, accepts it; pyspnego's acceptor cannot tell the two apart). pypsrp always binds."""
    if certificate_der is None:
        return None
    certificate = x509.load_der_x509_certificate(certificate_der)
    algorithm = certificate.signature_hash_algorithm
    if algorithm is None or algorithm.name in ("md5", "sha1"):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


class Authenticator:
    """The logon rules of one host's WinRM service, for the emulator's one account."""

    def __init__(
        self,
        fqdn: str,
        username: str,
        password: str,
        service: WinRMService,
        https: bool,
        bindings: GssChannelBindings | None = None,
    ):
        self.fqdn = fqdn
        self.username = username
        self.password = password
        self.service = service
        self.https = https
        self.bindings = bindings

    # --- the request ---------------------------------------------------------------------------

    def authenticate(self, state: ConnectionAuth, authorization: str | None, content_type: str, body: bytes) -> Outcome:
        if authorization:
            scheme, _, token = authorization.strip().partition(" ")
            scheme = SCHEMES.get(scheme.lower(), "")
            if scheme == BASIC:
                return self._basic(state, token.strip(), content_type, body)
            if scheme and self._allowed(scheme):
                outcome = self._step(state, scheme, token.strip())
                if outcome.status != 200:
                    return outcome
                return self._payload(state, content_type, body, outcome)
            return self.challenge(f"scheme {scheme or authorization.split(' ')[0]!r} not offered")
        if state.user is not None and state.scheme != BASIC:
            return self._payload(state, content_type, body, Outcome(user=state.user))
        return self.challenge("no credentials")

    def challenge(self, reason: str) -> Outcome:
        return Outcome(401, [("WWW-Authenticate", offer) for offer in self.service.offered()], error=reason)

    def _allowed(self, scheme: str) -> bool:
        return {
            NEGOTIATE: self.service.negotiate,
            KERBEROS: self.service.kerberos and kerberos_available(),
            CREDSSP: self.service.credssp,
        }[scheme]

    # --- Basic ---------------------------------------------------------------------------------

    def _basic(self, state: ConnectionAuth, token: str, content_type: str, body: bytes) -> Outcome:
        if not self.service.basic:
            return self.challenge("Basic is not enabled")
        if not self.https and not self.service.allow_unencrypted:
            # Windows answers 401 ("the specified credentials were rejected") for Basic over HTTP
            # while AllowUnencrypted is false, whatever the password.
            return self.challenge("Basic over HTTP needs AllowUnencrypted")
        try:
            user, _, password = base64.b64decode(token).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self.challenge("malformed Basic credentials")
        # Constant-time comparison: the emulator may listen beyond loopback in a lab.
        same_user = hmac.compare_digest(user.lower().encode(), self.username.lower().encode())
        same_password = hmac.compare_digest(password.encode(), self.password.encode())
        if not (same_user and same_password):
            return self.challenge("wrong Basic credentials")
        state.scheme, state.context, state.user, state.mode = BASIC, None, user, "basic"
        if content_type.lower().startswith(ENCRYPTED_TYPES):
            return self.challenge("an encrypted message on a Basic logon")
        return Outcome(user=user, body=body)

    # --- Negotiate, Kerberos, CredSSP ------------------------------------------------------------

    def _step(self, state: ConnectionAuth, scheme: str, token: str) -> Outcome:
        try:
            data = base64.b64decode(token)
        except binascii.Error:
            return self.challenge("malformed token")
        if state.context is None or state.scheme != scheme or state.user is not None:
            state.scheme, state.user, state.mode = scheme, None, ""
            state.context = self._acceptor(scheme)
        try:
            out = state.context.step(data)
        except (SpnegoError, ValueError, OSError) as exc:  # a wrong password, an unknown SPN, a bad token
            state.context = None
            return self.challenge(f"{scheme} logon failed: {exc}")
        if not state.context.complete:
            if not out:
                state.context = None
                return self.challenge(f"{scheme} logon ended without completing")
            return Outcome(401, [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")])
        user = self._user(state)
        if user is None:
            state.context = None
            return self.challenge(f"{scheme} logon of an account this host does not know")
        state.user = user
        headers = [("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}")] if out else []
        return Outcome(user=user, headers=headers)

    def _acceptor(self, scheme: str):
        ensure_ntlm_store()
        if scheme == CREDSSP:
            return spnego.server(hostname=self.fqdn, service="HTTP", protocol="credssp")
        protocol = "kerberos" if scheme == KERBEROS else "negotiate"
        return spnego.server(
            hostname=self.fqdn,
            service="HTTP",
            protocol=protocol,
            channel_bindings=self.bindings,
            options=spnego.NegotiateOptions.wrapping_winrm,
        )

    def _user(self, state: ConnectionAuth) -> str | None:
        """The account that logged on, when it is this host's account (a Kerberos principal of any realm
        with the same name, as a domain account in the host's Administrators group)."""
        context = state.context
        if state.scheme == CREDSSP:
            credential = context.get_extra_info("client_credential")
            if credential is None or getattr(credential, "password", None) is None:
                return None
            state.mode = "credssp"
            domain = getattr(credential, "domain_name", "") or ""
            name = f"{domain}\\{credential.username}" if domain else credential.username
            return name if _same_account(name, self.username) else None
        principal = str(context.client_principal or "")
        state.mode = context.negotiated_protocol or ""
        return principal if _same_account(principal, self.username) else None

    # --- the message -----------------------------------------------------------------------------

    def _payload(self, state: ConnectionAuth, content_type: str, body: bytes, outcome: Outcome) -> Outcome:
        if not body:
            outcome.body = b""
            return outcome
        if content_type.lower().startswith(ENCRYPTED_TYPES):
            boundary = _BOUNDARY.search(content_type)
            protocol = _PROTOCOL.search(content_type)
            if boundary is None or protocol is None:
                return Outcome(400, error="an encrypted message without boundary or protocol")
            try:
                outcome.body = WinRMEncryption(state.context, protocol.group(1)).unwrap_message(body, boundary.group(1))
            except Exception as exc:
                return Outcome(400, error=f"cannot decrypt the message: {exc}")
            return outcome
        if not self.https and not self.service.allow_unencrypted:
            # pywinrm#129 and #208: Windows refuses an unencrypted message on HTTP with HTTP 500
            # while AllowUnencrypted is false.
            return Outcome(500, error="an unencrypted message over HTTP (AllowUnencrypted is false)")
        outcome.body = body
        return outcome

    @staticmethod
    def wrap(state: ConnectionAuth, request_content_type: str, payload: bytes) -> tuple[str, bytes]:
        """The answer as the client expects it: encrypted when its request was."""
        if not (state.encrypts and request_content_type.lower().startswith(ENCRYPTED_TYPES)):
            return "application/soap+xml;charset=UTF-8", payload
        protocol = _PROTOCOL.search(request_content_type)
        encryption = WinRMEncryption(state.context, protocol.group(1) if protocol else WinRMEncryption.SPNEGO)
        kind, data = encryption.wrap_message(payload)
        return f'{kind};protocol="{encryption.protocol}";boundary="Encrypted Boundary"', data


def _same_account(logged_on: str, configured: str) -> bool:
    """DOMAIN\\user, user@REALM and user name the same account when the user parts match (any case);
    a domain or realm given on both sides must match by its first label."""

    def parts(name: str) -> tuple[str, str]:
        if "\\" in name:
            domain, user = name.split("\\", 1)
        elif "@" in name:
            user, domain = name.rsplit("@", 1)
        else:
            domain, user = "", name
        return domain.split(".")[0].lower(), user.lower()

    (domain_a, user_a), (domain_b, user_b) = parts(logged_on), parts(configured)
    same_user = hmac.compare_digest(user_a.encode(), user_b.encode())
    return same_user and (not domain_a or not domain_b or domain_a == domain_b)


# --- NTLM_USER_FILE --------------------------------------------------------------------------------

_store_lock = threading.Lock()
_accounts: list[tuple[str, str, tuple[str, ...]]] = []  # (user, password, domains) per running emulator
_store_path: Path | None = None


def register_account(username: str, password: str, domains: list[str] | tuple[str, ...] = ()) -> None:
    """Let the NTLM acceptor check this account (an emulator starting). A plain user name is also known
    by the names a domain member's account has in each domain: CONTOSO\\user and user@contoso.test."""
    with _store_lock:
        _accounts.insert(0, (username, password, tuple(sorted(domains))))
        _write_store()


def unregister_account(username: str, password: str, domains: list[str] | tuple[str, ...] = ()) -> None:
    with _store_lock:
        entry = (username, password, tuple(sorted(domains)))
        if entry in _accounts:
            _accounts.remove(entry)
            _write_store()


def ensure_ntlm_store() -> None:
    """pyspnego's NTLM acceptor reads the file NTLM_USER_FILE names (process-wide)."""
    with _store_lock:
        if _store_path is None or os.environ.get("NTLM_USER_FILE") != str(_store_path):
            _write_store()


def _write_store() -> None:
    """Lock held. smbpasswd's format (DOMAIN\\user:uid:LM hash:NT hash:flags:time, so a password may
    hold any character); the first matching line wins."""
    global _store_path
    if _store_path is None:
        folder = Path(tempfile.mkdtemp(prefix="winrm-ntlm-"))
        _store_path = folder / "users"
        atexit.register(_remove_store, folder)
    lines = [
        f"{name}:1000:{lmowfv1(password).hex().upper()}:{ntowfv1(password).hex().upper()}:[U]:LCT-00000000"
        for username, password, domains in _accounts
        for name in _names(username, domains)
    ]
    _store_path.touch(mode=0o600)
    _store_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.environ["NTLM_USER_FILE"] = str(_store_path)


def _names(username: str, domains: tuple[str, ...]) -> list[str]:
    if "\\" in username or "@" in username:
        return [username]
    return [
        username,
        *(f"{d.split('.')[0].upper()}\\{username}" for d in domains),
        *(f"{username}@{d}" for d in domains),
    ]


def _remove_store(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()
