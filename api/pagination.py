"""Cursor (keyset) pagination: a page is found by the last row's sort key, not by an offset, so it
costs the same on page 1 and page 400 and rows added meanwhile do not shift the pages."""

from __future__ import annotations

import base64
import binascii
import json

from django.db.models import Q

from api.errors import bad_input

BAD_CURSOR = "Not a cursor from this API; start again without it."


def _encode(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, types: tuple[type, ...]) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_input("cursor", BAD_CURSOR) from None
    # bool is an int to Python, not to the database; ints must fit in a database integer.
    if not isinstance(values, list) or len(values) != len(types):
        raise bad_input("cursor", BAD_CURSOR)
    for value, kind in zip(values, types, strict=True):
        if type(value) is not kind or (kind is int and not 0 <= value < 2**63) or (kind is str and "\x00" in value):
            raise bad_input("cursor", BAD_CURSOR)
    return values


def keyset(queryset, cursor: str | None, limit: int, key: tuple[tuple[str, type], ...] = (("pk", int),), desc=False):
    """(rows, next_cursor): one page of the queryset in `key` order, after the cursor's row."""
    fields = [name for name, _ in key]
    if cursor:
        values = _decode(cursor, tuple(kind for _, kind in key))
        after = Q()
        for i, name in enumerate(fields):
            step = {fields[j]: values[j] for j in range(i)} | {f"{name}__{'lt' if desc else 'gt'}": values[i]}
            after |= Q(**step)
        queryset = queryset.filter(after)
    rows = list(queryset.order_by(*[f"-{f}" if desc else f for f in fields])[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode([getattr(rows[-1], name) for name in fields])
