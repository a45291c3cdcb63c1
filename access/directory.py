"""Directory sign-in (console/directory.py reads its settings): django-auth-ldap's backend, with the
console's roles from three directory groups, set again at every sign-in, and a directory outage told
apart from a wrong password.

- Roles: a directory user's role groups (Viewer / Operator / Administrator) become exactly the one of
  the highest mapped directory group they are in, directly or through nested groups; in none, no
  role (signed in, the no-role page). Groups that are not roles are left alone.
- Local accounts (a usable password in the console's database) never sign in through the directory,
  and the directory cannot take one over: a directory user named like the local `admin` is refused
  here and ModelBackend checks the local password. Users the directory created have no usable
  password, so ModelBackend never signs them in.
- Outage: django-auth-ldap logs a directory error and answers None, as for a wrong password; the
  request carries `directory_problem` ("unreachable", "unreachable_tls" or "error") so the sign-in
  form says which (console/forms.py).
"""

from __future__ import annotations

import ldap
from django.conf import settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from access import set_role
from access.directory_types import normal_dn
from utilities.roles import Role

# Highest first: a user in several mapped groups gets the highest role.
ROLE_SETTING = {
    Role.ADMINISTRATOR: "AUTH_LDAP_ADMINISTRATOR_GROUP",
    Role.OPERATOR: "AUTH_LDAP_OPERATOR_GROUP",
    Role.VIEWER: "AUTH_LDAP_VIEWER_GROUP",
}
UNREACHABLE = (ldap.SERVER_DOWN, ldap.TIMEOUT, ldap.CONNECT_ERROR)


def directory_role(group_dns) -> Role | None:
    """The highest role whose directory group is among the user's groups (DNs, nested included)."""
    dns = {normal_dn(dn) for dn in group_dns}
    for role, setting in ROLE_SETTING.items():
        mapped = getattr(settings, setting, "")
        if mapped and normal_dn(mapped) in dns:
            return role
    return None


class DirectoryBackend(LDAPBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username and _local_account(username):
            return None  # ModelBackend's: the directory is not even asked (nor waited for)
        return super().authenticate(request, username, password, **kwargs)

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        if user is not None:
            set_role(user, directory_role(ldap_user.group_dns))
        return user


def _local_account(username: str) -> bool:
    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    return user is not None and user.has_usable_password()


@receiver(ldap_error, sender=DirectoryBackend)
def _directory_problem(sender, context, user, request, exception, **kwargs):
    if request is None:
        return
    if not isinstance(exception, UNREACHABLE):
        request.directory_problem = "error"
    elif settings.AUTH_LDAP_START_TLS or "ldaps://" in settings.AUTH_LDAP_SERVER_URI:
        # A certificate the console does not trust fails as a server that does not answer (GnuTLS
        # tells the two apart in no error code).
        request.directory_problem = "unreachable_tls"
    else:
        request.directory_problem = "unreachable"
