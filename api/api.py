"""The automation API, /api/v1/: one NinjaAPI with the routers of this app, token or session auth,
one error shape, OpenAPI 3 at /api/v1/openapi.json and its docs page at /api/v1/docs."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from ninja import NinjaAPI, Swagger

from access import can_view
from api import batches, errors, inventory, moves, notifications, records
from api.auth import AUTH
from api.tokens import user_for


def signed_in(view):
    """The docs page and openapi.json: a signed-in user with a role, or a valid bearer token."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        header = request.headers.get("Authorization", "")
        user = user_for(header[7:]) if header[:7].lower() == "bearer " else request.user
        if user is not None and user.is_authenticated:
            if not can_view(user):
                return JsonResponse(errors.body("forbidden", "Your account has no role yet."), status=403)
            return view(request, *args, **kwargs)
        if request.path.endswith("/docs"):
            return redirect_to_login(request.get_full_path())
        return JsonResponse(errors.body("unauthenticated", errors.UNAUTHENTICATED), status=401)

    return wrapped


class ConsoleApi(NinjaAPI):
    def __init__(self, **options):
        super().__init__(**options)
        self._schemas = {}

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        # The document depends on the code only: build it once per process (it takes a while, and
        # scripts and schemathesis fetch it often).
        key = path_prefix if path_prefix is not None else self.get_root_path(path_params or {})
        if key not in self._schemas:
            self._schemas[key] = super().get_openapi_schema(path_prefix=key)
        return self._schemas[key]


api = ConsoleApi(
    title="Hyper-V migration console API",
    version="1",
    description=(
        "Same rules, roles and audit trail as the console's pages. Authenticate with "
        "`Authorization: Bearer <token>` (make a token at /account/tokens/) or the browser session "
        "(then send the CSRF token with POST). Errors: `{code, message, errors: {field: [..]}}`."
    ),
    auth=AUTH,
    urls_namespace="api-v1",
    docs=Swagger(),  # served from ninja's own static files (no CDN): see README, API
    docs_url="/docs",
    openapi_url="/openapi.json",
    docs_decorator=signed_in,
)
errors.install(api)
api.add_router("", inventory.router)
api.add_router("", moves.router)
api.add_router("", batches.router)
api.add_router("", records.router)
api.add_router("", notifications.router)
