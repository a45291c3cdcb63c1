"""Administrators' webhook pages (list with the delivery log, add, edit, delete, test) and each user's
own notification choices. A webhook's secret is write-only: encrypted when saved, never put back into
a form, a page, a log or the audit trail."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from access import requires_always
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
from notifications.models import Webhook

LOG_ROWS = 10


@requires_always(MANAGE)
def webhooks(request):
    # A sliced prefetch (a window function): the last rows of each webhook, not its whole log.
    recent = delivery_log()[:LOG_ROWS]
    hooks = Webhook.objects.prefetch_related(Prefetch("deliveries", queryset=recent, to_attr="recent"))
    return render(request, "notifications/webhooks.html", {"webhooks": hooks})


@sensitive_post_parameters("secret")
@requires_always(MANAGE)
def webhook_form(request, pk: int | None = None):
    hook = get_object_or_404(Webhook, pk=pk) if pk else None
    initial = webhook_values(hook) if hook else {}
    form = WebhookForm(request.POST if request.method == "POST" else None, editing=hook, initial=initial)
    if request.method == "POST" and form.is_valid():
        saved = save_webhook(request, form.cleaned_data, hook)
        messages.success(request, _("Webhook %(name)s saved.") % {"name": saved.name})
        return redirect("notifications:webhooks")
    return render(request, "notifications/webhook_form.html", {"form": form, "webhook": hook})


@require_POST
@requires_always(MANAGE)
def webhook_delete(request, pk: int):
    hook = get_object_or_404(Webhook, pk=pk)
    if request.POST.get("confirm") != "yes":
        messages.error(
            request, _("Tick the box to confirm that webhook %(name)s is to be deleted.") % {"name": hook.name}
        )
        return redirect("notifications:webhook_edit", pk)
    delete_webhook(request, hook)
    messages.success(request, _("Webhook %(name)s deleted.") % {"name": hook.name})
    return redirect("notifications:webhooks")


@require_POST
@requires_always(MANAGE)
def webhook_test(request, pk: int):
    hook = get_object_or_404(Webhook, pk=pk)
    delivery = send_test(request, hook)
    answer = {"name": hook.name, "status": delivery.last_status or "—", "answer": delivery.last_answer[:200]}
    if delivery.state == "succeeded":
        messages.success(request, _("Test sent to %(name)s: it answered %(status)s.") % answer)
    else:
        messages.error(request, _("Test to %(name)s failed (%(status)s): %(answer)s. It will be retried.") % answer)
    return redirect("notifications:webhooks")


def account(request):
    """A user's own choices: which events, and whether by e-mail."""
    data = request.POST if request.method == "POST" else None
    form = SubscriptionForm(data, initial=subscription_values(request.user))
    if request.method == "POST" and form.is_valid():
        save_subscription(request, form.cleaned_data)
        messages.success(request, _("Your notification choices are saved."))
        return redirect("account_notifications")
    context = {"form": form, "email_enabled": email_enabled(), "address": request.user.email}
    return render(request, "notifications/account.html", context)
