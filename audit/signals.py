"""Sign-ins, sign-outs, users and their roles go into the audit trail. Signals carry no request:
record() takes the actor from the request being served (utilities.request_context.current_request)."""

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from audit.log import record, record_refusal


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record("login", request=request, actor=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    record("logout", request=request, actor=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the user name: credentials also hold the password, which must never be stored.
    if hasattr(request, "oidc_problem"):
        # Not in the user name column: the lockout counts that, and a provider's user must not lock
        # out the local account whose name it has (access/oidc.py refuses it).
        details = {"username": getattr(request, "sign_in_name", ""), "via": "oidc", "problem": request.oidc_problem}
        record_refusal("login_failed", request, details=details, outcome="failure")
        return
    name = credentials.get("username", "")
    details = {"username": name}
    # (A name longer than any user's is nobody's, and would make SQLite's LIKE pattern too complex.)
    possible = isinstance(name, str) and len(name) <= User._meta.get_field("username").max_length
    if possible and User.objects.filter(username__iexact=name).exists():
        # Every failure for an account is written: the lockout counts them (console/forms.py), and
        # it bounds them too (LOGIN_FAILURE_LIMIT per name and window).
        record("login_failed", request=request, username=name, details=details, outcome="failure")
    else:
        # A name nobody has cannot be locked out nor signed in with: rate-limited per source, so a
        # flood of made-up names cannot drown the trail.
        record_refusal("login_failed", request, username=name, details=details, outcome="failure")


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _user_saved(sender, instance, created, **kwargs):
    if kwargs.get("raw") or kwargs.get("update_fields") == frozenset({"last_login"}):
        return
    record(
        "user.created" if created else "user.changed",
        target=instance,
        target_type="user",
        details={
            "user": instance.get_username(),
            "active": instance.is_active,
            "superuser": instance.is_superuser,
            "staff": instance.is_staff,
        },
    )


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def _user_deleted(sender, instance, **kwargs):
    # Their rows keep their name and id (AuditEvent.actor_pk): the chain stays valid.
    record(
        "user.deleted",
        target_type="user",
        target_id=str(instance.pk),
        target_name=instance.get_username(),
        details={"user": instance.get_username()},
    )


@receiver(m2m_changed, sender=User.groups.through)
def _roles_changed(sender, instance, action, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear") or not isinstance(instance, User):
        return
    groups = list(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    record(
        "user.roles_changed",
        target=instance,
        target_type="user",
        details={
            "change": action.removeprefix("post_"),
            "groups": groups,
            "now": list(instance.groups.values_list("name", flat=True)),
        },
    )
