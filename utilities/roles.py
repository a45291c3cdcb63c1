"""The console's roles and the permissions each grants, and a user's role: what the audit trail
records of an actor and what access checks (the access package) are built on. No imports of the
console's own: the audit trail below the access checks needs it."""

from __future__ import annotations

from django.db import models


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
