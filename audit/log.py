"""Writing audit events. Call record() inside the transaction of the change it describes, so the
change and its audit row commit or roll back together."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit import checkpoint
from audit.models import GENESIS, AuditEvent, Outcome
from utilities.db import serialize_writers
from utilities.request_context import current_request
from utilities.roles import role_of

logger = logging.getLogger(__name__)

SECRET_KEYS = ("password", "secret", "token", "credential", "key")


def scrub(details: dict) -> dict:
    """Details as they are stored: JSON-normal, and never a secret (by key name, at any depth)."""

    def clean(value):
        if isinstance(value, dict):
            return {k: ("[hidden]" if any(s in k.lower() for s in SECRET_KEYS) else clean(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.loads(json.dumps(clean(details or {}), cls=DjangoJSONEncoder))


def record(
    action: str,
    *,
    request=None,
    actor=None,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_name: str = "",
    details: dict | None = None,
    outcome: str = Outcome.SUCCESS,
    username: str = "",
) -> AuditEvent:
    """Append one event to the chain. actor defaults to the request's user; target may be a model
    object; username names who acted when there is no user (a failed sign-in's attempted name)."""
    request = request if request is not None else current_request.get()
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target_id or str(getattr(target, "guid", None) or target.pk)
        target_name = target_name or str(target)
    with transaction.atomic():
        serialize_writers("audit")
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        event = AuditEvent(
            actor=actor,
            actor_pk=actor.pk if actor else None,
            username=actor.get_username() if actor else (username or _shell_identity(request)),
            role=role_of(actor) or "",
            action=action,
            target_type=target_type,
            target_id=target_id[:64],
            target_name=target_name[:255],
            details=scrub(details or {}),
            outcome=outcome,
            source_ip=_client_ip(request),
            request_id=getattr(request, "request_id", "") if request is not None else "",
            prev_hash=previous,
        )
        event.hash = event.compute_hash()
        event.save()
        transaction.on_commit(lambda: _advance_checkpoint(event))
    return event


def _advance_checkpoint(event: AuditEvent) -> None:
    # After the commit: a rolled-back event must not be checkpointed (verify_audit would call the
    # trail truncated). A failed write must not turn a committed change into an error page.
    try:
        checkpoint.write(event.pk, event.hash)
    except OSError as exc:
        logger.error("The audit checkpoint %s could not be written: %s", checkpoint.path(), exc)


# Refusals anybody can cause (no sign-in needed) are rate-limited per source address and action,
# so a flood cannot drown the trail: the ones over the limit are counted, and the count goes into
# the next row written for that source and action (details "suppressed"). Counted per process.
_suppressed: dict[tuple[str, str], int] = {}
_suppressed_lock = threading.Lock()


def record_refusal(
    action: str, request, *, details: dict | None = None, username: str = "", outcome: str = Outcome.DENIED
) -> AuditEvent | None:
    """A refused request, unless its source wrote this action too often this minute."""
    ip = _client_ip(request)
    key = (action, ip or "")
    since = timezone.now() - timedelta(minutes=1)
    recent = AuditEvent.objects.filter(action=action, source_ip=ip, time__gte=since)
    if recent.count() >= settings.AUDIT_REFUSALS_PER_MINUTE:
        with _suppressed_lock:
            _suppressed[key] = _suppressed.get(key, 0) + 1
        return None
    with _suppressed_lock:
        suppressed = _suppressed.pop(key, 0)
    details = {"method": getattr(request, "method", ""), **(details or {})}
    if suppressed:
        details["suppressed"] = suppressed
    return record(
        action,
        request=request,
        target_type="url",
        target_name=getattr(request, "path", ""),
        details=details,
        outcome=outcome,
        username=username,
    )


def _shell_identity(request) -> str:
    """No user and no request: a management command run from a shell."""
    if request is not None:
        return ""
    import getpass

    return f"cli:{getpass.getuser()}"


def _client_ip(request) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client says unless a trusted proxy set it.
    return request.META.get("REMOTE_ADDR") or None if request is not None else None
