"""Texts that stay English where they are recorded and are translated where a person reads them.

A Msg is a str (the English text, as the CLI, the JSON output, logs and the audit trail carry it)
that also remembers its message template and named values. A page shows it in the reader's
language with localized(); a stored copy (as_stored) keeps what a later page needs to do the same.
Named placeholders (%(vm)s) let a translation put the values in another order. A value may be a
Msg itself, or a tuple of texts (written as a list: "a, b").

Pure: Django's translation functions are imported only when a text is translated. The project's
makemessages (console/management/commands/makemessages.py) extracts Msg("...") templates.
"""

from __future__ import annotations

from collections.abc import Mapping


class Msg(str):
    """English text with its untranslated template and values (floats are shown with one decimal)."""

    template: str
    params: dict
    trim_period: bool = False  # a sentence going on in a longer one: without its closing period

    def __new__(cls, template: str, /, **params):
        text = super().__new__(cls, template % {k: _english(v) for k, v in params.items()})
        text.template = template
        text.params = params
        return text

    def __reduce__(self):
        return _rebuild, (self.template, self.params, self.trim_period)

    def as_stored(self) -> dict:
        """JSON-ready template and values; from_stored() makes the Msg again."""
        stored = {"template": self.template, "params": {k: _store(v) for k, v in self.params.items()}}
        return {**stored, "trim": True} if self.trim_period else stored

    @classmethod
    def from_stored(cls, data: Mapping, english: str = "") -> str:
        try:
            params = {k: _load(v) for k, v in (data.get("params") or {}).items()}
            text = cls(data["template"], **params)
        except (KeyError, TypeError, ValueError):
            return english
        return without_period(text) if data.get("trim") else text


def _rebuild(template: str, params: dict, trim_period: bool = False) -> Msg:
    text = Msg(template, **params)
    return without_period(text) if trim_period else text


def without_period(text: str) -> str:
    """The text without its closing period, in English and once translated."""
    if not isinstance(text, Msg):
        return text.rstrip(".")
    trimmed = str.__new__(Msg, str(text).rstrip("."))
    trimmed.template, trimmed.params, trimmed.trim_period = text.template, text.params, True
    return trimmed


def _english(value):
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else value


def _store(value):
    if isinstance(value, tuple):
        return {"list": [_store(v) for v in value]}
    return {"msg": value.as_stored()} if isinstance(value, Msg) else value


def _load(value):
    if isinstance(value, Mapping) and "msg" in value:
        return Msg.from_stored(value["msg"])
    if isinstance(value, Mapping) and "list" in value:
        return tuple(_load(v) for v in value["list"])
    return value


def localized(text) -> str:
    """The text in the active language: a Msg through the catalogue with its values localized
    (numbers get the locale's decimal comma); any other string as it is."""
    if not isinstance(text, Msg):
        return "" if text is None else str(text)
    from django.conf import settings

    if not settings.configured:  # a pure module's tests, a script: the English text
        return str(text)
    from django.utils.formats import number_format
    from django.utils.translation import gettext

    values = {}
    for name, value in text.params.items():
        if isinstance(value, Msg):
            values[name] = localized(value)
        elif isinstance(value, tuple):
            values[name] = ", ".join(localized(v) for v in value)
        elif isinstance(value, float):
            values[name] = number_format(value, decimal_pos=1)
        else:
            values[name] = value
    try:
        translated = gettext(text.template) % values
    except (KeyError, TypeError, ValueError):  # a broken translation: the English text, never a 500
        return str(text)
    return translated.rstrip(".") if text.trim_period else translated


def localized_error(exc: Exception) -> str:
    """An exception's message (a Msg, or plain English) in the active language."""
    return localized(exc.args[0]) if exc.args else str(exc)


def duration_text(seconds) -> str:
    """A span of seconds in the active language: "45 s", "2 min 5 s", "1 h 3 min"."""
    from django.utils.translation import gettext

    seconds = max(int(seconds or 0), 0)
    if seconds < 60:
        return gettext("%(s)d s") % {"s": seconds}
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return gettext("%(min)d min %(s)d s") % {"min": minutes, "s": seconds}
    hours, minutes = divmod(minutes, 60)
    return gettext("%(h)d h %(min)d min") % {"h": hours, "min": minutes}
