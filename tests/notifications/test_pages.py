"""Administrators manage webhooks (the secret never shown again); every user picks their own events."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from notifications.models import Delivery, EventKind, Subscription, Webhook
from tests.notifications.test_delivery import SECRET, make_webhook, verify

pytestmark = pytest.mark.django_db


def test_it_adds_a_webhook_with_an_encrypted_secret_never_shown_again(admin_client, receiver, caplog):
    data = {
        "name": "pager",
        "url": receiver.url,
        "kinds": ["job.failed", "host.unreachable"],
        "secret": SECRET,
        "enabled": "on",
    }
    response = admin_client.post(reverse("notifications:webhook_add"), data)
    assert response.status_code == 302
    hook = Webhook.objects.get()
    assert hook.kinds == ["job.failed", "host.unreachable"] and hook.enabled
    assert SECRET.encode() not in bytes(hook.secret) and hook.signing_key() == SECRET.encode()

    pages = [reverse("notifications:webhooks"), reverse("notifications:webhook_edit", args=[hook.pk])]
    for url in pages:
        body = admin_client.get(url).content.decode()
        assert SECRET not in body and "pager" in body
    event = AuditEvent.objects.get(action="webhook.created")
    assert event.details["signing_changed"] is True and SECRET not in str(event.details)
    assert SECRET not in caplog.text


def test_an_empty_secret_keeps_the_stored_one(admin_client, receiver):
    hook = make_webhook(receiver.url)
    data = {"name": "ops", "url": receiver.url, "kinds": ["job.succeeded"], "secret": ""}
    assert admin_client.post(reverse("notifications:webhook_edit", args=[hook.pk]), data).status_code == 302
    hook.refresh_from_db()
    assert hook.signing_key() == SECRET.encode() and hook.kinds == ["job.succeeded"] and not hook.enabled
    assert AuditEvent.objects.get(action="webhook.changed").details["signing_changed"] is False


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.test/x", "gopher://x.test/"])
def test_only_http_and_https_urls(admin_client, url):
    data = {"name": "bad", "url": url, "kinds": ["job.failed"], "secret": SECRET}
    assert admin_client.post(reverse("notifications:webhook_add"), data).status_code == 200
    assert not Webhook.objects.exists()


def test_a_new_webhook_needs_a_secret(admin_client):
    data = {"name": "x", "url": "https://hooks.contoso.test/x", "kinds": ["job.failed"]}
    assert admin_client.post(reverse("notifications:webhook_add"), data).status_code == 200
    assert not Webhook.objects.exists()


def test_the_test_button_sends_a_signed_ping_and_the_log_shows_the_answer(admin_client, receiver, caplog):
    hook = make_webhook(receiver.url)
    receiver.answers = [500]  # logged as a failed attempt, the secret nowhere in it
    admin_client.post(reverse("notifications:webhook_test", args=[hook.pk]))
    response = admin_client.post(reverse("notifications:webhook_test", args=[hook.pk]), follow=True)
    assert all(verify(r) and r["body"]["kind"] == "ping" for r in receiver.requests)
    body = response.content.decode()
    assert "answered 200" in body and "answered 500" in body
    assert SECRET not in body and SECRET not in caplog.text
    assert SECRET not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    tested = AuditEvent.objects.filter(action="webhook.tested").order_by("pk")
    assert [e.details["delivered"] for e in tested] == [False, True]
    assert [e.outcome for e in tested] == ["failure", "success"]


def test_delete_needs_the_confirmation(admin_client, receiver):
    hook = make_webhook(receiver.url)
    admin_client.post(reverse("notifications:webhook_delete", args=[hook.pk]))
    assert Webhook.objects.exists()
    admin_client.post(reverse("notifications:webhook_delete", args=[hook.pk]), {"confirm": "yes"})
    assert not Webhook.objects.exists() and AuditEvent.objects.filter(action="webhook.deleted").exists()


@pytest.mark.parametrize("persona", ["viewer_user", "operator_user"])
def test_viewers_and_operators_get_403_on_webhook_pages(client, receiver, persona, request):
    client.force_login(request.getfixturevalue(persona))
    hook = make_webhook(receiver.url)
    assert client.get(reverse("notifications:webhooks")).status_code == 403
    assert client.get(reverse("notifications:webhook_edit", args=[hook.pk])).status_code == 403
    assert client.post(reverse("notifications:webhook_test", args=[hook.pk])).status_code == 403
    assert receiver.requests == [] and not Delivery.objects.exists()


def test_a_viewer_subscribes_on_the_account_page(client, viewer_user, settings):
    settings.EMAIL_HOST = "smtp.contoso.test"
    client.force_login(viewer_user)
    url = reverse("account_notifications")
    assert client.get(url).status_code == 200
    response = client.post(url, {"kinds": ["job.failed", "batch.finished"], "email": "on"})
    assert response.status_code == 302
    mine = Subscription.objects.get(user=viewer_user)
    assert mine.kinds == [EventKind.JOB_FAILED, EventKind.BATCH_FINISHED] and mine.email
    assert AuditEvent.objects.get(action="notifications.subscribed").username == "viewer"
    body = client.get(url).content.decode()
    assert "viewer@contoso.test" in body and 'value="job.failed" checked' in body.replace("\n", " ").replace(
        'id="id_kinds_0" ', ""
    )


def test_the_account_page_says_when_email_is_off(client, viewer_user, settings):
    settings.EMAIL_HOST = ""
    client.force_login(viewer_user)
    assert "EMAIL_HOST" in client.get(reverse("account_notifications")).content.decode()


def test_the_webhook_list_counts_its_queries(admin_client, receiver, django_assert_max_num_queries):
    from notifications.emit import notify

    for name in ("a", "b", "c"):
        make_webhook(receiver.url, name=name)
    for n in range(5):
        notify(EventKind.JOB_FAILED, {"job": n})
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("notifications:webhooks")).status_code == 200


def test_unticking_everything_unsubscribes(client, viewer_user):
    Subscription.objects.create(user=viewer_user, kinds=[EventKind.JOB_FAILED], email=True)
    client.force_login(viewer_user)
    assert client.post(reverse("account_notifications"), {}).status_code == 302
    mine = Subscription.objects.get(user=viewer_user)
    assert mine.kinds == [] and not mine.email


def test_the_log_shows_the_last_rows_of_each_webhook(admin_client, receiver):
    from notifications.emit import notify
    from notifications.views import LOG_ROWS

    make_webhook(receiver.url)
    for n in range(LOG_ROWS + 2):
        notify(EventKind.JOB_FAILED, {"job": n})
    hooks = admin_client.get(reverse("notifications:webhooks")).context["webhooks"]
    assert len(hooks[0].recent) == LOG_ROWS
