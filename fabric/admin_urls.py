"""Administration pages of the fabric (staff): hosts and their WinRM credentials."""

from django.urls import path

from fabric import admin_views

app_name = "fabric_admin"

urlpatterns = [
    path("hosts/add/", admin_views.host_form, name="host_add"),
    path("hosts/<str:fqdn>/edit/", admin_views.host_form, name="host_edit"),
    path("hosts/<str:fqdn>/remove/", admin_views.host_remove, name="host_remove"),
]
