from django.urls import path
from django.views.generic import TemplateView

app_name = "fabric"

# Placeholder routes; the pages come with fabric/views.py.
urlpatterns = [
    path("", TemplateView.as_view(template_name="base.html"), name="hosts"),
    path("hosts/<str:fqdn>/", TemplateView.as_view(template_name="base.html"), name="host"),
    path("vms/", TemplateView.as_view(template_name="base.html"), name="vms"),
    path("vms/<uuid:guid>/", TemplateView.as_view(template_name="base.html"), name="vm"),
]
