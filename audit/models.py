"""The audit trail: one append-only, hash-chained table.

Each row's hash covers its own fields and the previous row's hash, so changing, inserting or
deleting any row breaks the chain from there on (manage.py verify_audit names the first broken
row); the signed checkpoint (audit/checkpoint.py) covers the last rows and a recomputed tail.
Rows cannot be changed or deleted through the ORM, the admin or the API.

The hash covers the actor's id and name as copied onto the row (actor_pk, username), never the
foreign key: deleting a user sets actor to NULL, and must not change what was hashed.
"""

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Outcome(models.TextChoices):
    SUCCESS = "success", _("Success")
    FAILURE = "failure", _("Failure")
    DENIED = "denied", _("Denied")


class AppendOnly(Exception):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events cannot be changed")

    def delete(self):
        raise AppendOnly("audit events cannot be deleted")


class AuditEvent(models.Model):
    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_pk = models.PositiveIntegerField(null=True, blank=True, help_text="Copied: stays when the user is gone")
    username = models.CharField(max_length=150, blank=True, help_text="Copied: stays when the user is gone")
    role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=255, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["username", "time"]),
            models.Index(fields=["outcome", "time"]),
            # One action's rows of the last minute(s): the refusals' cap and the sign-in lockout.
            models.Index(fields=["action", "time"], name="audit_action_time"),
        ]

    def __str__(self):
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.target_name}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnly("audit events cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events cannot be deleted")

    def compute_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical())

    def canonical(self) -> str:
        """The row's content as hashed: every field but the hashes, in a fixed form."""
        return json.dumps(self.content(), sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def content(self) -> dict:
        """Every field the hash covers, as canonical() writes them."""
        return {
            "time": self.time.isoformat(timespec="microseconds"),
            # The key stays "actor" and the value the id: rows hashed before actor_pk verify unchanged.
            "actor": self.actor_pk,
            "username": self.username,
            "role": self.role,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "target_name": self.target_name,
            "details": self.details,
            "outcome": self.outcome,
            "source_ip": self.source_ip,
            "request_id": self.request_id,
        }

    def as_record(self) -> dict:
        """The row as exported (JSON Lines) and forwarded (syslog): its place in the chain (sequence:
        the id, the chain's order), the hashed content, and both hashes. A reader recomputes the hash
        without the console: sha256(prev_hash + "\n" + the record without sequence, prev_hash and
        hash as compact JSON with sorted keys)."""
        return {"sequence": self.pk, **self.content(), "prev_hash": self.prev_hash, "hash": self.hash}


GENESIS = "0" * 64


def chain_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


class ForwardCursor(models.Model):
    """How far the trail was forwarded to one destination (audit/forward.py): the last sequence it
    accepted, and which forwarder holds the lease to send the next rows (one at a time, however many
    workers run one)."""

    destination = models.CharField(max_length=255, unique=True)
    last_sequence = models.BigIntegerField(default=0)
    lease_owner = models.CharField(max_length=255, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    forwarded_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failed_since = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.destination} at {self.last_sequence}"
