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
from django.utils.translation import gettext

from utilities.roles import GROUP_NAMES, ROLE_PERMS, Perm, Role, role_of

__all__ = [
    "Perm",
    "Role",
    "can",
    "can_view",
    "capabilities",
    "check",
    "ensure_roles",
    "requires",
    "requires_always",
    "role_of",
    "set_role",
]


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


def set_role(user, role: Role | None) -> None:
    """Exactly this role's group among the role groups (each change audited as user.roles_changed)."""
    from django.contrib.auth.models import Group

    wanted = None
    if role is not None:
        if not Group.objects.filter(name=GROUP_NAMES[role]).exists():
            ensure_roles()
        wanted = Group.objects.get(name=GROUP_NAMES[role])
    current = set(user.groups.filter(name__in=GROUP_NAMES.values()))
    if current - {wanted}:
        user.groups.remove(*(current - {wanted}))
    if wanted is not None and wanted not in current:
        user.groups.add(wanted)
