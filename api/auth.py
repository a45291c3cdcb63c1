"""Who is calling: a personal API token (Authorization: Bearer) or the browser's session.

Either way the request's user is the token's owner or the signed-in user, so access (and
the audit trail through request.user) sees the same person as on the pages. A session needs the
CSRF token for unsafe methods (ninja's cookie auth checks it); a bearer token does not, a browser
never sends one on its own. A user without a role is refused as on the pages.
"""

from django.conf import settings
from ninja.errors import AuthorizationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from access import can_view
from api.tokens import user_for

NO_ROLE = "Your account has no role yet; ask an administrator."


def _with_role(user):
    if not can_view(user):
        raise AuthorizationError(403, NO_ROLE)
    return user


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        user = user_for(token)
        if user is None:
            return None
        request.user = user
        return _with_role(user)


class SessionAuth(APIKeyCookie):
    """Django's session; unsafe methods need the CSRF token (X-CSRFToken), as the pages' forms do."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request):
        # No signed-in user: not this scheme (401 follows), rather than a CSRF refusal.
        if not request.user.is_authenticated:
            return None
        if check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header with a signed-in session.")
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request, key):
        return _with_role(request.user) if key is not None else None


AUTH = [TokenAuth(), SessionAuth()]
