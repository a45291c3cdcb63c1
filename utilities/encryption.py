"""Secrets at rest (host credentials, webhook secrets): Fernet with the key from CREDENTIAL_KEY.

Several keys separated by commas: the first encrypts, all decrypt (rotation). Unset, in the embedded
default, a key file is generated once into DATA_DIR (mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _keys() -> list[bytes]:
    configured = getattr(settings, "CREDENTIAL_KEY", "") or os.environ.get("CREDENTIAL_KEY", "")
    if configured:
        return [k.strip().encode() for k in configured.split(",") if k.strip()]
    path = Path(settings.DATA_DIR) / "credential_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start: the key never sits readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
    return [path.read_bytes().strip()]


def fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError:
        raise ImproperlyConfigured(
            "CREDENTIAL_KEY must be Fernet keys (32 url-safe base64-encoded bytes), separated by commas"
        ) from None
