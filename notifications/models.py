"""What can be told (EventKind), to whom (Webhook, Subscription), what was (Notice) and each attempt
to tell it (Delivery, the delivery log)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from utilities.encryption import fernet


class EventKind(models.TextChoices):
    JOB_FAILED = "job.failed", _("A migration failed")
    JOB_SUCCEEDED = "job.succeeded", _("A migration succeeded")
    BATCH_FINISHED = "batch.finished", _("A batch finished")
    HOST_UNREACHABLE = "host.unreachable", _("A host stopped answering")
    DRIFT_FOUND = "drift.found", _("Settings drift found")
    WINDOW_STARTING = "window.starting", _("A maintenance window starts")


PING = "ping"  # an administrator's test of a webhook; nobody subscribes to it


class Webhook(models.Model):
    """An HTTP(S) endpoint that receives the events of the kinds it names, signed with its secret."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    kinds = models.JSONField(default=list, blank=True, help_text="EventKind values")
    secret = models.BinaryField(editable=False, help_text="The HMAC key, Fernet-encrypted")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Webhook {self.pk} {self.name!r}>"  # never the secret

    def kind_labels(self) -> list[str]:
        return [EventKind(kind).label for kind in self.kinds if kind in EventKind.values]

    def set_secret(self, secret: str) -> None:
        self.secret = fernet().encrypt(secret.encode("utf-8"))

    def signing_key(self) -> bytes:
        return fernet().decrypt(bytes(self.secret))


class Subscription(models.Model):
    """A user's own choice: which events reach them by e-mail."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription")
    kinds = models.JSONField(default=list, blank=True, help_text="EventKind values")
    email = models.BooleanField(default=False, help_text="Send these events to the account's e-mail address")

    def __str__(self) -> str:
        return f"{self.user} ({', '.join(self.kinds) or 'nothing'})"


class Notice(models.Model):
    """One event as it happened; `key` makes an event told once (a batch finishing)."""

    kind = models.CharField(max_length=32)
    data = models.JSONField(default=dict)
    key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "key"], condition=~models.Q(key=""), name="notice_told_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.created_at:%Y-%m-%d %H:%M:%S}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("delivered")
    FAILED = "failed", _("failed")


class Delivery(models.Model):
    """Telling one notice to one webhook or one user's e-mail address, with the last attempt's answer."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="deliveries")
    webhook = models.ForeignKey(Webhook, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker is sending it until then")
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="HTTP status of the last answer")
    last_answer = models.TextField(blank=True, help_text="The last answer's first KB, or the error")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(webhook__isnull=False, user__isnull=True)
                | models.Q(webhook__isnull=True, user__isnull=False),
                name="delivery_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.notice.kind} to {self.webhook or self.user} ({self.state})"
