"""The audit trail, read-only: the audit page's filters (audit.filters), strict here."""

from __future__ import annotations

from django.http import Http404
from ninja import Query, Router, Schema

from api.errors import ERRORS, ApiError
from api.pagination import keyset
from api.schemas import AuditOut, AuditPage, Id, Limit, Text
from audit import filters as audit_filters
from audit.models import AuditEvent

router = Router(tags=["audit"])

FIELDS = ("id", "time", "username", "role", "action", "target_type", "target_id", "target_name", "outcome",
          "source_ip", "request_id", "details", "prev_hash", "hash")  # fmt: skip


def audit_json(event: AuditEvent) -> dict:
    return {name: getattr(event, name) for name in FIELDS}


class AuditFilter(Schema):
    since: Text = ""
    until: Text = ""
    actor: Text = ""
    action: Text = ""
    target: Text = ""
    outcome: Text = ""
    cursor: Text | None = None
    limit: Limit = 100


@router.get("/audit-events", response={200: AuditPage, **ERRORS}, summary="Audit events, newest first")
def audit_events(request, query: Query[AuditFilter]):
    """Filters as on the audit page: since/until (a date or date and time), actor (user name),
    action (prefix, e.g. `migration.`), target (part of its name, or its id), outcome."""
    parsed, condition = audit_filters.parse({name: getattr(query, name) for name in audit_filters.FIELDS})
    if parsed.notices:
        raise ApiError(400, " ".join(parsed.notices), {"filters": parsed.notices})
    items, cursor = keyset(AuditEvent.objects.filter(condition), query.cursor, query.limit, desc=True)
    return {"items": [audit_json(e) for e in items], "next_cursor": cursor}


@router.get("/audit-events/{event_id}", response={200: AuditOut, **ERRORS}, summary="One audit event")
def audit_event(request, event_id: Id):
    event = AuditEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise Http404(f"There is no audit event {event_id}.")
    return audit_json(event)
