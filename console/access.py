"""Who may do what: the one module views, websocket consumers, the API and the CLI ask.

Roles are Django groups with permissions (created by console's data migration):
- Viewer (managers): sees inventory, jobs with live progress, plans and the audit trail;
- Operator: also starts and cancels migrations, storage moves and evacuations;
- Administrator: also hosts and credentials, host migration settings and limits, users and roles.
Superusers are administrators. A signed-in user without a role sees nothing.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMINISTRATOR = "administrator", "Administrator"


class Perm:
    """Permission names (app_label.codename) for the actions the console guards."""

    MIGRATE = "migrations_ui.start_migration"  # migrations and storage moves, cancel
    EVACUATE = "migrations_ui.evacuate_host"
    MANAGE_HOSTS = "fabric.manage_hosts"  # hosts and credentials
    HOST_SETTINGS = "fabric.change_host_settings"
    MANAGE_USERS = "auth.change_user"


GROUP_NAMES = {Role.VIEWER: "Viewer", Role.OPERATOR: "Operator", Role.ADMINISTRATOR: "Administrator"}
ROLE_PERMS = {
    Role.VIEWER: (),
    Role.OPERATOR: (Perm.MIGRATE, Perm.EVACUATE),
    Role.ADMINISTRATOR: (
        Perm.MIGRATE,
        Perm.EVACUATE,
        Perm.MANAGE_HOSTS,
        Perm.HOST_SETTINGS,
        Perm.MANAGE_USERS,
        "auth.add_user",
        "auth.view_user",
        "auth.change_group",
        "auth.view_group",
    ),
}
_RANK = [Role.ADMINISTRATOR, Role.OPERATOR, Role.VIEWER]


def role_of(user) -> str | None:
    """The highest role of a user, or None (anonymous, or no role assigned)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMINISTRATOR
    names = _group_names(user)
    return next((role for role in _RANK if GROUP_NAMES[role] in names), None)


def _group_names(user) -> set[str]:
    cached = getattr(user, "_console_groups", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._console_groups = cached
    return cached


def can_view(user) -> bool:
    return role_of(user) is not None


def can(user, perm: str) -> bool:
    return can_view(user) and user.has_perm(perm)


def check(request, perm: str, target: str = "") -> None:
    """Raise PermissionDenied (audited as permission denied) unless the request's user may do it."""
    if not can(request.user, perm):
        from audit.log import record

        record(
            "permission_denied",
            request=request,
            target_type="url",
            target_name=target or request.path,
            details={"permission": perm, "method": request.method},
            outcome="denied",
        )
        raise PermissionDenied(gettext("Your role does not allow this (%(permission)s).") % {"permission": perm})


def requires(perm: str):
    """View decorator: the permission for POST (and any other unsafe method); GET stays viewable."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                check(request, perm)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def requires_always(perm: str):
    """View decorator for pages that are themselves a change form (administrators' pages)."""

    def decorate(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            check(request, perm)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def capabilities(user) -> dict:
    """What templates may offer: {% if can.migrate %}... The server refuses regardless."""
    return {
        "role": role_of(user),
        "migrate": can(user, Perm.MIGRATE),
        "evacuate": can(user, Perm.EVACUATE),
        "manage_hosts": can(user, Perm.MANAGE_HOSTS),
        "host_settings": can(user, Perm.HOST_SETTINGS),
        "manage_users": can(user, Perm.MANAGE_USERS),
    }


def ensure_roles() -> None:
    """Create the role groups with their permissions where missing (the data migration does this on
    install; tests whose database is flushed between tests call it again)."""
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMS.items():
        group, _ = Group.objects.get_or_create(name=GROUP_NAMES[role])
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        group.permissions.set(wanted)
