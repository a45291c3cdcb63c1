"""Texts that stay English where they are recorded and are translated where a person reads them.

A Msg is a str (the English text, as the CLI, the JSON output, logs and the audit trail carry it)
that also remembers its message template and named values. A page shows it in the reader's
language with localized(); a stored copy (as_stored) keeps what a later page needs to do the same.
Named placeholders (%(vm)s) let a translation put the values in another order.

Pure: Django's translation functions are imported only when a text is translated. The project's
makemessages (console/management/commands/makemessages.py) extracts Msg("...") templates.
"""

from __future__ import annotations

from collections.abc import Mapping


class Msg(str):
    """English text with its untranslated template and values (floats are shown with one decimal)."""

    template: str
    params: dict

    def __new__(cls, template: str, /, **params):
        text = super().__new__(cls, template % params)
        text.template = template
        text.params = params
        return text

    def __reduce__(self):
        return _rebuild, (self.template, self.params)

    def as_stored(self) -> dict:
        """JSON-ready template and values; from_stored() makes the Msg again."""
        return {"template": self.template, "params": {k: _store(v) for k, v in self.params.items()}}

    @classmethod
    def from_stored(cls, data: Mapping, english: str = "") -> str:
        try:
            params = {k: _load(v) for k, v in (data.get("params") or {}).items()}
            return cls(data["template"], **params)
        except (KeyError, TypeError, ValueError):
            return english


def _rebuild(template: str, params: dict) -> Msg:
    return Msg(template, **params)


def _store(value):
    return {"msg": value.as_stored()} if isinstance(value, Msg) else value


def _load(value):
    if isinstance(value, Mapping) and "msg" in value:
        return Msg.from_stored(value["msg"])
    return value


def localized(text) -> str:
    """The text in the active language: a Msg through the catalogue with its values localized
    (numbers get the locale's decimal comma); any other string as it is."""
    if not isinstance(text, Msg):
        return "" if text is None else str(text)
    from django.utils.formats import number_format
    from django.utils.translation import gettext

    values = {}
    for name, value in text.params.items():
        if isinstance(value, Msg):
            values[name] = localized(value)
        elif isinstance(value, float):
            values[name] = number_format(value, decimal_pos=1)
        else:
            values[name] = value
    try:
        return gettext(text.template) % values
    except (KeyError, TypeError, ValueError):  # a broken translation: the English text, never a 500
        return str(text)
