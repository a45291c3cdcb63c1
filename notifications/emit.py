"""notify(): record an event and one delivery per webhook and per e-mail subscriber that wants it.

Called by the job workers and the inventory sync where the event happens, in their transaction: the
event is told only if the change it tells of is committed, and it is not lost when the process dies
right after the commit. The job workers' sender thread (notifications.send) delivers. Never raises:
a notification must not undo the change it tells of.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import Delivery, EventKind, Notice, Subscription, Webhook

log = logging.getLogger(__name__)


def email_enabled() -> bool:
    """E-mail needs an SMTP server: off until EMAIL_HOST is set."""
    return bool(settings.EMAIL_HOST)


def notify(kind: str, data: dict, key: str = "", *, tell: bool = True) -> Notice | None:
    """Record the event `kind` (an EventKind) with JSON-ready `data`; `key` tells it once only (a
    second notify with the same kind and key records nothing). tell=False records without delivering."""
    data = json.loads(json.dumps(data, cls=DjangoJSONEncoder))  # Msg texts as English, times as ISO
    try:
        with transaction.atomic():
            notice = Notice.objects.create(kind=kind, data=data, key=key)
            if tell:
                _deliveries(notice)
    except IntegrityError:
        return None  # told already
    except Exception:
        log.exception("notification %s not recorded", kind)
        return None
    return notice


def notify_if_changed(kind: str, data: dict, *, tell: bool = True) -> Notice | None:
    """notify() unless the last event of this kind said the same (drift seen again at every sync)."""
    data = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    last = Notice.objects.filter(kind=kind).order_by("-pk").values_list("data", flat=True).first()
    if last == data:
        return None
    return notify(kind, data, tell=tell)


def drift_seen(flags: dict) -> Notice | None:
    """The inventory sync's drift guard result (host FQDN -> reasons): told when it changes and is not
    empty; an empty result is recorded silently, so the next drift is told again."""
    return notify_if_changed(EventKind.DRIFT_FOUND, {"hosts": flags}, tell=bool(flags))


def _deliveries(notice: Notice) -> None:
    now = timezone.now()
    rows = [
        Delivery(notice=notice, webhook=hook, next_attempt_at=now)
        for hook in Webhook.objects.filter(enabled=True)
        if notice.kind in hook.kinds
    ]
    if email_enabled():
        subscribers = Subscription.objects.filter(email=True, user__is_active=True).exclude(user__email="")
        rows += [
            Delivery(notice=notice, user_id=s.user_id, next_attempt_at=now)
            for s in subscribers
            if notice.kind in s.kinds
        ]
    Delivery.objects.bulk_create(rows)
