from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from console.forms import LockoutAuthenticationForm

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(authentication_form=LockoutAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("audit/", include("audit.urls")),
    path("manage/", include("fabric.admin_urls")),
    path("", include("fabric.urls")),
    path("", include("migrations_ui.urls")),
]
