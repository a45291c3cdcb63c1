"""The audit trail's stored words (roles, kinds of target: English, as verified and exported) in the
reader's language on its pages."""

from django import template
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

register = template.Library()

ROLES = {"viewer": _("Viewer"), "operator": _("Operator"), "administrator": _("Administrator")}
KINDS = {
    "virtualmachine": pgettext_lazy("audit target", "virtual machine"),
    "host": pgettext_lazy("audit target", "host"),
    "cluster": pgettext_lazy("audit target", "cluster"),
    "batch": pgettext_lazy("audit target", "batch"),
    "job": pgettext_lazy("audit target", "job"),
    "migrationjob": pgettext_lazy("audit target", "job"),
    "api_token": pgettext_lazy("audit target", "API token"),
    "url": pgettext_lazy("audit target", "URL"),
    "user": pgettext_lazy("audit target", "user"),
    "command": pgettext_lazy("audit target", "command"),
    "window": pgettext_lazy("audit target", "maintenance window"),
    "audit": pgettext_lazy("audit target", "audit trail"),
}


@register.filter
def role_label(role: str) -> str:
    return ROLES.get(role, role)


@register.filter
def target_kind(kind: str) -> str:
    return KINDS.get(kind, kind)
