"""Sign-in with a lockout: repeated failures for one user name lock it for a while; and a directory
that does not answer is said so, not taken for a wrong password (access/directory.py).

Failures are counted from the audit trail (login_failed events), so every web process, on every
machine, sees the same count without a cache."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from access import oidc
from audit.log import record_refusal
from audit.models import AuditEvent


def locked_out(username: str) -> bool:
    since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    failures = AuditEvent.objects.filter(action="login_failed", username__iexact=username, time__gte=since)
    return failures.count() >= settings.LOGIN_FAILURE_LIMIT


class LockoutAuthenticationForm(AuthenticationForm):
    def clean(self):
        username = (self.data.get("username") or "").strip()
        # A name longer than the field allows is no account (the field refuses it), and would make
        # the lockout's LIKE pattern too long for SQLite.
        too_long = len(username) > self.fields["username"].max_length
        if username and not too_long and locked_out(username):
            # Rate-limited per source: a flood of attempts on a locked name cannot drown the trail.
            record_refusal("login_locked", self.request, username=username, details={"username": username})
            raise ValidationError(
                ngettext(
                    "Too many failed sign-ins for this account; try again in %(minutes)d minute.",
                    "Too many failed sign-ins for this account; try again in %(minutes)d minutes.",
                    settings.LOGIN_LOCKOUT_MINUTES,
                )
                % {"minutes": settings.LOGIN_LOCKOUT_MINUTES},
                code="locked",
            )
        return super().clean()

    def get_invalid_login_error(self):
        problem = getattr(self.request, "directory_problem", None)
        if problem is None:
            return super().get_invalid_login_error()
        messages = {
            "unreachable": gettext("The directory does not answer; local accounts can still sign in."),
            "unreachable_tls": gettext(
                "The directory does not answer, or its certificate is not trusted; local accounts can still sign in."
            ),
            "error": gettext(
                "The directory refused the console's query (see the server log); local accounts can still sign in."
            ),
        }
        return ValidationError(messages[problem], code="directory_" + problem)


class SignInView(LoginView):
    """Django's sign-in page, with single sign-on's button when it is configured (access/oidc.py)."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if oidc.enabled():
            context["single_sign_on"] = settings.OIDC_PROVIDER_NAME
        return context
