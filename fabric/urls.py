from django.urls import path

from fabric import views

app_name = "fabric"

urlpatterns = [
    path("", views.hosts, name="hosts"),
    path("hosts/<str:fqdn>/", views.host_detail, name="host"),
    path("vms/", views.vm_list, name="vms"),
    path("vms/<uuid:guid>/", views.vm_detail, name="vm"),
]
