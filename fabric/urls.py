from django.urls import path
from django.views.generic import RedirectView

from fabric import refresh, settings_views, storage_views, timeout_views, views

app_name = "fabric"

urlpatterns = [
    path("", views.hosts, name="hosts"),
    # A host page's URL cut back to its folder (as operators do) lands on the list, not a 404.
    path("hosts/", RedirectView.as_view(pattern_name="fabric:hosts", http_method_names=["get", "head"])),
    path("hosts/<str:fqdn>/", views.host_detail, name="host"),
    path("hosts/<str:fqdn>/check/", views.host_check, name="host_check"),
    path("hosts/<str:fqdn>/refresh/", refresh.refresh_host, name="host_refresh"),
    path("hosts/<str:fqdn>/settings/", settings_views.host_settings, name="host_settings"),
    path("hosts/<str:fqdn>/timeouts/", timeout_views.move_timeouts, name="host_timeouts"),
    path("clusters/", storage_views.cluster_list, name="clusters"),
    path("clusters/<str:cluster>/", storage_views.cluster_detail, name="cluster"),
    path("clusters/<str:cluster>/settings/", settings_views.host_settings, name="cluster_settings"),
    path("clusters/<str:cluster>/timeouts/", timeout_views.move_timeouts, name="cluster_timeouts"),
    path("clusters/<str:cluster>/refresh/", refresh.refresh_cluster, name="cluster_refresh"),
    path("shares/", storage_views.share_list, name="shares"),
    path("shares/<int:pk>/", storage_views.share_detail, name="share"),
    path("settings/", settings_views.host_settings, name="settings"),
    path("vms/", views.vm_list, name="vms"),
    path("vms/<uuid:guid>/", views.vm_detail, name="vm"),
]
