"""WinRM credentials of the hosts, encrypted at rest (Fernet), and how the driver finds the one to use.

A HostCredential belongs to one host, or to none: that one is the default for hosts without their
own. The password is stored only as a Fernet token; the key comes from CREDENTIAL_KEY (several keys
separated by commas: the first encrypts, all decrypt, for rotation) or, in the embedded default,
from a key file generated once into DATA_DIR. Nothing here renders, logs or returns the password
except resolve(), which hands it to the driver.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fabric.hyperv.api import Connection
from fabric.models import Host
from utilities.encryption import fernet


class WinRMAuth(models.TextChoices):
    NEGOTIATE = "negotiate", _("Negotiate (Kerberos, then NTLM)")
    KERBEROS = "kerberos", "Kerberos"
    CREDSSP = "credssp", "CredSSP"
    NTLM = "ntlm", "NTLM"
    BASIC = "basic", _("Basic (HTTPS only, unless allowed)")


class HostCredential(models.Model):
    """How to log on to a host's WinRM service; host=None is the default credential."""

    host = models.OneToOneField(Host, null=True, blank=True, on_delete=models.CASCADE, related_name="credential")
    auth = models.CharField(max_length=16, choices=WinRMAuth.choices, default=WinRMAuth.NEGOTIATE)
    username = models.CharField(max_length=255, help_text="DOMAIN\\user or user@domain")
    secret = models.BinaryField(editable=False, help_text="The password, Fernet-encrypted")
    # NULL hosts never collide in a unique index: this flag makes "one default" a constraint.
    is_default = models.BooleanField(default=False, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_credential"),
        ]

    def __str__(self) -> str:
        return f"{self.username} ({self.auth}) for {self.host or 'every host without its own'}"

    def __repr__(self) -> str:
        return f"<HostCredential {self.pk} {self.username!r} host={self.host_id}>"  # never the secret

    def save(self, *args, **kwargs):
        self.is_default = self.host_id is None
        super().save(*args, **kwargs)
        forget_cached()

    def set_password(self, password: str) -> None:
        self.secret = fernet().encrypt(password.encode("utf-8"))


def decrypt(credential: HostCredential) -> str:
    try:
        return fernet().decrypt(bytes(credential.secret)).decode("utf-8")
    except InvalidToken:
        raise ImproperlyConfigured(
            f"The stored password of {credential.username} cannot be decrypted with CREDENTIAL_KEY"
        ) from None


# --- what the driver asks ---------------------------------------------------------------------------

_CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, HostCredential | None]] = {}
_cache_lock = threading.Lock()


def forget_cached() -> None:
    with _cache_lock:
        _cache.clear()


def credential_for(fqdn: str) -> HostCredential | None:
    """The host's own credential, else the default one (looked up at most every 30 s per host)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(fqdn)
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
    try:
        found = (
            HostCredential.objects.filter(host__fqdn=fqdn).first()
            or HostCredential.objects.filter(is_default=True).first()
        )
    except DatabaseError:
        found = None  # no table yet (before migrate): fall back to the emulator's
    with _cache_lock:
        _cache[fqdn] = (now, found)
    return found


def resolve(conn: Connection) -> Connection:
    """conn with auth, user and password filled in: stored credential, or the embedded emulator's."""
    if conn.username:
        return conn
    credential = credential_for(conn.fqdn)
    if credential is not None:
        password = decrypt(credential)
        return dataclasses.replace(conn, auth=credential.auth, username=credential.username, password=password)
    if getattr(settings, "HYPERV_EMULATOR", False):
        return dataclasses.replace(
            conn, auth="basic", username=settings.HYPERV_EMULATOR_USER, password=settings.HYPERV_EMULATOR_PASSWORD
        )
    return conn
