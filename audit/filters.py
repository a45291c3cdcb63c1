"""The audit list's filters, parsed leniently: a bad value is ignored with a message at its field
(and an unknown parameter with a notice), never a 500."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from urllib.parse import urlencode

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from audit.models import AuditEvent, Outcome

FIELDS = ("since", "until", "actor", "action", "target", "outcome")
KNOWN = {*FIELDS, "page"}


@dataclass
class AuditFilter:
    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # field -> why its value was ignored (shown at the field)
    raw: dict = field(default_factory=dict)  # each ignored value as typed, put back in its field
    unknown: list = field(default_factory=list)  # parameters that are no filter (?from= for since)

    @property
    def notices(self) -> list[str]:
        return [*self.errors.values(), *self.unknown]

    def query(self) -> str:
        # Encoded: a target with & or + in it must reach the export and the next page as typed.
        return urlencode({k: v for k, v in self.values.items() if v})


def _moment(raw: str, end_of_day: bool):
    """The moment `raw` names, or None. Well-formed but impossible dates (2026-02-30, 2026-13-01)
    make Django's parsers raise ValueError; an offset pushing 9999-12-31 past year 9999 in UTC
    raises OverflowError: both are bad input like any other, not a fault."""
    try:
        # A bare date first: parse_datetime would read it as midnight, and until=DAY must keep DAY.
        if day := parse_date(raw):
            moment = datetime.combine(day, time.max if end_of_day else time.min)
        else:
            moment = parse_datetime(raw)
        if moment is not None and timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        # The database compares in UTC: convert here, where an overflow can still be caught.
        return moment.astimezone(UTC) if moment is not None else None
    except (ValueError, OverflowError):
        return None


def parse(params) -> tuple[AuditFilter, Q]:
    f, q = AuditFilter(), Q()
    for name in sorted(set(params) - KNOWN):
        f.unknown.append(
            _("Ignored %(name)s=%(value)s: there is no such filter (they are %(filters)s).")
            % {"name": name[:40], "value": repr(params.get(name, "")[:200]), "filters": ", ".join(FIELDS)}
        )
    for name in FIELDS:
        raw = (params.get(name) or "").strip()[:200]
        if not raw:
            continue
        if name in ("since", "until"):
            moment = _moment(raw, end_of_day=name == "until")
            if moment is None:
                f.errors[name] = _("Ignored %(value)s: give a date (2026-11-25) or a date and time.") % {
                    "value": repr(raw)
                }
                f.raw[name] = raw
                continue
            q &= Q(time__gte=moment) if name == "since" else Q(time__lte=moment)
        elif name == "outcome":
            if raw not in Outcome.values:
                f.errors[name] = _("Ignored %(value)s: use one of %(choices)s.") % {
                    "value": repr(raw),
                    "choices": ", ".join(Outcome.values),
                }
                continue
            q &= Q(outcome=raw)
        elif name == "actor":
            q &= Q(username__iexact=raw)
        elif name == "action":
            q &= Q(action__startswith=raw)
        elif name == "target":
            q &= Q(target_name__icontains=raw) | Q(target_id__iexact=raw)
        f.values[name] = raw
    return f, q


def events(params):
    f, q = parse(params)
    return f, AuditEvent.objects.filter(q).order_by("-id")
