"""Webhooks (administrators, as /manage/webhooks/) and the caller's own notification choices (as
/account/notifications/). Input goes through the pages' forms and the changes through
notifications.changes, so rules, messages and audit rows are the pages' own. A webhook's secret is
accepted, never returned: answers say only whether one is stored."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from ninja import Query, Router, Schema, Status

from access import check
from api.errors import ERRORS, invalid_form
from api.pagination import keyset
from api.schemas import (
    DeliveryOut,
    Id,
    Limit,
    SubscriptionIn,
    SubscriptionOut,
    Text,
    WebhookChangeIn,
    WebhookIn,
    WebhookOut,
    WebhookPage,
)
from notifications.changes import (
    MANAGE,
    delete_webhook,
    delivery_log,
    save_subscription,
    save_webhook,
    send_test,
    subscription_values,
    webhook_values,
)
from notifications.emit import email_enabled
from notifications.forms import SubscriptionForm, WebhookForm
from notifications.models import Delivery, Webhook

router = Router(tags=["notifications"])


def webhook_json(hook: Webhook) -> dict:
    return webhook_values(hook) | {
        "id": hook.pk,
        "secret_set": bool(hook.secret),
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }


def delivery_json(delivery: Delivery) -> dict:
    return {
        "id": delivery.pk,
        "kind": delivery.notice.kind,
        "event": delivery.notice_id,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_answer": delivery.last_answer,
        "next_attempt_at": delivery.next_attempt_at if delivery.state == "pending" else None,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
    }


def _webhook(request, webhook_id: int) -> Webhook:
    check(request, MANAGE)  # 403 before 404: others learn nothing of which webhooks exist
    hook = Webhook.objects.filter(pk=webhook_id).first()
    if hook is None:
        raise Http404(f"There is no webhook {webhook_id}.")
    return hook


def _saved(request, data: dict, hook: Webhook | None = None) -> Webhook:
    form = WebhookForm(data, editing=hook)
    if not form.is_valid():
        raise invalid_form(form)  # nothing saved, nothing audited
    return save_webhook(request, form.cleaned_data, hook)


class WebhookFilter(Schema):
    cursor: Text | None = None
    limit: Limit = 50


@router.get("/webhooks", response={200: WebhookPage, **ERRORS}, summary="Webhooks, by name (administrators)")
def webhooks(request, query: Query[WebhookFilter]):
    check(request, MANAGE)
    items, cursor = keyset(Webhook.objects.all(), query.cursor, query.limit, key=(("name", str),))
    return {"items": [webhook_json(h) for h in items], "next_cursor": cursor}


@router.post("/webhooks", response={201: WebhookOut, **ERRORS}, summary="Add a webhook (administrators)")
def create_webhook(request, payload: WebhookIn):
    """As the Add a webhook page: an http(s) URL, a unique name, a secret of at least 16 characters
    (stored encrypted, never returned). Audited as `webhook.created`."""
    check(request, MANAGE)
    data = payload.model_dump() | {"kinds": [kind.value for kind in payload.kinds]}
    return Status(201, webhook_json(_saved(request, data)))


@router.get("/webhooks/{webhook_id}", response={200: WebhookOut, **ERRORS}, summary="One webhook (administrators)")
def webhook(request, webhook_id: Id):
    return webhook_json(_webhook(request, webhook_id))


@router.patch(
    "/webhooks/{webhook_id}", response={200: WebhookOut, **ERRORS}, summary="Change a webhook (administrators)"
)
def change_webhook(request, webhook_id: Id, payload: WebhookChangeIn):
    """Only the fields given change (e.g. `{"enabled": false}`); a `secret` replaces the stored one.
    Refused input changes nothing. Audited as `webhook.changed`."""
    hook = _webhook(request, webhook_id)
    data = webhook_values(hook)
    for name in ("name", "url", "enabled"):
        if getattr(payload, name) is not None:
            data[name] = getattr(payload, name)
    if payload.kinds is not None:
        data["kinds"] = [kind.value for kind in payload.kinds]
    data["secret"] = payload.secret or ""
    return webhook_json(_saved(request, data, hook))


@router.delete("/webhooks/{webhook_id}", response={204: None, **ERRORS}, summary="Delete a webhook (administrators)")
def remove_webhook(request, webhook_id: Id):
    """The webhook and its delivery log; nothing more is sent to it. Audited as `webhook.deleted`."""
    delete_webhook(request, _webhook(request, webhook_id))
    done = HttpResponse(status=204)
    del done["Content-Type"]  # no body, so no type (ninja's own 204 would say application/json)
    return done


class LogQuery(Schema):
    limit: Limit = 50


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response={200: list[DeliveryOut], **ERRORS},
    summary="A webhook's delivery log, the last answer first (administrators)",
)
def deliveries(request, webhook_id: Id, query: Query[LogQuery]):
    """Each event sent to it (kept NOTIFY_KEEP_DAYS): state, attempts, the last answer's status and text."""
    hook = _webhook(request, webhook_id)
    return [delivery_json(d) for d in delivery_log().filter(webhook=hook)[: query.limit]]


@router.post(
    "/webhooks/{webhook_id}/test", response={200: DeliveryOut, **ERRORS}, summary="Send a test (administrators)"
)
def test_webhook(request, webhook_id: Id):
    """A signed `ping` sent now, as the page's Send a test button (retried like any delivery when it
    fails; a disabled webhook is tested too). Audited as `webhook.tested` with the answer."""
    delivery = send_test(request, _webhook(request, webhook_id))
    return delivery_json(Delivery.objects.select_related("notice").get(pk=delivery.pk))


def _subscription(request) -> dict:
    return subscription_values(request.user) | {"email_enabled": email_enabled(), "address": request.user.email}


@router.get("/account/notifications", response={200: SubscriptionOut, **ERRORS}, summary="Your notification choices")
def subscription(request):
    """The caller's own choices, as /account/notifications/ shows them."""
    return _subscription(request)


@router.put(
    "/account/notifications", response={200: SubscriptionOut, **ERRORS}, summary="Set your notification choices"
)
def set_subscription(request, payload: SubscriptionIn):
    """Which events reach you, and whether by e-mail (`{"kinds": [], "email": false}`: none). Only
    your own; audited as `notifications.subscribed`."""
    form = SubscriptionForm({"kinds": [kind.value for kind in payload.kinds], "email": payload.email})
    if not form.is_valid():
        raise invalid_form(form)
    save_subscription(request, form.cleaned_data)
    return _subscription(request)
