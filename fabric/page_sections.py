"""Sections other apps add to the inventory's pages, so that the inventory knows nothing of them.

migrations_ui adds its parts to the host page (evacuation and queue actions, the maintenance
notice, the slots in use, the slots chart) and its move buttons to the VM page, by calling
add_section() in its AppConfig.ready(). A section renders its own app's template:
render(request, obj) -> HTML ("" for nothing). On the VM list it adds a link to each row
(add_row_action: Migrate) and a button for the rows checked (add_selection_action: Migrate
selected); the list shows its checkboxes only when the user may use such a button.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from access import can

Section = Callable[[HttpRequest, object], str]
_sections: dict[tuple[str, str], list[Section]] = defaultdict(list)


def add_section(page: str, place: str, render: Section) -> None:
    """Show render(request, obj) at `place` ("actions", "details", "wide") of `page` ("host", "vm")."""
    _sections[(page, place)].append(render)


def page_sections(page: str, request: HttpRequest, obj) -> dict[str, SafeString]:
    """Each place of the page with the HTML its sections rendered, for the page's template."""
    places = {place for p, place in _sections if p == page}
    return {place: mark_safe("".join(render(request, obj) for render in _sections[(page, place)])) for place in places}  # noqa: S308 - each section renders an autoescaped template


@dataclass(frozen=True)
class Action:
    """A link of each row of a list page (its URL takes the row's key) or a button for the rows checked
    (its URL takes nothing; the checked rows' keys come as the query's values). Shown to users with
    `perm`; the view behind it checks again."""

    label: str
    url_name: str
    perm: str


_row_actions: dict[str, list[Action]] = defaultdict(list)
_selection_actions: dict[str, list[Action]] = defaultdict(list)


def add_row_action(page: str, action: Action) -> None:
    _row_actions[page].append(action)


def add_selection_action(page: str, action: Action) -> None:
    _selection_actions[page].append(action)


def list_actions(page: str, user) -> dict[str, list[Action]]:
    """The row and selection actions of a list page this user may use, for the page's template."""
    return {
        "row": [a for a in _row_actions[page] if can(user, a.perm)],
        "selection": [a for a in _selection_actions[page] if can(user, a.perm)],
    }
