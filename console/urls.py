from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from access import oidc
from api.urls import account_urls, api_urls
from console.forms import LockoutAuthenticationForm, SignInView
from console.language import set_language
from console.metrics.views import metrics
from console.search import search
from notifications.urls import account_urls as notification_urls

urlpatterns = [
    path("accounts/login/", SignInView.as_view(authentication_form=LockoutAuthenticationForm), name="login"),
    # Single sign-on (OpenID Connect): 404 unless configured (access/oidc.py).
    path("oidc/authenticate/", oidc.start, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.callback, name="oidc_authentication_callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Open before signing in too: the login page has the language switch.
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    # Browsers ask for /favicon.ico where a page names no icon (JSON, the API's docs): the same icon.
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("img/favicon.svg"), permanent=True))),
    path("search/", search, name="search"),
    # Prometheus, outside the sign-in: its own token and network checks, off by default (console/metrics/).
    path("metrics", metrics, name="metrics"),
    path("api/v1/", api_urls),
    path("account/", include(account_urls)),
    path("account/", include(notification_urls)),
    path("audit/", include("audit.urls")),
    path("manage/", include("fabric.admin_urls")),
    path("manage/", include("notifications.urls")),
    path("", include("fabric.urls")),
    path("", include("migrations_ui.urls")),
]

# A body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413, not Django's 400 (see console.errors).
handler400 = "console.errors.bad_request"
handler404 = "console.errors.not_found"
