"""Template filters of the inventory's pages."""

from django import template
from django.utils import timezone

from fabric.tasks import stale_after

register = template.Library()


@register.filter
def stale(when) -> bool:
    """A last sync older than two missed periodic syncs: the page's figures may be out of date."""
    return when is not None and timezone.now() - when > stale_after()
