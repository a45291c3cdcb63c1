"""/api/v1/ (the API; each view answers 401/403 in JSON itself, so the console's login redirect
does not apply) and /account/tokens/ (a signed-in user's own API tokens)."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import URLPattern, URLResolver, path

from api import views
from api.api import api
from api.errors import body


def _open(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _open(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            pattern.callback = login_not_required(pattern.callback)
    return patterns


@login_not_required
def unknown(request, rest: str):
    return JsonResponse(body("not_found", f"There is no API endpoint /api/v1/{rest}."), status=404)


patterns, app_name, namespace = api.urls
api_urls = (_open([*patterns, path("<path:rest>", unknown)]), app_name, namespace)

account_urls = [
    path("tokens/", views.tokens, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke, name="api_token_revoke"),
]
