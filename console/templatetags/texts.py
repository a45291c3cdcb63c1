"""Showing recorded English texts (utilities.texts.Msg, stored findings) in the reader's language."""

from collections.abc import Mapping

from django import template
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from utilities.texts import Msg, duration_text, localized

register = template.Library()

SEVERITIES = {"block": _("block"), "warn": _("warn"), "info": _("info")}


@register.filter(name="localized")
def localized_filter(text) -> str:
    return localized(text)


@register.filter
def finding_text(finding, part: str) -> str:
    """A finding's message or remedy translated: a Finding, or a job's stored copy (with its "i18n")."""
    if isinstance(finding, Mapping):
        english = finding.get(part) or ""
        stored = (finding.get("i18n") or {}).get(part)
        return localized(Msg.from_stored(stored, english)) if stored else english
    return localized(getattr(finding, part, ""))


@register.filter
def severity_label(severity: str) -> str:
    return SEVERITIES.get(severity, severity)


@register.filter
def localized_each(texts) -> list[str]:
    """Each text of a list in the active language: {{ host.drift|localized_each|join:"; " }}."""
    return [localized(t) for t in texts or ()]


@register.filter
def translated(text) -> str:
    """A recorded English text (a job's error remedy...) through the catalogue: translated where
    it is one of the console's own constant texts, as it is otherwise (Hyper-V's messages)."""
    from django.utils.translation import gettext

    return gettext(str(text)) if text else ""


@register.filter
def lowerfirst(text) -> str:
    """A label inside a sentence: "4 queued", "4 in der Warteschlange" (German keeps its nouns' capitals)."""
    text = str(text)
    return text[:1].lower() + text[1:]


@register.filter
def percent(value) -> str:
    """A percentage as the reader's language writes it: "35%", "35 %" (German puts a space before it)."""
    return gettext("%(value)s%%") % {"value": value}


@register.filter
def seconds_text(seconds) -> str:
    """A span of seconds as a person reads it: "45 s", "2 min 5 s", "1 h 3 min"."""
    return duration_text(seconds)


@register.filter
def as_datetime(value):
    """An ISO 8601 time stored in JSON (a readiness's "at") as a datetime for the date filters."""
    from django.utils.dateparse import parse_datetime

    return parse_datetime(value) if isinstance(value, str) else value
