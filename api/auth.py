"""Who is calling: a personal API token (Authorization: Bearer) or the browser's session.

Either way the request's user is the token's owner or the signed-in user, so console.access (and
the audit trail through request.user) sees the same person as on the pages. A session needs the
CSRF token for unsafe methods (ninja's cookie auth checks it); a bearer token does not, a browser
never sends one on its own. A user without a role is refused as on the pages.
"""

from django.conf import settings
from ninja.errors import AuthorizationError
from ninja.security import APIKeyCookie, HttpBearer

from api.tokens import user_for
from console.access import can_view

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
    """Django's session, CSRF-checked for POST (csrf=True is APIKeyCookie's default)."""

    param_name = settings.SESSION_COOKIE_NAME

    def authenticate(self, request, key):
        if request.user.is_authenticated:
            return _with_role(request.user)
        return None


AUTH = [TokenAuth(), SessionAuth()]
