"""CSV downloads: streamed, readable by spreadsheets as UTF-8, formulas kept as text."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from django.http import StreamingHttpResponse
from django.utils import timezone


class _Echo:
    def write(self, value):
        return value


def cell(value) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def csv_response(header: Sequence[str], rows: Iterable[Sequence], name: str) -> StreamingHttpResponse:
    """rows may be a generator over a queryset's iterator(): nothing is held in memory."""
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # so spreadsheets read the file as UTF-8
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
