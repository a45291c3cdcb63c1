"""Administrators' webhook pages (list with the delivery log, add, edit, delete, test) and each user's
own notification choices. A webhook's secret is write-only: encrypted when saved, never put back into
a form, a page, a log or the audit trail."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from access import Perm, requires_always
from audit.log import record
from notifications.emit import email_enabled
from notifications.forms import SubscriptionForm, WebhookForm
from notifications.models import Delivery, Subscription, Webhook
from notifications.send import ping

# Administrators: the console's own settings go with managing its users and roles.
MANAGE = Perm.MANAGE_USERS
LOG_ROWS = 10


@requires_always(MANAGE)
def webhooks(request):
    # A sliced prefetch (a window function): the last rows of each webhook, not its whole log.
    recent = Delivery.objects.select_related("notice").order_by("-updated_at", "-pk")[:LOG_ROWS]
    hooks = Webhook.objects.prefetch_related(Prefetch("deliveries", queryset=recent, to_attr="recent"))
    return render(request, "notifications/webhooks.html", {"webhooks": hooks})


@sensitive_post_parameters("secret")
@requires_always(MANAGE)
def webhook_form(request, pk: int | None = None):
    hook = get_object_or_404(Webhook, pk=pk) if pk else None
    initial = {"name": hook.name, "url": hook.url, "kinds": hook.kinds, "enabled": hook.enabled} if hook else {}
    form = WebhookForm(request.POST if request.method == "POST" else None, editing=hook, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = _save(request, form, hook)
        messages.success(request, _("Webhook %(name)s saved.") % {"name": saved.name})
        return redirect("notifications:webhooks")
    return render(request, "notifications/webhook_form.html", {"form": form, "webhook": hook})


def _save(request, form: WebhookForm, hook: Webhook | None) -> Webhook:
    data = form.cleaned_data
    created = hook is None
    hook = hook or Webhook()
    hook.name, hook.url, hook.kinds, hook.enabled = data["name"], data["url"], data["kinds"], data["enabled"]
    if data.get("secret"):
        hook.set_secret(data["secret"])
    with transaction.atomic():
        hook.save()
        details = {"name": hook.name, "url": hook.url, "kinds": hook.kinds, "enabled": hook.enabled}
        details["signing_changed"] = bool(data.get("secret"))
        record("webhook.created" if created else "webhook.changed", request=request, target=hook, details=details)
    return hook


@require_POST
@requires_always(MANAGE)
def webhook_delete(request, pk: int):
    hook = get_object_or_404(Webhook, pk=pk)
    if request.POST.get("confirm") != "yes":
        messages.error(
            request, _("Tick the box to confirm that webhook %(name)s is to be deleted.") % {"name": hook.name}
        )
        return redirect("notifications:webhook_edit", pk)
    with transaction.atomic():
        record("webhook.deleted", request=request, target=hook, details={"name": hook.name, "url": hook.url})
        hook.delete()
    messages.success(request, _("Webhook %(name)s deleted.") % {"name": hook.name})
    return redirect("notifications:webhooks")


@require_POST
@requires_always(MANAGE)
def webhook_test(request, pk: int):
    hook = get_object_or_404(Webhook, pk=pk)
    delivery = ping(hook, request.user)
    ok = delivery.state == "succeeded"
    details = {"name": hook.name, "url": hook.url, "status": delivery.last_status, "delivered": ok}
    record("webhook.tested", request=request, target=hook, details=details, outcome="success" if ok else "failure")
    answer = {"name": hook.name, "status": delivery.last_status or "—", "answer": delivery.last_answer[:200]}
    if ok:
        messages.success(request, _("Test sent to %(name)s: it answered %(status)s.") % answer)
    else:
        messages.error(request, _("Test to %(name)s failed (%(status)s): %(answer)s. It will be retried.") % answer)
    return redirect("notifications:webhooks")


def account(request):
    """A user's own choices: which events, and whether by e-mail."""
    mine = Subscription.objects.filter(user=request.user).first()
    initial = {"kinds": mine.kinds, "email": mine.email} if mine else {}
    form = SubscriptionForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            Subscription.objects.update_or_create(user=request.user, defaults=form.cleaned_data)
            record(
                "notifications.subscribed",
                request=request,
                target_type="user",
                target_id=str(request.user.pk),
                target_name=request.user.get_username(),
                details=form.cleaned_data,
            )
        messages.success(request, _("Your notification choices are saved."))
        return redirect("account_notifications")
    context = {"form": form, "email_enabled": email_enabled(), "address": request.user.email}
    return render(request, "notifications/account.html", context)
