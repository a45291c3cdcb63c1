"""Sign-ins and sign-outs go into the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.log import record


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    record("login", request=request, actor=user)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    record("logout", request=request, actor=user)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the user name: credentials also hold the password, which must never be stored.
    record("login_failed", request=request, details={"username": credentials.get("username", "")}, outcome="failure")
