import csv
import json

from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from audit import filters
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
    return render(request, "audit/list.html", {"page": page, "filter": f})


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


def _refused(f: filters.AuditFilter):
    # An export with a filter ignored would hand over more of the trail than was asked for.
    return HttpResponseBadRequest("\n".join(f.notices) + "\n", content_type="text/plain; charset=utf-8")


@require_safe  # read-only: POST and the like are refused (405)
def export_csv(request):
    f, queryset = filters.events(request.GET)
    if f.notices:
        return _refused(f)
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # so spreadsheets read the file as UTF-8
        yield writer.writerow(EXPORT_FIELDS)
        for row in _rows(queryset.order_by("id")):
            row["details"] = json.dumps(row["details"], sort_keys=True)
            yield writer.writerow([_cell(row[name]) for name in EXPORT_FIELDS])

    return _download(lines(), "text/csv; charset=utf-8", "csv")


def _cell(value):
    # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


@require_safe  # read-only: POST and the like are refused (405)
def export_json(request):
    f, queryset = filters.events(request.GET)
    if f.notices:
        return _refused(f)

    def chunks():
        yield "[\n"
        for i, row in enumerate(_rows(queryset.order_by("id"))):
            yield ("" if i == 0 else ",\n") + json.dumps(row, sort_keys=True)
        yield "\n]\n"

    return _download(chunks(), "application/json", "json")


def _download(content, content_type: str, extension: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{extension}"'
    return response


def csrf_failure(request, reason=""):
    """Django's CSRF refusal (403), audited (rate-limited: audit/log.py record_refusal)."""
    from django.views.csrf import csrf_failure as refuse

    from audit.log import record_refusal

    record_refusal("csrf_refused", request, details={"reason": reason})
    return refuse(request, reason=reason)
