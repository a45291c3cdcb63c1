import csv
import json

from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from audit import filters, forward
from audit.log import record
from audit.models import AuditEvent

EXPORT_FIELDS = [
    "id",
    "time",
    "username",
    "role",
    "action",
    "target_type",
    "target_id",
    "target_name",
    "outcome",
    "source_ip",
    "request_id",
    "details",
    "prev_hash",
    "hash",
]


@require_safe  # read-only: POST and the like are refused (405)
def audit_list(request):
    f, queryset = filters.events(request.GET)
    page = Paginator(queryset.only(*[n for n in EXPORT_FIELDS if n != "details"]), 100).get_page(
        request.GET.get("page")
    )
    return render(request, "audit/list.html", {"page": page, "filter": f, "forwarding": forward.status()})


@require_safe  # read-only: POST and the like are refused (405)
def audit_detail(request, pk: int):
    event = get_object_or_404(AuditEvent, pk=pk)
    details = json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)
    return render(request, "audit/detail.html", {"event": event, "details_json": details})


def _rows(queryset):
    # iterator(): rows stream from the database in chunks; a million rows never sit in memory.
    for event in queryset.iterator(chunk_size=2000):
        row = {name: getattr(event, name) for name in EXPORT_FIELDS}
        row["time"] = event.time.isoformat()
        yield row


class _Echo:
    def write(self, value):
        return value


def _export(request, extension: str, content_type: str, body):
    """The filtered trail as a download, streamed in id order, and audited: who exported which filter.

    The export ends at the last row there was when it was asked for (append-only: a fixed set, whatever
    is written while it streams); its own audit row names that row ("through")."""
    f, queryset = filters.events(request.GET)
    if f.notices:
        # An export with a filter ignored would hand over more of the trail than was asked for.
        return HttpResponseBadRequest("\n".join(f.notices) + "\n", content_type="text/plain; charset=utf-8")
    through = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    if request.method == "GET":  # HEAD hands over nothing
        record(
            "audit.exported",
            request=request,
            target_type="audit",
            target_name=f"audit-trail.{extension}",
            details={"format": extension, "filter": f.values, "through": through},
        )
    response = StreamingHttpResponse(body(queryset.filter(id__lte=through).order_by("id")), content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    return response


def _csv(queryset):
    writer = csv.writer(_Echo())
    yield "\ufeff"  # so spreadsheets read the file as UTF-8
    yield writer.writerow(EXPORT_FIELDS)
    for row in _rows(queryset):
        row["details"] = json.dumps(row["details"], sort_keys=True)
        yield writer.writerow([_cell(row[name]) for name in EXPORT_FIELDS])


def _cell(value):
    # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _json(queryset):
    yield "[\n"
    for i, row in enumerate(_rows(queryset)):
        yield ("" if i == 0 else ",\n") + json.dumps(row, sort_keys=True)
    yield "\n]\n"


def _jsonl(queryset):
    # One record per line, as forwarded to syslog: every hashed field, so a reader can verify the chain.
    for event in queryset.iterator(chunk_size=2000):
        yield json.dumps(event.as_record(), sort_keys=True, cls=DjangoJSONEncoder) + "\n"


@require_safe  # read-only: POST and the like are refused (405)
def export_csv(request):
    return _export(request, "csv", "text/csv; charset=utf-8", _csv)


@require_safe  # read-only: POST and the like are refused (405)
def export_json(request):
    return _export(request, "json", "application/json", _json)


@require_safe  # read-only: POST and the like are refused (405)
def export_jsonl(request):
    return _export(request, "jsonl", "application/jsonl; charset=utf-8", _jsonl)


def csrf_failure(request, reason=""):
    """Django's CSRF refusal (403), audited (rate-limited: audit/log.py record_refusal)."""
    from django.views.csrf import csrf_failure as refuse

    from audit.log import record_refusal

    record_refusal("csrf_refused", request, details={"reason": reason})
    return refuse(request, reason=reason)
