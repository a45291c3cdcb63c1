"""Request id, the role gate, and audited refusals."""

import uuid

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from access import can_view
from utilities.request_context import current_request

# Reachable without a role: signing in (single sign-on too) and out, choosing the language, and static files.
# The API is not closed here: it refuses a user without a role itself, in its JSON error shape; nor
# are the metrics, which have their own token and network checks (console/metrics/views.py).
OPEN_PREFIXES = ("/accounts/login/", "/accounts/logout/", "/oidc/", "/i18n/", "/static/", "/api/", "/metrics")


class RequestIdMiddleware:
    """Every request gets an id, echoed in X-Request-ID and written into its audit events."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4().hex
        token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class AuditedLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's sign-in redirect for anonymous requests, audited (rate-limited per source)."""

    def handle_no_permission(self, request, view_func):
        from audit.log import record_refusal

        record_refusal("anonymous_refused", request)
        return super().handle_no_permission(request, view_func)


class ContentSecurityPolicyMiddleware:
    """Content-Security-Policy on every response (Django 5.2 has none built in)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class RoleRequiredMiddleware:
    """A signed-in user without a role sees nothing (LoginRequiredMiddleware handles anonymous users)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not can_view(user) and not request.path.startswith(OPEN_PREFIXES):
            return render(
                request,
                "403.html",
                {"reason": gettext("Your account has no role yet; ask an administrator.")},
                status=403,
            )
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PermissionDenied):
            return render(request, "403.html", {"reason": str(exception)}, status=403)
        return None


class TimeZoneMiddleware:
    """Dates shown and entered in the operator's own time zone: the browser's, which the console's
    script keeps in the `tz` cookie (Intl's IANA name). Without the cookie, or with a name that is no
    zone, the console's TIME_ZONE stays (UTC by default); pages print the zone beside the times."""

    COOKIE = "tz"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _zone(request.COOKIES.get(self.COOKIE, ""))
        if zone is not None:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _zone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
