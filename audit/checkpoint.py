"""The chain's head, signed with a key the database does not hold and kept outside the database.

Whoever can write the database can delete the last rows or rewrite a row and recompute every hash
after it: the chain alone still verifies. The checkpoint file names the last committed event (id
and hash) with an HMAC-SHA256 under AUDIT_KEY, so verify_audit sees the trail end before the
checkpoint (truncation) or a different hash at the checkpoint's event (a recomputed tail). It is
rewritten after each commit that added an event: one small file, replaced atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


class CheckpointError(Exception):
    """The checkpoint file exists but is not one this console signed."""


@dataclass(frozen=True)
class Checkpoint:
    id: int
    hash: str


def path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_FILE)


def _mac(event_id: int, event_hash: str) -> str:
    message = f"audit-checkpoint\n{event_id}\n{event_hash}".encode()
    return hmac.new(settings.AUDIT_KEY.encode(), message, hashlib.sha256).hexdigest()


def read() -> Checkpoint | None:
    """The signed head, or None when there is no checkpoint file yet."""
    try:
        data = json.loads(path().read_text())
        checkpoint = Checkpoint(int(data["id"]), str(data["hash"]))
        mac = str(data["mac"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint {path()} cannot be read: {exc}") from None
    if not hmac.compare_digest(mac, _mac(checkpoint.id, checkpoint.hash)):
        raise CheckpointError(f"the checkpoint {path()} is not signed with AUDIT_KEY")
    return checkpoint


def write(event_id: int, event_hash: str, *, force: bool = False) -> None:
    """Advance the checkpoint to this event. Never moves it back (unless forced: re-anchoring), so
    two processes committing at once leave the later event; a lock keeps their writes apart."""
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(target.with_name(target.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force:
            try:
                current = read()
            except CheckpointError:
                current = None  # an unreadable checkpoint is replaced; verify_audit reported it already
            if current is not None and current.id >= event_id:
                return
        body = json.dumps({"id": event_id, "hash": event_hash, "mac": _mac(event_id, event_hash)})
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # mode 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(body + "\n")
        os.replace(temporary, target)
    finally:
        os.close(lock)


def read_quietly() -> Checkpoint | None:
    try:
        return read()
    except CheckpointError:
        return None
