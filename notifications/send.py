"""Delivering notifications: webhooks (signed JSON over HTTP(S)) and e-mail (Django's mail settings),
retried with backoff. Run by a thread of every job worker (start_sender); a delivery is claimed with a
conditional UPDATE and a lease, so two workers never send it at once.

A webhook request is a POST with the JSON body {"id", "kind", "sent_at", "attempt", "data"} and:
  X-Console-Event: the kind          X-Console-Delivery: the id (the same on every retry)
  X-Console-Timestamp: Unix seconds  X-Console-Signature: sha256=<hex HMAC-SHA256>
signed with the webhook's secret over the timestamp, a dot and the raw body (b"1765000000.{...}"),
so a receiver can refuse an old request replayed (as GitHub's X-Hub-Signature-256, plus the time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from notifications.emit import email_enabled
from notifications.models import PING, Delivery, DeliveryState, EventKind, Notice, Webhook
from utilities.ticker import start_ticker

log = logging.getLogger(__name__)

BACKOFF_S = (10, 30, 120, 600, 1800)  # after the 1st, 2nd, ... failed attempt
ANSWER_CHARS = 1024
SEND_EVERY_S = 3.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is an answer, not a place to send the body to


_opener = urllib.request.build_opener(_NoRedirects)


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def deliver_due(now: datetime | None = None, limit: int = 50) -> int:
    """Send the deliveries that are due (as many as `limit`); returns how many this call sent."""
    now = now or timezone.now()
    due = Delivery.objects.filter(_due(now)).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    return sum(deliver(pk, now) for pk in list(due))


def _due(now: datetime) -> Q:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    return Q(state=DeliveryState.PENDING, next_attempt_at__lte=now) & free


def deliver(pk: int, now: datetime | None = None) -> bool:
    """Claim one delivery and make one attempt; False when it was not due or another worker has it."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=2 * settings.NOTIFY_TIMEOUT + 30)
    if not Delivery.objects.filter(_due(now), pk=pk).update(lease_until=lease, attempts=F("attempts") + 1):
        return False
    delivery = Delivery.objects.select_related("notice", "webhook", "user").get(pk=pk)
    try:
        if delivery.webhook_id:
            ok, status, answer = _post(delivery, delivery.webhook, timezone.now())
        else:
            ok, status, answer = _email(delivery)
    except Exception as exc:  # one bad delivery must not stop the others
        log.exception("delivery %s failed", pk)
        ok, status, answer = False, None, f"{type(exc).__name__}: {exc}"
    _settle(delivery, ok, status, answer, now)
    return True


def _settle(delivery: Delivery, ok: bool, status: int | None, answer: str, now: datetime) -> None:
    fields = {"lease_until": None, "last_status": status, "last_answer": answer[:ANSWER_CHARS], "updated_at": now}
    if ok:
        fields["state"] = DeliveryState.SUCCEEDED
    elif delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        fields["state"] = DeliveryState.FAILED
    else:
        wait = BACKOFF_S[min(delivery.attempts, len(BACKOFF_S)) - 1]
        fields["next_attempt_at"] = now + timedelta(seconds=wait)
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    if not ok:
        log.warning(
            "notification %s to %s: attempt %d failed: %s",
            delivery.notice.kind,
            delivery.webhook or delivery.user,
            delivery.attempts,
            answer[:200],
        )


def body(delivery: Delivery, sent_at: datetime) -> bytes:
    notice = delivery.notice
    content = {
        "id": delivery.pk,
        "kind": notice.kind,
        "sent_at": sent_at.isoformat(),
        "attempt": delivery.attempts,
        "data": notice.data,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _post(delivery: Delivery, webhook: Webhook, sent_at: datetime) -> tuple[bool, int | None, str]:
    raw = body(delivery, sent_at)
    timestamp = str(int(sent_at.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "hyperv-migration-console",
        "X-Console-Event": delivery.notice.kind,
        "X-Console-Delivery": str(delivery.pk),
        "X-Console-Timestamp": timestamp,
        "X-Console-Signature": signature(webhook.signing_key(), timestamp, raw),
    }
    if not webhook.url.lower().startswith(("http://", "https://")):  # the form allows no other; a row might
        return False, None, "only http:// and https:// URLs are sent to"
    request = urllib.request.Request(webhook.url, data=raw, headers=headers, method="POST")  # noqa: S310 - checked
    try:
        with _opener.open(request, timeout=settings.NOTIFY_TIMEOUT) as answer:
            return 200 <= answer.status < 300, answer.status, _text(answer.read(ANSWER_CHARS))
    except urllib.error.HTTPError as exc:
        return False, exc.code, _text(exc.read(ANSWER_CHARS) if exc.fp else b"")
    except (urllib.error.URLError, OSError) as exc:
        return False, None, str(getattr(exc, "reason", exc))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _email(delivery: Delivery) -> tuple[bool, int | None, str]:
    user = delivery.user
    if not email_enabled() or not user.email or not user.is_active:
        delivery.attempts = settings.NOTIFY_MAX_ATTEMPTS  # nothing to retry: fail it now
        return False, None, "e-mail is off (EMAIL_HOST), or the user has no address or is inactive"
    preference = getattr(user, "preference", None)
    with translation.override((preference and preference.language) or settings.LANGUAGE_CODE):
        subject, text = mail_text(delivery.notice)
    send_mail(subject, text, None, [user.email])
    return True, None, f"sent to {user.email}"


def mail_text(notice: Notice) -> tuple[str, str]:
    """Subject and plain text of a notice's e-mail, in the active language (no templates: workers
    send data, they do not render pages)."""
    label = str(EventKind(notice.kind).label) if notice.kind in EventKind.values else notice.kind
    subject = f"[{gettext('Hyper-V migration console')}] {label}"
    lines = [label, ""] + [f"{name}: {_flat(value)}" for name, value in sorted(notice.data.items())]
    lines += ["", gettext("You receive this because you subscribed on your account's Notifications page.")]
    return subject, "\n".join(lines) + "\n"


def _flat(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def ping(webhook: Webhook, user) -> Delivery:
    """An administrator's test: one delivery of kind "ping" to this webhook, attempted now (and
    retried like any other when it fails)."""
    notice = Notice.objects.create(kind=PING, data={"webhook": webhook.name, "by": user.get_username()})
    delivery = Delivery.objects.create(notice=notice, webhook=webhook, next_attempt_at=timezone.now())
    deliver(delivery.pk)
    delivery.refresh_from_db()
    return delivery


_pruned_at: float | None = None
PRUNE_EVERY_S = 3600.0


def prune(now: datetime | None = None) -> int:
    """Forget events (and their delivery log) older than NOTIFY_KEEP_DAYS, but those still being
    delivered; returns how many rows went. 0 days keeps everything."""
    if not settings.NOTIFY_KEEP_DAYS:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=settings.NOTIFY_KEEP_DAYS)
    old = Notice.objects.filter(created_at__lt=cutoff).exclude(deliveries__state=DeliveryState.PENDING)
    return old.delete()[0]


def tick() -> None:
    """The sender's work every few seconds: the due deliveries; once an hour, the old log."""
    global _pruned_at
    deliver_due()
    if _pruned_at is None or time.monotonic() - _pruned_at >= PRUNE_EVERY_S:
        _pruned_at = time.monotonic()
        prune()


def start_sender(stop: threading.Event, interval: float = SEND_EVERY_S) -> threading.Thread:
    """Send due deliveries every `interval` seconds in a daemon thread until `stop` is set: apart from
    the job supervisor, so that a slow receiver never holds up admission."""
    return start_ticker("notification-sender", tick, stop, interval)
