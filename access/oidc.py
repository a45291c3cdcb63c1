"""Single sign-on with OpenID Connect (console/oidc.py reads its settings): mozilla-django-oidc's
authorization code flow (with PKCE), the console's roles from three provider groups set again at each
sign-in, as directory sign-in does (access/directory.py), and every failure told on the sign-in page.

- Who: the user is named by OIDC_USERNAME_CLAIM (preferred_username: Entra ID's UPN, Keycloak's
  user name), created at the first sign-in without a usable password. A local account (one with a
  usable password, the break-glass admin) is never taken over: the provider's user of that name is
  refused. Directory and provider users of one name are one user.
- Roles: the highest of OIDC_*_GROUP among the OIDC_GROUPS_CLAIM values (group names, Entra ID's
  group object ids, or app roles with OIDC_GROUPS_CLAIM=roles), from the ID token and the userinfo
  answer together: Entra ID puts groups in the ID token only, Keycloak in either.
- Checks beyond mozilla-django-oidc's signature and nonce: the ID token's issuer and audience (OpenID
  Connect Core 3.1.3.7, items 2 and 3), which it leaves unchecked.
- Failures: the provider unreachable or refusing, a token that fails the checks, a local name, a
  sign-in that expired or was cancelled at the provider: the sign-in page says which, the audit trail
  records login_failed, never an error page.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from access import set_role
from utilities.roles import Role

LOGGER = logging.getLogger(__name__)
# Highest first: a user in several mapped groups gets the highest role.
ROLE_SETTING = {
    Role.ADMINISTRATOR: "OIDC_ADMINISTRATOR_GROUP",
    Role.OPERATOR: "OIDC_OPERATOR_GROUP",
    Role.VIEWER: "OIDC_VIEWER_GROUP",
}


def enabled() -> bool:
    return bool(getattr(settings, "OIDC_RP_CLIENT_ID", ""))


def provider_role(claims: dict) -> Role | None:
    """The highest role whose group is among the claim's values (compared without case)."""
    values = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(values, str):
        values = [values]
    groups = {str(value).casefold() for value in values}
    for role, setting in ROLE_SETTING.items():
        mapped = getattr(settings, setting, "")
        if mapped and mapped.casefold() in groups:
            return role
    return None


class OIDCBackend(OIDCAuthenticationBackend):
    def authenticate(self, request, **kwargs):
        # Only the callback's call (it passes the nonce it stored), never the password form's.
        if request is None or "nonce" not in kwargs:
            return None
        try:
            user = super().authenticate(request, **kwargs)
            if user is None and not hasattr(request, "oidc_problem"):
                request.oidc_problem = "rejected"  # e.g. two users whose names differ in case only
            return user
        except requests.HTTPError as exc:
            LOGGER.warning("The OpenID provider refused the console's request (HTTP %s)", _status(exc))
            request.oidc_problem = "refused"
        except requests.RequestException as exc:
            LOGGER.warning("The OpenID provider did not answer: %s", type(exc).__name__)
            request.oidc_problem = "unreachable"
        except SuspiciousOperation as exc:
            LOGGER.warning("The OpenID provider's answer failed a check: %s", exc)
            request.oidc_problem = "rejected"
        return None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience or []
        if payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise SuspiciousOperation(f"ID token from issuer {payload.get('iss')!r}, not OIDC_OP_ISSUER")
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token issued for another client")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def verify_claims(self, claims):
        name = self.get_username(claims)
        self.request.sign_in_name = name
        if not name or len(name) > get_user_model()._meta.get_field("username").max_length:
            LOGGER.warning("The OpenID provider gave no usable %s claim", settings.OIDC_USERNAME_CLAIM)
            self.request.oidc_problem = "no_name"
            return False
        local = self.UserModel.objects.filter(username__iexact=name).first()
        if local is not None and local.has_usable_password():
            self.request.oidc_problem = "local_account"
            return False
        return True

    def get_username(self, claims):
        value = claims.get(settings.OIDC_USERNAME_CLAIM)
        return value.strip() if isinstance(value, str) else ""

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username__iexact=self.get_username(claims))

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self.get_username(claims))  # no password: unusable
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        names = {"first_name": "given_name", "last_name": "family_name", "email": "email"}
        changed = False
        for field, claim in names.items():
            value = claims.get(claim)
            if isinstance(value, str) and value != getattr(user, field):
                setattr(user, field, value[: user._meta.get_field(field).max_length])
                changed = True
        if changed:
            user.save()
        set_role(user, provider_role(claims))
        return user


def _status(exc: requests.HTTPError) -> str:
    return str(exc.response.status_code) if exc.response is not None else "?"


PROBLEMS = {
    "unreachable": gettext_lazy("%(provider)s does not answer; local accounts can still sign in."),
    "refused": gettext_lazy(
        "%(provider)s refused the console's request (see the server log); local accounts can still sign in."
    ),
    "rejected": gettext_lazy("%(provider)s's answer failed the console's checks (see the server log)."),
    "no_name": gettext_lazy("%(provider)s did not say your user name (see the server log)."),
    "local_account": gettext_lazy(
        "This user name belongs to a local account of the console: sign in with its password."
    ),
    "expired": gettext_lazy("The sign-in expired or was started elsewhere; try again."),
    "denied": gettext_lazy("%(provider)s did not sign you in."),
}


@login_not_required
def start(request):
    """The button on the sign-in page: to the provider's sign-in (404 while single sign-on is off)."""
    if not enabled():
        raise Http404
    return OIDCAuthenticationRequestView.as_view()(request)


class Callback(OIDCAuthenticationCallbackView):
    def get(self, request):
        try:
            if request.GET.get("error"):
                request.oidc_problem = "denied"
            return super().get(request)
        except SuspiciousOperation:  # a state this session did not start: expired, or another browser
            request.oidc_problem = "expired"
            return self.login_failure()

    def login_failure(self):
        from audit.log import record_refusal

        problem = getattr(self.request, "oidc_problem", None) or "expired"
        if problem in ("denied", "expired"):  # authenticate() never ran, so its signal was not sent
            record_refusal("login_failed", self.request, details={"via": "oidc", "problem": problem})
        messages.error(self.request, str(PROBLEMS[problem]) % {"provider": settings.OIDC_PROVIDER_NAME})
        return redirect(settings.LOGIN_URL)


@login_not_required
def callback(request):
    """Where the provider sends the browser back (404 while single sign-on is off)."""
    if not enabled():
        raise Http404
    return Callback.as_view()(request)
