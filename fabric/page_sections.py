"""Sections other apps add to the inventory's pages, so that the inventory knows nothing of them.

migrations_ui adds its parts to the host page (evacuation and queue actions, the maintenance
notice, the slots in use, the slots chart) and its move buttons to the VM page, by calling
add_section() in its AppConfig.ready(). A section renders its own app's template:
render(request, obj) -> HTML ("" for nothing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

Section = Callable[[HttpRequest, object], str]
_sections: dict[tuple[str, str], list[Section]] = defaultdict(list)


def add_section(page: str, place: str, render: Section) -> None:
    """Show render(request, obj) at `place` ("actions", "details", "wide") of `page` ("host", "vm")."""
    _sections[(page, place)].append(render)


def page_sections(page: str, request: HttpRequest, obj) -> dict[str, SafeString]:
    """Each place of the page with the HTML its sections rendered, for the page's template."""
    places = {place for p, place in _sections if p == page}
    return {place: mark_safe("".join(render(request, obj) for render in _sections[(page, place)])) for place in places}  # noqa: S308 - each section renders an autoescaped template
