"""Webhooks (administrators) and each caller's own notification choices through the API: the pages'
forms decide what is valid, refused input changes nothing, every change is audited as on the pages,
and a webhook's secret is never in any answer."""

import json

import pytest

from audit.models import AuditEvent
from notifications.changes import MANAGE
from notifications.emit import notify
from notifications.models import Delivery, EventKind, Subscription, Webhook
from tests.api.conftest import Api
from tests.notifications.conftest import receiver  # noqa: F401 (a fixture: a webhook receiver on 127.0.0.1)
from tests.notifications.test_delivery import SECRET, make_webhook, verify

pytestmark = pytest.mark.django_db

NEW_SECRET = "another-secret-of-enough-length"


class Recorder(Api):
    """An Api that keeps every answer's raw text, to look for the secret in all of them."""

    def __init__(self, api: Api):
        self.client, self.headers, self.bodies = api.client, api.headers, []

    def call(self, method, path, data=None, **params):
        status, payload = super().call(method, path, data, **params)
        self.bodies.append(json.dumps(payload))
        return status, payload


@pytest.fixture
def admin(apis):
    return Recorder(apis["admin"])


def valid(**changes):
    return {"name": "pager", "url": "https://hooks.contoso.test/console", "kinds": ["job.failed"], "secret": SECRET} | (
        changes
    )


def audited(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_an_administrator_adds_shows_changes_and_deletes_a_webhook_and_never_sees_the_secret(admin, caplog):
    status, created = admin.call("post", "/webhooks", valid(kinds=["job.failed", "host.unreachable"]))
    assert status == 201, created
    assert created["secret_set"] is True and "secret" not in created
    assert created["kinds"] == ["job.failed", "host.unreachable"] and created["enabled"] is True
    hook = Webhook.objects.get()
    assert hook.signing_key() == SECRET.encode() and SECRET.encode() not in bytes(hook.secret)
    event = audited("webhook.created")[0]
    assert event.username == "admin" and event.target_id == str(hook.pk)
    assert event.details["signing_changed"] is True

    assert admin.get("/webhooks")[1]["items"] == [created]
    assert admin.get(f"/webhooks/{hook.pk}") == (200, created)

    # Disable it and choose other events: the secret stays; then replace the secret.
    status, changed = admin.call("patch", f"/webhooks/{hook.pk}", {"enabled": False, "kinds": ["batch.finished"]})
    assert status == 200, changed
    assert changed["enabled"] is False and changed["kinds"] == ["batch.finished"] and changed["name"] == "pager"
    hook.refresh_from_db()
    assert hook.signing_key() == SECRET.encode() and not hook.enabled
    status, changed = admin.call("patch", f"/webhooks/{hook.pk}", {"secret": NEW_SECRET})
    assert status == 200 and changed["secret_set"] is True
    hook.refresh_from_db()
    assert hook.signing_key() == NEW_SECRET.encode() and hook.kinds == ["batch.finished"]
    assert [e.details["signing_changed"] for e in audited("webhook.changed")] == [False, True]
    assert audited("webhook.changed")[0].details["enabled"] is False

    status, _ = admin.call("delete", f"/webhooks/{hook.pk}")
    assert status == 204
    assert not Webhook.objects.exists() and audited("webhook.deleted")[0].details["name"] == "pager"
    assert admin.get(f"/webhooks/{hook.pk}")[0] == 404

    for secret in (SECRET, NEW_SECRET):
        assert not any(secret in body for body in admin.bodies)
        assert secret not in str(list(AuditEvent.objects.values_list("details", flat=True)))
        assert secret not in caplog.text


@pytest.mark.parametrize(
    "payload, field",
    [
        (valid(url="ftp://hooks.contoso.test/x"), "url"),
        (valid(url="file:///etc/passwd"), "url"),
        (valid(url="not a url"), "url"),
        ({k: v for k, v in valid().items() if k != "secret"}, "secret"),
        (valid(secret=""), "secret"),
        (valid(secret="short"), "secret"),
        (valid(name=""), "name"),
        (valid(name="x" * 101), "name"),
        (valid(name="ops"), "name"),  # taken
        (valid(kinds=["job.exploded"]), "kinds.0"),
        (valid(enabled="yes"), "enabled"),
        (valid(name="a\x00b"), "name"),
        (valid(name="a\ud800b"), "name"),  # a lone surrogate: JSON can carry it, no database stores it
    ],
)
def test_refused_input_adds_nothing_and_says_why(admin, payload, field):
    make_webhook("http://127.0.0.1:9/")  # "ops"
    before = AuditEvent.objects.count()
    status, body = admin.post("/webhooks", payload)
    assert status == 400, body
    assert body["code"] == "invalid" and field in body["errors"] and body["message"], body
    assert list(Webhook.objects.values_list("name", flat=True)) == ["ops"]
    assert AuditEvent.objects.count() == before
    assert SECRET not in json.dumps(body)


def test_the_form_s_messages_come_back(admin):
    status, body = admin.post("/webhooks", valid(url="ftp://hooks.contoso.test/x", secret="short"))
    assert status == 400
    assert body["errors"]["url"] == ["Enter a valid URL."]
    assert "at least 16 characters" in body["errors"]["secret"][0]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"url": "gopher://x.test/"}, "url"),
        ({"name": "other"}, "name"),  # taken
        ({"secret": "too-short"}, "secret"),
        ({"kinds": ["nope"]}, "kinds.0"),
        ({"enabled": 1}, "enabled"),
    ],
)
def test_a_refused_change_changes_nothing(admin, change, field):
    hook = make_webhook("http://127.0.0.1:9/", enabled=True)
    make_webhook("http://127.0.0.1:9/", name="other")
    before = (AuditEvent.objects.count(), hook.updated_at)
    status, body = admin.call("patch", f"/webhooks/{hook.pk}", change)
    assert status == 400 and field in body["errors"], body
    hook.refresh_from_db()
    assert (hook.name, hook.url, hook.kinds, hook.enabled) == ("ops", "http://127.0.0.1:9/", ["job.failed"], True)
    assert hook.signing_key() == SECRET.encode()
    assert (AuditEvent.objects.count(), hook.updated_at) == before


def test_the_delivery_log_and_a_test_show_the_answers(admin, receiver):  # noqa: F811
    hook = make_webhook(receiver.url)
    receiver.answers = [500]
    status, tested = admin.post(f"/webhooks/{hook.pk}/test")
    assert status == 200, tested
    assert tested["kind"] == "ping" and tested["state"] == "pending" and tested["last_status"] == 500
    assert tested["next_attempt_at"] is not None and tested["last_answer"] == "answered 500"
    status, tested = admin.post(f"/webhooks/{hook.pk}/test")
    assert tested["state"] == "succeeded" and tested["last_status"] == 200 and tested["next_attempt_at"] is None
    assert all(verify(r) for r in receiver.requests)
    assert [e.outcome for e in audited("webhook.tested")] == ["failure", "success"]

    notify(EventKind.JOB_FAILED, {"job": 7})
    status, log = admin.get(f"/webhooks/{hook.pk}/deliveries")
    assert status == 200
    assert [d["kind"] for d in log] == ["job.failed", "ping", "ping"]  # the last change first
    assert admin.get(f"/webhooks/{hook.pk}/deliveries", limit=1)[1] == log[:1]
    other = make_webhook(receiver.url, name="other")
    assert admin.get(f"/webhooks/{other.pk}/deliveries") == (200, [])
    assert not any(SECRET in body for body in admin.bodies)


def test_the_list_pages_by_name(admin):
    for name in ("c", "a", "b"):
        make_webhook("http://127.0.0.1:9/", name=name)
    status, first = admin.get("/webhooks", limit=2)
    assert status == 200
    assert [h["name"] for h in first["items"]] == ["a", "b"] and first["next_cursor"]
    _, rest = admin.get("/webhooks", limit=2, cursor=first["next_cursor"])
    assert [h["name"] for h in rest["items"]] == ["c"] and rest["next_cursor"] is None


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider", "anonymous"])
def test_only_administrators_reach_webhooks(apis, persona):
    hook = make_webhook("http://127.0.0.1:9/")
    api, expected = apis[persona], 401 if persona == "anonymous" else 403
    calls = [
        ("get", "/webhooks", None),
        ("post", "/webhooks", valid()),
        ("get", f"/webhooks/{hook.pk}", None),
        ("patch", f"/webhooks/{hook.pk}", {"enabled": False, "secret": NEW_SECRET}),
        ("delete", f"/webhooks/{hook.pk}", None),
        ("get", f"/webhooks/{hook.pk}/deliveries", None),
        ("post", f"/webhooks/{hook.pk}/test", None),
        ("get", "/webhooks/999999", None),  # 403, not 404: nothing learnt of which exist
    ]
    for method, path, data in calls:
        status, body = api.call(method, path, data)
        assert status == expected, (method, path, body)
        assert set(body) == {"code", "message", "errors"}
    hook.refresh_from_db()
    assert list(Webhook.objects.values_list("name", flat=True)) == ["ops"]
    assert hook.enabled is True and hook.signing_key() == SECRET.encode()
    assert not Delivery.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()
    if persona in ("viewer", "operator"):
        denied = AuditEvent.objects.filter(action="permission_denied", username=persona)
        assert denied.count() == len(calls)
        assert {e.details["permission"] for e in denied} == {MANAGE}


# --- the caller's own choices --------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["viewer", "operator", "admin"])
def test_each_role_reads_and_sets_its_own_choices_only(apis, persona_users, persona, settings):
    settings.EMAIL_HOST = "smtp.contoso.test"
    me = persona_users[persona]
    someone_else = persona_users["admin" if persona != "admin" else "viewer"]
    Subscription.objects.create(user=someone_else, kinds=["drift.found"], email=True)
    api = apis[persona]

    assert api.get("/account/notifications") == (
        200,
        {"kinds": [], "email": False, "email_enabled": True, "address": me.email},
    )
    status, body = api.call("put", "/account/notifications", {"kinds": ["job.failed", "batch.finished"], "email": True})
    assert status == 200, body
    assert body["kinds"] == ["job.failed", "batch.finished"] and body["email"] is True
    mine = Subscription.objects.get(user=me)
    assert (mine.kinds, mine.email) == (["job.failed", "batch.finished"], True)
    other = Subscription.objects.get(user=someone_else)
    assert (other.kinds, other.email) == (["drift.found"], True)
    event = AuditEvent.objects.get(action="notifications.subscribed")
    assert (event.username, event.target_id) == (me.get_username(), str(me.pk))
    assert event.details == {"kinds": ["job.failed", "batch.finished"], "email": True}

    # Nothing chosen: unsubscribed, as unticking everything on the page.
    status, body = api.call("put", "/account/notifications", {"kinds": [], "email": False})
    assert status == 200 and body["kinds"] == [] and body["email"] is False
    assert Subscription.objects.get(user=me).kinds == []


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"kinds": ["nope"], "email": True}, "kinds.0"),
        ({"kinds": []}, "email"),
        ({"kinds": [], "email": "on"}, "email"),
    ],
)
def test_refused_choices_change_nothing(apis, viewer_user, payload, field):
    Subscription.objects.create(user=viewer_user, kinds=["job.failed"], email=True)
    status, body = apis["viewer"].call("put", "/account/notifications", payload)
    assert status == 400 and field in body["errors"], body
    mine = Subscription.objects.get(user=viewer_user)
    assert (mine.kinds, mine.email) == (["job.failed"], True)
    assert not AuditEvent.objects.filter(action="notifications.subscribed").exists()


@pytest.mark.parametrize("persona, expected", [("outsider", 403), ("anonymous", 401)])
def test_choices_need_a_role(apis, persona, expected):
    assert apis[persona].get("/account/notifications")[0] == expected
    status, _ = apis[persona].call("put", "/account/notifications", {"kinds": ["job.failed"], "email": True})
    assert status == expected
    assert not Subscription.objects.exists()


def test_the_page_shows_what_the_api_set(apis, client, viewer_user):
    apis["viewer"].call("put", "/account/notifications", {"kinds": ["host.unreachable"], "email": True})
    client.force_login(viewer_user)
    form = client.get("/account/notifications/").context["form"]
    assert form.initial == {"kinds": ["host.unreachable"], "email": True}
