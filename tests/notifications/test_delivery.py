"""Webhooks get signed deliveries, retried with backoff after a failure; e-mail lands in the outbox."""

import hashlib
import hmac
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications.emit import drift_seen, notify
from notifications.models import Delivery, DeliveryState, EventKind, Notice, Subscription, Webhook
from notifications.send import BACKOFF_S, deliver, deliver_due

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-the-receiver-only"


def make_webhook(url, kinds=(EventKind.JOB_FAILED,), **kw):
    hook = Webhook(name=kw.pop("name", "ops"), url=url, kinds=list(kinds), **kw)
    hook.set_secret(SECRET)
    hook.save()
    return hook


def verify(request) -> bool:
    headers = request["headers"]
    signed = headers["X-Console-Timestamp"].encode() + b"." + request["raw"]
    expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Console-Signature"], expected)


def test_it_retries_after_a_500_and_the_receiver_verifies_the_signature(receiver):
    receiver.answers = [500]
    make_webhook(receiver.url)
    notify(EventKind.JOB_FAILED, {"job": 7, "vm": "web01"})
    now = timezone.now()

    assert deliver_due(now) == 1
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.PENDING, 1, 500)
    assert delivery.last_answer == "answered 500"
    assert delivery.next_attempt_at == now + timedelta(seconds=BACKOFF_S[0])
    assert deliver_due(now + timedelta(seconds=BACKOFF_S[0] - 1)) == 0  # not yet

    assert deliver_due(now + timedelta(seconds=BACKOFF_S[0])) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.SUCCEEDED, 2, 200)

    first, second = receiver.requests
    assert all(verify(r) for r in receiver.requests)
    assert second["headers"]["X-Console-Event"] == "job.failed"
    assert second["headers"]["X-Console-Delivery"] == first["headers"]["X-Console-Delivery"] == str(delivery.pk)
    assert second["headers"]["Content-Type"] == "application/json"
    body = second["body"]
    assert set(body) == {"id", "kind", "sent_at", "attempt", "data"}
    assert (body["id"], body["kind"], body["attempt"], body["data"]) == (
        delivery.pk,
        "job.failed",
        2,
        {"job": 7, "vm": "web01"},
    )
    assert SECRET not in str(receiver.requests)


def test_a_wrong_secret_does_not_verify(receiver):
    make_webhook(receiver.url)
    notify(EventKind.JOB_FAILED, {"job": 1})
    deliver_due()
    request = receiver.requests[0]
    request["raw"] = request["raw"].replace(b'"job":1', b'"job":2')
    assert not verify(request)


def test_it_gives_up_after_the_most_attempts(receiver, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 2
    receiver.answers = [503, 503, 503]
    make_webhook(receiver.url)
    notify(EventKind.JOB_FAILED, {"job": 1})
    now = timezone.now()
    deliver_due(now)
    deliver_due(now + timedelta(hours=1))
    assert deliver_due(now + timedelta(days=1)) == 0
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DeliveryState.FAILED, 2, 503)


def test_a_connection_refused_is_retried():
    make_webhook("http://127.0.0.1:9/nothing-listens")
    notify(EventKind.JOB_FAILED, {"job": 1})
    deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1 and delivery.last_status is None
    assert delivery.last_answer


def test_two_workers_never_send_one_delivery_twice(receiver):
    make_webhook(receiver.url)
    notify(EventKind.JOB_FAILED, {"job": 1})
    pk = Delivery.objects.get().pk
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() + timedelta(minutes=1))  # another worker has it
    assert deliver(pk) is False and receiver.requests == []


def test_only_subscribed_enabled_webhooks_get_an_event(receiver):
    make_webhook(receiver.url, name="failures")
    make_webhook(receiver.url, kinds=[EventKind.JOB_SUCCEEDED], name="successes")
    make_webhook(receiver.url, name="off", enabled=False)
    notify(EventKind.JOB_FAILED, {"job": 1})
    assert list(Delivery.objects.values_list("webhook__name", flat=True)) == ["failures"]


def test_a_keyed_event_is_told_once(receiver):
    make_webhook(receiver.url, kinds=[EventKind.BATCH_FINISHED])
    assert notify(EventKind.BATCH_FINISHED, {"batch": 1}, key="batch-1") is not None
    assert notify(EventKind.BATCH_FINISHED, {"batch": 1}, key="batch-1") is None
    assert Delivery.objects.count() == 1


def test_drift_is_told_when_it_changes(receiver):
    make_webhook(receiver.url, kinds=[EventKind.DRIFT_FOUND])
    drift_seen({"hv-a.test": ["authentication"]})
    drift_seen({"hv-a.test": ["authentication"]})  # the same at the next sync: not again
    drift_seen({})  # gone: recorded, not told
    drift_seen({"hv-a.test": ["authentication"]})  # back: told again
    assert Delivery.objects.count() == 2
    assert Notice.objects.filter(kind=EventKind.DRIFT_FOUND).count() == 3


def test_an_email_lands_in_the_outbox_for_a_subscribed_user(viewer_user, operator_user, settings, mailoutbox):
    settings.EMAIL_HOST = "smtp.contoso.test"
    Subscription.objects.create(user=viewer_user, kinds=[EventKind.HOST_UNREACHABLE], email=True)
    Subscription.objects.create(user=operator_user, kinds=[EventKind.JOB_FAILED], email=True)
    notify(EventKind.HOST_UNREACHABLE, {"host": "hv-a.contoso.test", "error": "no answer"})
    assert deliver_due() == 1
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["viewer@contoso.test"]
    assert "A host stopped answering" in message.subject
    assert "hv-a.contoso.test" in message.body
    assert Delivery.objects.get().state == DeliveryState.SUCCEEDED


def test_the_email_speaks_the_users_language(viewer_user, settings, mailoutbox):
    from console.models import Preference

    settings.EMAIL_HOST = "smtp.contoso.test"
    Preference.objects.create(user=viewer_user, language="de")
    Subscription.objects.create(user=viewer_user, kinds=[EventKind.JOB_FAILED], email=True)
    notify(EventKind.JOB_FAILED, {"job": 1})
    deliver_due()
    assert "Eine Migration ist fehlgeschlagen" in mail.outbox[0].subject


def test_no_email_without_an_smtp_server(viewer_user, settings, mailoutbox):
    settings.EMAIL_HOST = ""
    Subscription.objects.create(user=viewer_user, kinds=[EventKind.JOB_FAILED], email=True)
    notify(EventKind.JOB_FAILED, {"job": 1})
    assert Delivery.objects.count() == 0 and deliver_due() == 0 and mailoutbox == []


def test_old_events_and_their_log_are_forgotten_but_not_while_retried(receiver, settings):
    from notifications.send import prune

    settings.NOTIFY_KEEP_DAYS = 30
    make_webhook(receiver.url)
    done, retried = notify(EventKind.JOB_FAILED, {"job": 1}), notify(EventKind.JOB_FAILED, {"job": 2})
    Delivery.objects.filter(notice=done).update(state=DeliveryState.SUCCEEDED)
    later = timezone.now() + timedelta(days=31)
    assert prune(later) == 2  # the event and its delivery
    assert list(Notice.objects.values_list("pk", flat=True)) == [retried.pk]
    settings.NOTIFY_KEEP_DAYS = 0
    Delivery.objects.update(state=DeliveryState.FAILED)
    assert prune(later) == 0
