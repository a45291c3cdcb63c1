"""Each change to webhooks and subscriptions, done one way for the pages and the API: the caller has
checked access and validated a form (WebhookForm, SubscriptionForm); these save and write the audit
row. The secret is never put into the audit trail: only whether the signing key changed."""

from __future__ import annotations

from django.db import transaction

from access import Perm
from audit.log import record
from notifications.models import Delivery, Subscription, Webhook
from notifications.send import ping

# Who manages webhooks (pages and API): administrators, as the console's own settings go with
# managing its users and roles.
MANAGE = Perm.MANAGE_USERS


def webhook_values(hook: Webhook) -> dict:
    """A webhook's fields as WebhookForm takes them (the secret is never among them)."""
    return {"name": hook.name, "url": hook.url, "kinds": list(hook.kinds), "enabled": hook.enabled}


def save_webhook(request, data: dict, hook: Webhook | None = None) -> Webhook:
    """Add (hook None) or change a webhook from a valid WebhookForm's cleaned_data; an empty secret
    keeps the stored one."""
    created = hook is None
    hook = hook or Webhook()
    hook.name, hook.url, hook.kinds, hook.enabled = data["name"], data["url"], data["kinds"], data["enabled"]
    if data.get("secret"):
        hook.set_secret(data["secret"])
    with transaction.atomic():
        hook.save()
        details = webhook_values(hook) | {"signing_changed": bool(data.get("secret"))}
        record("webhook.created" if created else "webhook.changed", request=request, target=hook, details=details)
    return hook


def delete_webhook(request, hook: Webhook) -> None:
    """The webhook and its delivery log."""
    with transaction.atomic():
        record("webhook.deleted", request=request, target=hook, details={"name": hook.name, "url": hook.url})
        hook.delete()


def send_test(request, hook: Webhook) -> Delivery:
    """Send a signed ping now (retried like any delivery when it fails), audited with its answer."""
    delivery = ping(hook, request.user)
    ok = delivery.state == "succeeded"
    details = {"name": hook.name, "url": hook.url, "status": delivery.last_status, "delivered": ok}
    record("webhook.tested", request=request, target=hook, details=details, outcome="success" if ok else "failure")
    return delivery


def delivery_log():
    """Deliveries with their event, the last answer first (the webhook page and the API)."""
    return Delivery.objects.select_related("notice").order_by("-updated_at", "-pk")


def subscription_values(user) -> dict:
    """A user's choices as SubscriptionForm takes them; nothing chosen when they never saved any."""
    mine = Subscription.objects.filter(user=user).first()
    return {"kinds": list(mine.kinds), "email": mine.email} if mine else {"kinds": [], "email": False}


def save_subscription(request, data: dict) -> Subscription:
    """The request's user's own choices, from a valid SubscriptionForm's cleaned_data."""
    user = request.user
    with transaction.atomic():
        mine, _ = Subscription.objects.update_or_create(user=user, defaults=data)
        record(
            "notifications.subscribed",
            request=request,
            target_type="user",
            target_id=str(user.pk),
            target_name=user.get_username(),
            details=data,
        )
    return mine
